package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// The per-route children give the series WithLabelValues gave, and only
// those that happened.
func TestRequestMetrics(t *testing.T) {
	e := newTestEnv(t)
	for _, r := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/healthz"}, {"HEAD", "/healthz"},
		{"GET", "/v1/partner"}, {"GET", "/nowhere"}, {"GET", "/"},
	} {
		resp, err := e.srv.App().Test(httptest.NewRequest(r.method, r.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mfs, err := e.srv.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			got[key] = m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	want := map[string]float64{
		"nexus_http_requests_total{GET,/healthz,200}":           2,
		"nexus_http_requests_total{HEAD,/healthz,200}":          1,
		"nexus_http_requests_total{GET,/v1/partner,401}":        1,
		"nexus_http_requests_total{GET,unmatched,404}":          1,
		"nexus_http_requests_total{GET,/,404}":                  1,
		"nexus_http_request_duration_seconds{GET,/healthz}":     2,
		"nexus_http_request_duration_seconds{HEAD,/healthz}":    1,
		"nexus_http_request_duration_seconds{GET,/v1/partner}":  1,
		"nexus_http_request_duration_seconds{GET,unmatched}":    1,
		"nexus_http_request_duration_seconds{GET,/}":            1,
		"nexus_auth_results_total{unknown,missing_credentials}": 1,
		"nexus_http_panics_total{}":                             0,
		"nexus_login_password_checks_total{}":                   0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s", k)
		}
	}
}
