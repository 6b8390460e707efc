package e2e

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Every request leaves one access line on the server log (method, route
// pattern, status, duration, request id, credential id) and no secret sent
// or answered ever reaches the log; NEXUS_ACCESS_LOG=off turns the lines off
// (issue 15, Operating it).
func TestAccessLogLines(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		if b.Name != "sqlite" {
			t.Skip("the log lines do not depend on the database: checked on SQLite")
		}
		s := b.NewServer(t)
		tn := b.NewTenant(t, "approved")
		unknown, err := credential.New("test", credential.KindSecretKey)
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{tn.Admin.Key, unknown}

		type want struct {
			r      *Response
			route  string
			status int
			cred   string
		}
		var wants []want
		check := func(r *Response, route string, status int, cred string) *Response {
			wantStatus(t, r, status)
			wants = append(wants, want{r, route, status, cred})
			return r
		}
		check(do(t, "GET", s.URL+"/v1/partner", bearer(tn.Admin.Key), nil), "/v1/partner", 200, tn.Admin.ID)
		created := check(do(t, "POST", s.URL+"/v1/api_keys", bearer(tn.Admin.Key), map[string]any{"name": "logged"}), "/v1/api_keys", 201, tn.Admin.ID)
		secrets = append(secrets, created.Str("key"))
		check(do(t, "GET", s.URL+"/v1/api_keys/"+created.Str("id"), H{"X-API-Key": tn.Admin.Key}, nil), "/v1/api_keys/:id", 200, tn.Admin.ID)
		check(do(t, "GET", s.URL+"/v1/balances?api_key="+url.QueryEscape(unknown), bearer(unknown), nil), "/v1/balances", 401, "")
		check(do(t, "GET", s.URL+"/"+unknown, nil, nil), "unmatched", 404, "")
		check(do(t, "POST", s.URL+"/oauth/token", H{"Content-Type": "application/x-www-form-urlencoded"},
			"grant_type=client_credentials&client_id=cli_x&client_secret="+url.QueryEscape(unknown)), "/oauth/token", 401, "")
		check(do(t, "GET", s.URL+"/healthz", nil, nil), "/healthz", 200, "")

		// The line is written after the answer is sent, so the last one may
		// still be on its way: wait (bounded) until every request has one.
		var lines map[string]map[string]any
		var dup []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			lines, dup = map[string]map[string]any{}, nil
			for _, l := range s.LogLines() {
				if l.Fields["msg"] == "request" {
					id, _ := l.Fields["request_id"].(string)
					if lines[id] != nil {
						dup = append(dup, id)
					}
					lines[id] = l.Fields
				}
			}
			all := true
			for _, w := range wants {
				all = all && lines[w.r.Header.Get("X-Request-Id")] != nil
			}
			if all || time.Now().After(deadline) {
				break
			}
		}
		for _, id := range dup {
			t.Errorf("two access lines for request %s", id)
		}
		for _, w := range wants {
			id := w.r.Header.Get("X-Request-Id")
			f := lines[id]
			if f == nil {
				t.Errorf("%s %s: no access line with request_id %s", w.r.Method, w.route, id)
				continue
			}
			if f["level"] != "INFO" || f["method"] != w.r.Method || f["route"] != w.route ||
				f["status"] != float64(w.status) || f["credential_id"] != w.cred {
				t.Errorf("access line %v, want INFO %s %s %d credential %q", f, w.r.Method, w.route, w.status, w.cred)
			}
			if d, ok := f["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("access line %v: duration_ms is not a duration", f)
			}
		}
		logs := s.Logs()
		for _, secret := range secrets {
			// The random part alone: a secret must not appear even cut up.
			if strings.Contains(logs, secret[11:41]) {
				t.Errorf("the server log holds a secret (%s…)", secret[:15])
			}
		}

		off := b.NewServer(t, "NEXUS_ACCESS_LOG=off")
		wantStatus(t, do(t, "GET", off.URL+"/v1/partner", bearer(tn.Admin.Key), nil), 200)
		for _, l := range off.LogLines() {
			if l.Fields["msg"] == "request" {
				t.Errorf("NEXUS_ACCESS_LOG=off logged %v", l.Fields)
			}
		}
	})
}
