package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// nulRequest is a request written byte for byte: the Go client refuses a
// NUL in a header value or a raw one in a URL.
type nulRequest struct {
	method, target string
	header         [][2]string
	body           string
}

// doRaw sends req on a fresh connection and reads the answer.
func doRaw(t testing.TB, s *Server, req nulRequest) *Response {
	t.Helper()
	conn := dialFrom(t, s.Addr)
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", req.method, req.target, s.Addr)
	sent := false
	for _, h := range req.header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
		sent = sent || slices.Contains([]string{"authorization", "x-api-key", "x-partner-api-key"}, strings.ToLower(h[0]))
	}
	if req.body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(req.body))
	}
	b.WriteString("\r\n" + req.body)
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: no answer: %v", req.method, req.target, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := &Response{Method: req.method, URL: s.URL + req.target, Status: resp.StatusCode, Header: resp.Header, Body: data, sentCredential: sent}
	_ = json.Unmarshal(data, &r.JSON)
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("%s: X-Request-Id header missing", r)
	}
	return r
}

// nulSnapshot is everything a tenant can see that a request could change:
// its objects, balances and lifecycle events.
func nulSnapshot(t testing.TB, s *Server, key string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, path := range []string{"/v1/api_keys", "/v1/addresses", "/v1/requests", "/v1/funding", "/v1/service_credentials",
		"/v1/oauth_clients", "/v1/oauth_grants", "/v1/balances", "/v1/audit_events"} {
		q := "?limit=100"
		if path == "/v1/balances" {
			q = ""
		}
		r := do(t, "GET", s.URL+path+q, bearer(key), nil)
		wantStatus(t, r, 200)
		for _, o := range r.Data() {
			if o["type"] == "api.access" {
				continue // every request adds one, and writes it later
			}
			delete(o, "last_used_at") // the admin key is used
			b, _ := json.Marshal(o)
			out[path] = append(out[path], string(b))
		}
	}
	return out
}

// nulForm is a sign-in form with a valid CSRF token (the cookies to send
// and the form's hidden fields), as a browser has it from GET /login.
func nulForm(t testing.TB, s *Server) (cookie string, form url.Values) {
	t.Helper()
	r := do(t, "GET", s.URL+"/login", nil, nil)
	wantStatus(t, r, 200)
	var cookies []string
	for _, c := range r.Header.Values("Set-Cookie") {
		cookies = append(cookies, strings.TrimSpace(strings.Split(c, ";")[0]))
	}
	form = oaHidden(string(r.Body))
	if len(cookies) == 0 || form.Get("csrf_token") == "" {
		t.Fatalf("GET /login gave no CSRF cookie or token: %s", r)
	}
	return strings.Join(cookies, "; "), form
}

// A NUL byte anywhere a request can carry one (path, query, header, cookie,
// JSON string, form, JWT kid) is a 4xx that names where it is, on both
// databases (PostgreSQL refuses NUL in text: these were 500s), and changes
// nothing (SQLite stored what PostgreSQL refused). Issue 11, item 10.
func TestNULRefused(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.NewServer(t) // its cleanup fails the test on any ERROR logged
		tn := b.NewTenant(t, "approved")
		key := tn.Admin.Key
		h := bearer(key)
		addr := `"network":"ethereum","address":"0x52908400098527886E0F7030069857D2E4169EE7"`
		before := nulSnapshot(t, s, key)

		api := []struct {
			name, method, path string
			body               string // JSON
			param              string
		}{
			{"path id", "GET", "/v1/addresses/adr_%00", "", "id"},
			{"path currency", "GET", "/v1/balances/usd%00c", "", "currency"},
			{"path id of a transition", "POST", "/v1/requests/prq_%00/cancel", "", "id"},
			{"query cursor", "GET", "/v1/addresses?starting_after=adr_%00", "", "starting_after"},
			{"query filter", "GET", "/v1/audit_events?type=api_key.created%00", "", "type"},
			{"query credential", "GET", "/v1/audit_events?credential_id=key_%00", "", "credential_id"},
			{"query status", "GET", "/v1/api_keys?status=active%00", "", "status"},
			{"query name", "GET", "/v1/partner?x%00y=1", "", "x%00y"},
			{"JSON key name", "POST", "/v1/api_keys", `{"name":"k\u0000"}`, "name"},
			{"JSON origin", "POST", "/v1/api_keys", `{"type":"publishable","allowed_origins":["https://a.example\u0000"]}`, "allowed_origins"},
			{"JSON label", "POST", "/v1/addresses", `{` + addr + `,"label":"l\u0000"}`, "label"},
			{"JSON address id", "POST", "/v1/requests", `{"type":"withdrawal","amount":1,"currency":"usdc","address_id":"adr_\u0000"}`, "address_id"},
			{"JSON metadata", "POST", "/v1/requests", `{"type":"withdrawal","amount":1,"currency":"usdc","address_id":"adr_1","metadata":{"k":"v\u0000"}}`, "metadata"},
			{"JSON service credential", "POST", "/v1/service_credentials", `{"name":"s\u0000","algorithm":"HS256"}`, "name"},
			{"JSON OAuth client", "POST", "/v1/oauth_clients", `{"name":"c\u0000","type":"public","redirect_uris":["http://127.0.0.1/cb"],"scopes":["read:balances"]}`, "name"},
			{"JSON funding reference", "POST", "/v1/test_helpers/funding", `{"amount":1,"currency":"usdc","reference":"r\u0000"}`, "reference"},
		}
		for _, c := range api {
			t.Run(c.name, func(t *testing.T) {
				var body any
				hh := h
				if c.body != "" {
					body, hh = c.body, h.with("Content-Type", "application/json")
				}
				r := do(t, c.method, s.URL+c.path, hh, body)
				wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), c.param)
			})
		}

		auth := [2]string{"Authorization", "Bearer " + key}
		raw := []struct {
			name   string
			req    nulRequest
			status int
			code   string
			param  string
		}{
			{"raw in the path", nulRequest{"GET", "/v1/addresses/adr_\x00", [][2]string{auth}, ""}, 400, "parameter_invalid", "id"},
			{"raw in the query", nulRequest{"GET", "/v1/addresses?starting_after=adr_\x00", [][2]string{auth}, ""}, 400, "parameter_invalid", "starting_after"},
			{"Idempotency-Key", nulRequest{"POST", "/v1/addresses", [][2]string{auth, {"Idempotency-Key", "k\x00"}, {"Content-Type", "application/json"}}, `{` + addr + `}`},
				400, "parameter_invalid", "Idempotency-Key"},
			{"User-Agent", nulRequest{"GET", "/v1/partner", [][2]string{auth, {"User-Agent", "agent\x00"}}, ""}, 400, "parameter_invalid", "User-Agent"},
			{"X-Forwarded-For", nulRequest{"GET", "/v1/partner", [][2]string{auth, {"X-Forwarded-For", "203.0.113.9\x00"}}, ""}, 400, "parameter_invalid", "X-Forwarded-For"},
			{"Origin", nulRequest{"GET", "/v1/partner", [][2]string{auth, {"Origin", "https://a.example\x00"}}, ""}, 400, "parameter_invalid", "Origin"},
			{"cookie", nulRequest{"GET", "/v1/partner", [][2]string{auth, {"Cookie", "nexus_session=a\x00b"}}, ""}, 400, "parameter_invalid", "nexus_session"},
			{"Authorization", nulRequest{"GET", "/v1/partner", [][2]string{{"Authorization", "Bearer " + key + "\x00"}}, ""}, 401, "malformed_credentials", ""},
			{"X-API-Key", nulRequest{"GET", "/v1/partner", [][2]string{{"X-API-Key", "\x00" + key}}, ""}, 401, "malformed_credentials", ""},
		}
		for _, c := range raw {
			t.Run(c.name, func(t *testing.T) {
				r := doRaw(t, s, c.req)
				e := wantError(t, r, c.status, c.code)
				if c.param != "" {
					wantParam(t, r, e, c.param)
				}
			})
		}

		t.Run("JWT kid", func(t *testing.T) {
			enc := func(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }
			now := time.Now().Unix()
			for _, kid := range []string{`sc_\u0000`, `svc_\u0000`} {
				tok := enc(`{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`) + "." +
					enc(fmt.Sprintf(`{"iss":"sc_x","aud":"nexus-api","iat":%d,"exp":%d}`, now, now+60)) + "." + enc("signature")
				wantError(t, partnerAs(t, s, bearer(tok)), 401, "invalid_token")
			}
		})

		// The OAuth endpoints for apps answer in the RFC 6749 §5.2 form.
		form := H{"Content-Type": "application/x-www-form-urlencoded"}
		for _, c := range []struct{ path, body string }{
			{"/oauth/token", "grant_type=authorization_code&client_id=cli_%00&code=x&redirect_uri=http://127.0.0.1/cb"},
			{"/oauth/token", "grant_type=refresh_token&client_id=cli_x&refresh_token=nx_test_rt_%00"},
			{"/oauth/revoke", "client_id=cli_%00&token=x"},
			{"/oauth/introspect", "client_id=cli_%00&token=x"},
		} {
			t.Run("form "+c.path, func(t *testing.T) {
				r := do(t, "POST", s.URL+c.path, form, c.body)
				if r.Status != 400 || r.Str("error") != "invalid_request" || !strings.Contains(r.Str("error_description"), "NUL") {
					t.Errorf("want 400 invalid_request naming the NUL, got %s", r)
				}
			})
		}

		// The browser pages answer an HTML error page.
		cookie, signIn := nulForm(t, s)
		signIn.Set("email", "member\x00@example.com")
		signIn.Set("password", "correct horse battery")
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		for k := range signIn {
			_ = mw.WriteField(k, signIn.Get(k))
		}
		_ = mw.Close()
		htmlCases := []struct {
			name string
			req  func(t *testing.T) *Response
		}{
			{"sign-in form", func(t *testing.T) *Response {
				return do(t, "POST", s.URL+"/login", form.with("Cookie", cookie), signIn.Encode())
			}},
			{"sign-in multipart form", func(t *testing.T) *Response {
				return do(t, "POST", s.URL+"/login", H{"Cookie": cookie, "Content-Type": mw.FormDataContentType()}, mp.Bytes())
			}},
			{"authorization query", func(t *testing.T) *Response {
				return do(t, "GET", s.URL+"/oauth/authorize?response_type=code&client_id=cli_%00", nil, nil)
			}},
			{"authorization form", func(t *testing.T) *Response {
				return do(t, "POST", s.URL+"/oauth/authorize", form.with("Cookie", cookie), "response_type=code&client_id=cli_%00&decision=approve")
			}},
			{"sign-in cookie", func(t *testing.T) *Response {
				return doRaw(t, s, nulRequest{"GET", "/login", [][2]string{{"Cookie", "nexus_csrf=\x00" + strings.Repeat("a", 42)}}, ""})
			}},
			{"sign-out session cookie", func(t *testing.T) *Response {
				return doRaw(t, s, nulRequest{"POST", "/logout", [][2]string{{"Cookie", cookie + "; nexus_session=s\x00"},
					{"Content-Type", "application/x-www-form-urlencoded"}}, "csrf_token=" + url.QueryEscape(signIn.Get("csrf_token"))})
			}},
		}
		for _, c := range htmlCases {
			t.Run(c.name, func(t *testing.T) {
				r := c.req(t)
				if r.Status != 400 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.Body), "NUL") {
					t.Errorf("want a 400 HTML page naming the NUL, got %s", r)
				}
			})
		}

		after := nulSnapshot(t, s, key)
		for path, objs := range after {
			if !slices.Equal(objs, before[path]) {
				t.Errorf("%s changed:\nbefore %v\nafter  %v", path, before[path], objs)
			}
		}
	})
}
