package e2e

import (
	"strings"
	"testing"
)

// NEXUS_HSTS=1 adds Strict-Transport-Security to every answer; without it
// there is none. Authenticated answers are never cacheable (issue 11, item
// 14).
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		if b.Name != "sqlite" {
			t.Skip("the headers do not depend on the database: checked on SQLite")
		}
		tn := b.NewTenant(t, "approved")
		for _, c := range []struct {
			s    *Server
			hsts string
		}{
			{b.Server(t), ""},
			{b.NewServer(t, "NEXUS_HSTS=1"), "max-age=63072000; includeSubDomains"},
		} {
			for _, r := range []*Response{
				do(t, "GET", c.s.URL+"/v1/balances", bearer(tn.Admin.Key), nil),
				do(t, "GET", c.s.URL+"/v1/partner", nil, nil),
				do(t, "GET", c.s.URL+"/healthz", nil, nil),
				// Refused by Fiber itself, before any middleware.
				doOversized(t, c.s, "POST", "/v1/api_keys", bearer(tn.Admin.Key).with("Content-Type", "application/json"),
					`{"name": "`+strings.Repeat("x", 2<<20)+`"}`),
			} {
				if got := r.Header.Get("Strict-Transport-Security"); got != c.hsts {
					t.Errorf("%s: Strict-Transport-Security %q, want %q", r, got, c.hsts)
				}
				if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("%s: X-Content-Type-Options %q, want nosniff", r, got)
				}
				if got := r.Header.Get("Cache-Control"); r.Status != 200 || strings.HasSuffix(r.URL, "/v1/balances") {
					if got != "no-store" {
						t.Errorf("%s: Cache-Control %q, want no-store", r, got)
					}
				}
			}
		}
	})
}
