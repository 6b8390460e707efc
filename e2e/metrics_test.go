package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// /metrics is not public on the API's port: absent by default, behind
// NEXUS_METRICS_TOKEN there, or alone on NEXUS_METRICS_LISTEN (issue 15,
// Operating it).
func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		if b.Name != "sqlite" {
			t.Skip("access to /metrics does not depend on the database: checked on SQLite")
		}
		closed := b.NewServer(t, "NEXUS_METRICS_TOKEN=")
		wantError(t, do(t, "GET", closed.URL+"/metrics", nil, nil), 404, "route_not_found")
		wantError(t, do(t, "GET", closed.URL+"/metrics", bearer(metricsToken), nil), 404, "route_not_found")

		s := b.Server(t) // NEXUS_METRICS_TOKEN=metricsToken
		wantError(t, do(t, "GET", s.URL+"/metrics", nil, nil), 401, "missing_credentials")
		wantError(t, do(t, "GET", s.URL+"/metrics", bearer(metricsToken+"x"), nil), 401, "invalid_token")
		r := scrape(t, s)
		wantStatus(t, r, 200)
		if !strings.Contains(string(r.Body), "nexus_http_requests_total") {
			t.Errorf("/metrics lacks nexus_http_requests_total:\n%s", tail(string(r.Body), 1000))
		}

		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		own := b.NewServer(t, "NEXUS_METRICS_LISTEN="+addr)
		wantError(t, scrape(t, own), 404, "route_not_found")
		for _, c := range []struct {
			token  string
			status int
		}{{"", 401}, {metricsToken, 200}} {
			req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET /metrics on NEXUS_METRICS_LISTEN: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("GET /metrics on NEXUS_METRICS_LISTEN with token %q: %d, want %d", c.token, resp.StatusCode, c.status)
			}
			if c.status == 200 && !strings.Contains(string(body), "nexus_http_requests_total") {
				t.Errorf("/metrics on NEXUS_METRICS_LISTEN lacks nexus_http_requests_total")
			}
		}
	})
}
