package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Every authenticated answer carries Cache-Control: no-store and every
// answer X-Content-Type-Options: nosniff; Strict-Transport-Security is sent
// when Config.HSTS says clients come over TLS only (issue 11, item 14).
func TestAnswerHeaders(t *testing.T) {
	for _, hsts := range []bool{false, true} {
		e := newTestEnv(t, func(c *Config) { c.HSTS = hsts })
		key := e.testKey(t)
		check := func(path, key string, wantStatus int, noStore bool) {
			t.Helper()
			req := httptest.NewRequest("GET", path, nil)
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			res, err := e.srv.App().Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != wantStatus {
				t.Fatalf("GET %s: %d, want %d", path, res.StatusCode, wantStatus)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", path, got)
			}
			if got := res.Header.Get("Cache-Control"); noStore && got != "no-store" {
				t.Errorf("GET %s: Cache-Control %q, want no-store", path, got)
			}
			want := ""
			if hsts {
				want = "max-age=63072000; includeSubDomains"
			}
			if got := res.Header.Get("Strict-Transport-Security"); got != want {
				t.Errorf("HSTS %v: GET %s: Strict-Transport-Security %q, want %q", hsts, path, got, want)
			}
		}
		n := 0
		for _, r := range e.srv.Routes() {
			if r.Method == "GET" && r.Access.kind != public && !strings.Contains(r.Path, ":") {
				check(r.Path, key, 200, true)
				n++
			}
		}
		if n < 10 {
			t.Fatalf("only %d authenticated GET routes checked", n)
		}
		check("/v1/balances/usdc", key, 200, true)
		check("/v1/partner", "", 401, true)
		wrong := "x" // a key that ends in x would be its own "wrong" key 1 time in 62
		if strings.HasSuffix(key, wrong) {
			wrong = "y"
		}
		check("/v1/partner", key[:len(key)-1]+wrong, 401, true)
		check("/healthz", "", 200, false)
		check("/nowhere", "", 404, true)
	}
}
