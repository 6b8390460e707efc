package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// /metrics is on the API's listener only with a token, and only to it.
func TestMetricsToken(t *testing.T) {
	scrape := func(env *testEnv, authorization string) (int, string, string) {
		t.Helper()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		res, err := env.srv.App().Test(req, 10000)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Error struct{ Code string }
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.Error.Code, res.Header.Get("Cache-Control")
	}

	closed := newTestEnv(t, func(c *Config) { c.MetricsToken = "" })
	if status, code, _ := scrape(closed, "Bearer "+testMetricsToken); status != 404 || code != "route_not_found" {
		t.Errorf("/metrics without a token configured: %d %s, want 404 route_not_found", status, code)
	}

	env := newTestEnv(t)
	for _, c := range []struct {
		authorization string
		status        int
		code          string
	}{
		{"", 401, "missing_credentials"},
		{"Bearer " + testMetricsToken, 200, ""},
		{"bearer " + testMetricsToken, 200, ""},
		{"Bearer " + testMetricsToken[:len(testMetricsToken)-1], 401, "invalid_token"},
		{"Bearer " + testMetricsToken + "x", 401, "invalid_token"},
		{"Basic " + testMetricsToken, 401, "invalid_token"},
		{testMetricsToken, 401, "invalid_token"},
	} {
		status, code, cache := scrape(env, c.authorization)
		if status != c.status || code != c.code {
			t.Errorf("Authorization %q: %d %s, want %d %s", c.authorization, status, code, c.status, c.code)
		}
		if status == 200 && cache != "no-store" {
			t.Errorf("Authorization %q: Cache-Control %q, want no-store", c.authorization, cache)
		}
	}
}

func TestMetricsHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "nexus_test_total", Help: "t"}))
	for _, c := range []struct {
		token, authorization string
		status               int
	}{
		{"", "", 200},
		{"metrics-token-0123456789", "", 401},
		{"metrics-token-0123456789", "Bearer wrong", 401},
		{"metrics-token-0123456789", "Bearer metrics-token-0123456789", 200},
	} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if c.authorization != "" {
			req.Header.Set("Authorization", c.authorization)
		}
		w := httptest.NewRecorder()
		MetricsHandler(reg, c.token).ServeHTTP(w, req)
		if w.Code != c.status {
			t.Errorf("token %q, Authorization %q: %d, want %d", c.token, c.authorization, w.Code, c.status)
		}
		if w.Code == http.StatusOK && !strings.Contains(w.Body.String(), "nexus_test_total") {
			t.Errorf("the metrics lack nexus_test_total: %s", w.Body)
		}
	}
	w := httptest.NewRecorder()
	MetricsHandler(reg, "").ServeHTTP(w, httptest.NewRequest("GET", "/v1/partner", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("the metrics listener answers /v1/partner with %d, want 404", w.Code)
	}
}
