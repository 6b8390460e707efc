// Package tlscert serves HTTPS with a certificate read from files and read
// again when they change or on demand (SIGHUP), so a renewed certificate is
// served without a restart.
package tlscert

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with an
// AEAD only (no CBC, no RSA key exchange), as the Mozilla "intermediate"
// profile lists them. TLS 1.3 suites are not configurable in Go and are
// all modern.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Reloader holds the certificate loaded from a certificate and a key file.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // serializes loads
	seen [2][]byte  // contents of the files last loaded
}

// New loads the pair once: a missing or invalid file is an error now,
// not at the first handshake.
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. It reports whether the files differed from
// the ones loaded before; on error the certificate served stays the same.
func (r *Reloader) Reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return false, fmt.Errorf("NEXUS_TLS_CERT: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return false, fmt.Errorf("NEXUS_TLS_KEY: %w", err)
	}
	if bytes.Equal(certPEM, r.seen[0]) && bytes.Equal(keyPEM, r.seen[1]) {
		return false, nil
	}
	// The error names the files, never their content (the key).
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("NEXUS_TLS_CERT/NEXUS_TLS_KEY (%s, %s): %w", r.certFile, r.keyFile, err)
	}
	r.cert.Store(&c)
	r.seen = [2][]byte{certPEM, keyPEM}
	return true, nil
}

// GetCertificate is tls.Config.GetCertificate: the pair loaded last.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// Config is the server's TLS configuration: TLS 1.2 at least, the suites
// above, HTTP/1.1 (fasthttp speaks no HTTP/2).
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   CipherSuites,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// Watch reloads the pair on every value from hup (SIGHUP) and whenever the
// files' content changes, checked every interval, until ctx ends. A pair
// that fails to load is logged and the previous one kept: a half-written
// renewal (new certificate, old key) must not take the server down.
func (r *Reloader) Watch(ctx context.Context, hup <-chan os.Signal, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		why := "files changed"
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-t.C:
		}
		changed, err := r.Reload()
		switch {
		case err != nil:
			r.log.Warn("tls certificate not reloaded; still serving the previous one", "reason", why, "err", err)
		case changed:
			r.log.Info("tls certificate reloaded", "reason", why, "not_after", r.cert.Load().Leaf.NotAfter)
		}
	}
}
