package tlscert_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/tlscert"
	"github.com/nexus-fintech/nexus/internal/tlscert/tlscerttest"
)

func served(t *testing.T, r *tlscert.Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.Subject.CommonName
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlscerttest.New(t, "first").Write(t, certFile, keyFile)
	r, err := tlscert.New(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, r); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	if changed, err := r.Reload(); changed || err != nil {
		t.Errorf("Reload of unchanged files: changed %v, err %v; want false, nil", changed, err)
	}

	tlscerttest.New(t, "second").Write(t, certFile, keyFile)
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("Reload of new files: changed %v, err %v; want true, nil", changed, err)
	}
	if got := served(t, r); got != "second" {
		t.Errorf("served %q after reload, want second", got)
	}

	// A renewal caught half-way (a new certificate, the old key) is refused
	// and the previous pair kept.
	if err := os.WriteFile(certFile, tlscerttest.New(t, "third").CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = r.Reload()
	if err == nil {
		t.Fatal("Reload of a mismatched pair succeeded")
	}
	if !strings.Contains(err.Error(), "NEXUS_TLS_CERT") || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error %q should name the variables and hold no key material", err)
	}
	if got := served(t, r); got != "second" {
		t.Errorf("served %q after a failed reload, want second", got)
	}
}

func TestNewFailsFast(t *testing.T) {
	dir := t.TempDir()
	if _, err := tlscert.New(filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key"), nil); err == nil ||
		!strings.Contains(err.Error(), "NEXUS_TLS_CERT") {
		t.Errorf("New with missing files: %v, want an error naming NEXUS_TLS_CERT", err)
	}
}

// Watch reloads on a signal without waiting for its polling interval.
func TestWatchOnSignal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlscerttest.New(t, "first").Write(t, certFile, keyFile)
	r, err := tlscert.New(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan struct{})
	go func() { defer close(done); r.Watch(ctx, hup, time.Hour) }()
	tlscerttest.New(t, "second").Write(t, certFile, keyFile)
	hup <- nil // received: the reload is under way
	hup <- nil // received: the previous reload has finished
	cancel()
	<-done
	if got := served(t, r); got != "second" {
		t.Errorf("served %q after SIGHUP, want second", got)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlscerttest.New(t, "x").Write(t, certFile, keyFile)
	r, err := tlscert.New(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config()
	if c.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2", c.MinVersion)
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range c.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || strings.Contains(name, "CBC") || !strings.Contains(name, "ECDHE") {
			t.Errorf("cipher suite %s is not modern (ECDHE with an AEAD)", name)
		}
	}
}
