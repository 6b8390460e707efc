package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/tlscert/tlscerttest"
)

// startTLSServer starts a dedicated server of b serving HTTPS with the pair
// in certFile and keyFile, trusted through roots; stopped (exit 0, clean
// logs) when the test ends.
func startTLSServer(t *testing.T, b *Backend, certFile, keyFile string, roots *x509.CertPool) *Server {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	var s *Server
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var addr string
		if addr, err = freeAddr(); err != nil {
			t.Fatal(err)
		}
		env := b.env("NEXUS_LISTEN="+addr, "NEXUS_LOG_FORMAT=json", "NEXUS_TLS_CERT="+certFile, "NEXUS_TLS_KEY="+keyFile)
		if s, err = launchWith(b.dir, env, "https://"+addr, client, "serve"); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("starting a TLS server: %v", err)
	}
	t.Cleanup(func() {
		for _, p := range s.stopAndCheck() {
			t.Errorf("server %s: %s", s.URL, p)
		}
	})
	return s
}

// handshake dials addr with cfg and returns the connection state.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

// servedName is the common name of the certificate addr serves now.
func servedName(t *testing.T, addr string) string {
	t.Helper()
	st, err := handshake(addr, &tls.Config{InsecureSkipVerify: true}) // the name is what is checked
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// NEXUS_TLS_CERT and NEXUS_TLS_KEY serve HTTPS: TLS 1.2 and 1.3 only,
// AEAD suites only, HSTS on every answer, an https issuer; a renewed
// certificate is served after SIGHUP, or by itself once the files change
// (issue 15, TLS).
func TestTLS(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		if b.Name != "sqlite" {
			t.Skip("TLS does not depend on the database: checked on SQLite")
		}
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		first := tlscerttest.New(t, "first")
		first.Write(t, certFile, keyFile)
		s := startTLSServer(t, b, certFile, keyFile, first.Pool())

		for _, c := range []struct {
			name     string
			min, max uint16
			suites   []uint16
			ok       bool
		}{
			{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, nil, false},
			{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, nil, false},
			{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, nil, true},
			{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, nil, true},
			{"TLS 1.2 with a CBC suite", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, false},
		} {
			st, err := handshake(s.Addr, &tls.Config{RootCAs: first.Pool(), MinVersion: c.min, MaxVersion: c.max, CipherSuites: c.suites})
			switch {
			case c.ok && err != nil:
				t.Errorf("%s refused: %v", c.name, err)
			case c.ok && st.Version != c.max:
				t.Errorf("%s: negotiated %s", c.name, tls.VersionName(st.Version))
			case !c.ok && err == nil:
				t.Errorf("%s accepted (%s, %s), want a refused handshake", c.name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			}
		}

		tn := b.NewTenant(t, "approved")
		for _, r := range []struct {
			path   string
			h      http.Header
			status int
		}{
			{"/healthz", nil, 200},
			{"/v1/partner", nil, 401},
			{"/v1/partner", http.Header{"Authorization": {"Bearer " + tn.Admin.Key}}, 200},
			{"/no/such/route", nil, 404},
		} {
			req, _ := http.NewRequest("GET", s.URL+r.path, nil)
			req.Header = r.h
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatalf("GET %s over TLS: %v", r.path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != r.status {
				t.Errorf("GET %s over TLS: %d, want %d", r.path, resp.StatusCode, r.status)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
				t.Errorf("GET %s over TLS: Strict-Transport-Security %q", r.path, got)
			}
		}
		resp, err := s.client.Get(s.URL + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var meta struct{ Issuer string }
		decodeJSON(t, "authorization server metadata", body, &meta)
		if meta.Issuer != s.URL {
			t.Errorf("issuer %q, want %q (https by default when serving TLS)", meta.Issuer, s.URL)
		}

		// The image's HEALTHCHECK probes it over TLS.
		if out, errOut, err := runNexus(dir, processEnv("NEXUS_LISTEN="+s.Addr, "NEXUS_TLS_CERT="+certFile), "healthcheck"); err != nil {
			t.Errorf("nexus healthcheck of the TLS server: %v\n%s%s", err, out, errOut)
		}

		// A renewed pair is served after SIGHUP.
		tlscerttest.New(t, "second").Write(t, certFile, keyFile)
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if _, ok := poll(10*time.Second, 20*time.Millisecond, func() bool {
			return strings.Contains(s.Logs(), `"reason":"SIGHUP"`)
		}); !ok {
			t.Fatalf("no reload logged after SIGHUP:\n%s", tail(s.Logs(), 2000))
		}
		if got := servedName(t, s.Addr); got != "second" {
			t.Errorf("after SIGHUP the server serves %q, want second", got)
		}

		// And without a signal once the files change.
		tlscerttest.New(t, "third").Write(t, certFile, keyFile)
		if took, ok := poll(15*time.Second, 50*time.Millisecond, func() bool { return servedName(t, s.Addr) == "third" }); !ok {
			t.Errorf("the changed files were not served within %s", took)
		} else {
			t.Logf("changed files served after %s", took)
		}
	})
}

// Half a TLS configuration is refused at start, naming both variables.
func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		if b.Name != "sqlite" {
			t.Skip("configuration checks do not depend on the database: checked on SQLite")
		}
		dir := t.TempDir()
		for _, c := range []struct {
			env  []string
			want string
		}{
			{[]string{"NEXUS_TLS_CERT=" + filepath.Join(dir, "tls.crt")}, "NEXUS_TLS_KEY"},
			{[]string{"NEXUS_TLS_CERT=" + filepath.Join(dir, "none.crt"), "NEXUS_TLS_KEY=" + filepath.Join(dir, "none.key")}, "NEXUS_TLS_CERT"},
		} {
			_, errOut, err := runNexus(b.dir, b.env(append(c.env, "NEXUS_LISTEN=127.0.0.1:0")...), "serve")
			if err == nil || !strings.Contains(string(errOut), c.want) {
				t.Errorf("serve with %v: %v, stderr %q; want a failure naming %s", c.env, err, errOut, c.want)
			}
		}
	})
}
