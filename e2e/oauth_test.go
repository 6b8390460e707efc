package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The OAuth tests (CONTRACT §7) run on their own servers, which trust
// X-Forwarded-For from loopback, and each stack sends its own made-up client
// IP: the per-IP limits of /oauth/* and /login and the failed-authentication
// lockout (CONTRACT §8) then count these tests apart from each other and
// from the rest of the suite, whatever loopback address a request comes
// from (the browser's always come from 127.0.0.1).
const oaTrustedProxies = "NEXUS_TRUSTED_PROXIES=127.0.0.0/8,::1/128"

// oaTransport carries the user agents' and x/oauth2's requests.
var oaTransport = &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second} // below the server's 15 s read timeout

// oaServer starts a dedicated server for an OAuth test.
func oaServer(t testing.TB, b *Backend) *Server { return b.NewServer(t, oaTrustedProxies) }

// oaFakeIP is a random address of 198.18.0.0/15 (RFC 2544, never routed).
func oaFakeIP() string {
	x := make([]byte, 3)
	_, _ = rand.Read(x)
	return fmt.Sprintf("198.%d.%d.%d", 18+int(x[0]&1), x[1], x[2]|1)
}

// oaScopeHints: the plain-words line of each scope on the consent page must
// contain one of these (case-insensitive), and never the scope's raw name.
var oaScopeHints = map[string][]string{
	"read:balances":   {"balance"},
	"read:funding":    {"deposit", "funding"},
	"read:addresses":  {"address"},
	"write:addresses": {"address"},
	"read:requests":   {"request", "withdrawal"},
	"write:requests":  {"request", "withdrawal"},
	"read:usage":      {"request", "usage"},
}

// oaStack is one OAuth test's world: a server, partner A (owns the app) and
// partner B (approved, its member consents), and the client IP it sends.
type oaStack struct {
	b      *Backend
	s      *Server
	ip     string
	owner  Tenant
	user   Tenant
	member oaMember
}

func oaSetup(t *testing.T, b *Backend) *oaStack {
	t.Helper()
	st := &oaStack{b: b, s: oaServer(t, b), ip: oaFakeIP(), owner: b.NewTenant(t, "approved"), user: b.NewTenant(t, "approved")}
	st.member = oaCreateMember(t, b, st.user.Partner.ID)
	return st
}

// fork is the same stack seen from another client IP.
func (st *oaStack) fork() *oaStack {
	c := *st
	c.ip = oaFakeIP()
	return &c
}

// on is the same stack talking to another server of the same database.
func (st *oaStack) on(s *Server) *oaStack {
	c := *st
	c.s = s
	return &c
}

func (st *oaStack) h(h H) H { return h.with("X-Forwarded-For", st.ip) }

// api calls the partner API with a bearer credential.
func (st *oaStack) api(t testing.TB, method, path, cred string, body any) *Response {
	t.Helper()
	return do(t, method, st.s.URL+path, st.h(bearer(cred)), body)
}

// oaMember is a member created through the CLI, with its password.
type oaMember struct{ ID, Email, Password string }

// oaCreateMember runs `nexus admin member create`, the password on stdin.
func oaCreateMember(t testing.TB, b *Backend, partnerID string) oaMember {
	t.Helper()
	m := oaMember{Email: fmt.Sprintf("member-%s@example.test", randomHex(5)), Password: "e2e-password-" + randomHex(8)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nexusBin, "admin", "member", "create", "--partner", partnerID, "--email", m.Email)
	cmd.Dir, cmd.Env = b.dir, b.env()
	cmd.Stdin = strings.NewReader(m.Password + "\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("nexus admin member create: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
	}
	var v struct {
		Object    string `json:"object"`
		ID        string `json:"id"`
		PartnerID string `json:"partner_id"`
		Email     string `json:"email"`
	}
	decodeJSON(t, "admin member create", out.Bytes(), &v)
	if v.Object != "member" || v.ID == "" || v.PartnerID != partnerID || v.Email != m.Email {
		t.Fatalf("admin member create: unexpected member %s", out.String())
	}
	if s := out.String() + errOut.String(); strings.Contains(s, m.Password) || strings.Contains(s, "argon2") {
		t.Errorf("admin member create printed the password or its hash: %s", s)
	}
	m.ID = v.ID
	return m
}

// oaClient is an oauth_client object; ClientSecret only from the create answer.
type oaClient struct {
	Object       string   `json:"object"`
	ID           string   `json:"id"`
	ClientID     string   `json:"client_id"`
	Environment  string   `json:"environment"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	RedirectURIs []string `json:"redirect_uris"`
	Scopes       []string `json:"scopes"`
	Status       string   `json:"status"`
	ClientSecret string   `json:"client_secret"`
}

// createClient registers an app for partner A with its admin test key. The
// name holds markup, which every page must show escaped.
func (st *oaStack) createClient(t testing.TB, typ string, redirects []string, scopes ...string) oaClient {
	t.Helper()
	name := "E2E <b>App</b> & Co " + randomHex(3)
	r := st.api(t, "POST", "/v1/oauth_clients", st.owner.Admin.Key,
		map[string]any{"name": name, "type": typ, "redirect_uris": redirects, "scopes": scopes})
	wantStatus(t, r, 201)
	var c oaClient
	r.Decode(t, &c)
	if c.Object != "oauth_client" || !strings.HasPrefix(c.ID, "cli_") || c.ClientID != c.ID || c.Environment != "test" ||
		c.Name != name || c.Type != typ || c.Status != "active" || !slices.Equal(c.RedirectURIs, redirects) || !sameSet(c.Scopes, scopes) {
		t.Fatalf("POST /v1/oauth_clients: unexpected client %s", r)
	}
	switch typ {
	case "confidential":
		if !strings.HasPrefix(c.ClientSecret, "nx_test_cs_") {
			t.Fatalf("confidential client: client_secret %q is not nx_test_cs_…: %s", c.ClientSecret, r)
		}
	default:
		if c.ClientSecret != "" {
			t.Fatalf("public client got a client_secret: %s", r)
		}
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("the answer holding client_secret lacks Cache-Control: no-store: %v", r.Header)
	}
	g := st.api(t, "GET", "/v1/oauth_clients/"+c.ID, st.owner.Admin.Key, nil)
	wantStatus(t, g, 200)
	if _, ok := g.JSON["client_secret"]; ok || strings.Contains(string(g.Body), "nx_test_cs_") {
		t.Errorf("GET /v1/oauth_clients/%s shows the secret again: %s", c.ID, g)
	}
	if g.Str("id") != c.ID || g.Str("client_id") != c.ID {
		t.Errorf("GET /v1/oauth_clients/%s: %s", c.ID, g)
	}
	return c
}

// ---------------------------------------------------------------------------
// A user agent over plain HTTP: a cookie jar, redirects not followed.

type oaAgent struct {
	st *oaStack
	hc *http.Client
}

// oaXFF sets X-Forwarded-For on every request.
type oaXFF struct {
	ip   string
	base http.RoundTripper
}

func (x oaXFF) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", x.ip)
	return x.base.RoundTrip(r)
}

// httpClient is an http.Client for x/oauth2 that sends the stack's IP.
func (st *oaStack) httpClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: oaXFF{ip: st.ip, base: oaTransport}}
}

func (st *oaStack) agent() *oaAgent {
	jar, _ := cookiejar.New(nil)
	return &oaAgent{st: st, hc: &http.Client{
		Jar: jar, Timeout: 20 * time.Second, Transport: oaXFF{ip: st.ip, base: oaTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// oaPage is an answer the agent got.
type oaPage struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        string
}

func (p *oaPage) String() string {
	return fmt.Sprintf("%s %s → %d Location=%q %s", p.Method, p.URL, p.Status, p.Header.Get("Location"), tail(p.Body, 1500))
}

// location is the Location header resolved against the request URL (nil
// when there is none).
func (p *oaPage) location(t testing.TB) *url.URL {
	t.Helper()
	l := p.Header.Get("Location")
	if l == "" {
		return nil
	}
	base, _ := url.Parse(p.URL)
	u, err := base.Parse(l)
	if err != nil {
		t.Fatalf("%s: Location %q does not parse: %v", p, l, err)
	}
	return u
}

func (a *oaAgent) send(t testing.TB, method, rawURL string, form url.Values) *oaPage {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, rawURL, err)
	}
	recordExchange(req, resp.StatusCode, resp.Header, data)
	return &oaPage{Method: method, URL: rawURL, Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

func (a *oaAgent) get(t testing.TB, rawURL string) *oaPage {
	t.Helper()
	return a.send(t, "GET", rawURL, nil)
}

var (
	oaFormRE  = regexp.MustCompile(`(?is)<form\b.*?</form>`)
	oaInputRE = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	oaAttrRE  = regexp.MustCompile(`([a-zA-Z_:-]+)\s*=\s*"([^"]*)"`)
	oaLiRE    = regexp.MustCompile(`(?is)<li\b[^>]*>(.*?)</li>`)
	oaStyleRE = regexp.MustCompile(`(?is)<style\b.*?</style>`)
	oaScrRE   = regexp.MustCompile(`(?is)<script\b.*?</script>`)
	oaTagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// oaHidden returns the hidden inputs of a page's first form (the consent
// page's second is "Not you? Sign out").
func oaHidden(body string) url.Values {
	if f := oaFormRE.FindString(body); f != "" {
		body = f
	}
	v := url.Values{}
	for _, in := range oaInputRE.FindAllString(body, -1) {
		attrs := map[string]string{}
		for _, m := range oaAttrRE.FindAllStringSubmatch(in, -1) {
			attrs[strings.ToLower(m[1])] = html.UnescapeString(m[2])
		}
		if strings.EqualFold(attrs["type"], "hidden") && attrs["name"] != "" {
			v.Set(attrs["name"], attrs["value"])
		}
	}
	return v
}

// oaVisibleText is what a reader sees of an HTML page, spaces collapsed.
func oaVisibleText(body string) string {
	s := oaScrRE.ReplaceAllString(oaStyleRE.ReplaceAllString(body, " "), " ")
	return strings.Join(strings.Fields(html.UnescapeString(oaTagRE.ReplaceAllString(s, " "))), " ")
}

// login signs m in through the login form that authURL shows first, and
// checks the form sends the browser back to the authorization request.
func (a *oaAgent) login(t testing.TB, authURL string, m oaMember) {
	t.Helper()
	p := a.get(t, authURL)
	if p.Status != 200 || !strings.Contains(p.Body, `action="/login"`) || !strings.Contains(p.Body, `name="email"`) ||
		!strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("without a session the authorization request must show the login form: %s", p)
	}
	f := oaHidden(p.Body)
	if len(f.Get("csrf_token")) < 16 {
		t.Fatalf("login form without a csrf_token: %s", p)
	}
	if !strings.HasPrefix(f.Get("return_to"), "/oauth/authorize?") {
		t.Fatalf("login form's return_to %q does not lead back to /oauth/authorize", f.Get("return_to"))
	}
	f.Set("email", m.Email)
	f.Set("password", m.Password)
	r := a.send(t, "POST", a.st.s.URL+"/login", f)
	loc := r.location(t)
	if (r.Status != 302 && r.Status != 303) || loc == nil || loc.Path != "/oauth/authorize" {
		t.Fatalf("POST /login should send the browser back to /oauth/authorize: %s", r)
	}
	want, _ := url.Parse(authURL)
	if got := loc.Query(); got.Encode() != want.Query().Encode() {
		t.Errorf("after login the authorization request changed: got %v, want %v", got, want.Query())
	}
	var session string
	for _, c := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "nexus_session=") {
			session = c
		}
	}
	lc := strings.ToLower(session)
	if session == "" || !strings.Contains(lc, "httponly") || !strings.Contains(lc, "samesite=lax") {
		t.Errorf("session cookie must be HttpOnly and SameSite=Lax: %q", session)
	}
	if strings.Contains(lc, "secure") {
		t.Errorf("session cookie is Secure although the issuer is http: %q", session)
	}
}

// consent shows the consent page of authURL (the agent is signed in) and
// returns it with its hidden fields.
func (a *oaAgent) consent(t testing.TB, authURL string) (*oaPage, url.Values) {
	t.Helper()
	p := a.get(t, authURL)
	if p.Status != 200 || !strings.Contains(p.Body, `action="/oauth/authorize"`) ||
		!strings.Contains(p.Body, `value="approve"`) || !strings.Contains(p.Body, `value="deny"`) {
		t.Fatalf("want the consent page with Approve and Deny: %s", p)
	}
	f := oaHidden(p.Body)
	if len(f.Get("csrf_token")) < 16 {
		t.Fatalf("consent form without a csrf_token: %s", p)
	}
	// A consent page in someone else's frame is a clickjacking target.
	if xfo, csp := p.Header.Get("X-Frame-Options"), p.Header.Get("Content-Security-Policy"); !strings.EqualFold(xfo, "DENY") &&
		!strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("the consent page may be framed: X-Frame-Options %q, CSP %q", xfo, csp)
	}
	if cc := p.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("the consent page (with its CSRF token) may be cached: Cache-Control %q", cc)
	}
	return p, f
}

// decide posts the consent form with decision.
func (a *oaAgent) decide(t testing.TB, f url.Values, decision string) *oaPage {
	t.Helper()
	g := url.Values{}
	for k, v := range f {
		g[k] = slices.Clone(v)
	}
	if decision != "" {
		g.Set("decision", decision)
	}
	return a.send(t, "POST", a.st.s.URL+"/oauth/authorize", g)
}

// oaBack checks p redirects to redirectURI with iss = issuer and returns
// the query it carries back.
func oaBack(t testing.TB, p *oaPage, redirectURI, issuer string) url.Values {
	t.Helper()
	loc := p.location(t)
	if (p.Status != 302 && p.Status != 303) || loc == nil {
		t.Fatalf("want a redirect to %s: %s", redirectURI, p)
	}
	bare := *loc
	bare.RawQuery = ""
	if bare.String() != redirectURI {
		t.Fatalf("redirected to %s, want the registered %s", loc, redirectURI)
	}
	q := loc.Query()
	if q.Get("iss") != issuer {
		t.Errorf("redirect iss = %q, want the issuer %q (RFC 9207): %s", q.Get("iss"), issuer, loc)
	}
	return q
}

// oaWantErrorPage checks an authorization answer is the HTML error page and
// sends the browser nowhere.
func oaWantErrorPage(t testing.TB, p *oaPage, what string) {
	t.Helper()
	if p.Status != 400 {
		t.Errorf("%s: want 400 and the error page, got %s", what, p)
	}
	if l := p.Header.Get("Location"); l != "" {
		t.Errorf("%s: must not redirect, got Location %q", what, l)
	}
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q, want an HTML page", what, ct)
	}
	if low := strings.ToLower(p.Body); strings.Contains(low, "http-equiv") || strings.Contains(low, "app.example") || strings.Contains(low, "evil.example") {
		t.Errorf("%s: the error page leads to the unverified redirect URI: %s", what, p)
	}
}

// oaAuthQuery is an authorization request; extra are name, value pairs
// ("" deletes the name).
func oaAuthQuery(c oaClient, redirect, state, challenge string, extra ...string) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {redirect}, "state": {state}}
	if challenge != "" {
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return q
}

func (st *oaStack) authURL(q url.Values) string { return st.s.URL + "/oauth/authorize?" + q.Encode() }

// code runs consent and approval for a signed-in agent and returns the code.
func (a *oaAgent) code(t testing.TB, q url.Values) string {
	t.Helper()
	_, f := a.consent(t, a.st.authURL(q))
	redirect := q.Get("redirect_uri")
	back := oaBack(t, a.decide(t, f, "approve"), redirect, a.st.s.URL)
	if back.Get("state") != q.Get("state") || back.Get("code") == "" || back.Get("error") != "" {
		t.Fatalf("approval: want code and state %q back, got %v", q.Get("state"), back)
	}
	return back.Get("code")
}

// token posts to the token endpoint as client c: client_secret_basic when
// basic, else client_secret_post; a public client sends client_id only.
func (st *oaStack) token(t testing.TB, c oaClient, basic bool, form url.Values) *Response {
	t.Helper()
	h := st.h(H{"Content-Type": "application/x-www-form-urlencoded"})
	f := url.Values{}
	for k, v := range form {
		if v[0] != "" {
			f[k] = v
		}
	}
	switch {
	case c.ClientSecret == "":
		f.Set("client_id", c.ClientID)
	case basic:
		h["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ClientID)+":"+url.QueryEscape(c.ClientSecret)))
	default:
		f.Set("client_id", c.ClientID)
		f.Set("client_secret", c.ClientSecret)
	}
	return do(t, "POST", st.s.URL+"/oauth/token", h, f.Encode())
}

func (st *oaStack) exchange(t testing.TB, c oaClient, code, redirect, verifier string) *Response {
	t.Helper()
	return st.token(t, c, true, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
}

func (st *oaStack) refresh(t testing.TB, c oaClient, rt, scope string) *Response {
	t.Helper()
	return st.token(t, c, false, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {scope}})
}

// introspect asks RFC 7662 about tok as client c (client_secret_basic).
func (st *oaStack) introspect(t testing.TB, c oaClient, tok string) *Response {
	t.Helper()
	h := st.h(H{"Content-Type": "application/x-www-form-urlencoded",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ClientID)+":"+url.QueryEscape(c.ClientSecret)))})
	r := do(t, "POST", st.s.URL+"/oauth/introspect", h, url.Values{"token": {tok}}.Encode())
	wantStatus(t, r, 200)
	if _, ok := r.JSON["active"].(bool); !ok {
		t.Fatalf("introspection answer without a boolean active: %s", r)
	}
	return r
}

type oaTokens struct{ Access, Refresh, Scope string }

// oaWantTokens checks a successful token answer (RFC 6749 §5.1, CONTRACT §7).
func oaWantTokens(t testing.TB, r *Response) oaTokens {
	t.Helper()
	wantStatus(t, r, 200)
	tk := oaTokens{Access: r.Str("access_token"), Refresh: r.Str("refresh_token"), Scope: r.Str("scope")}
	if !strings.HasPrefix(tk.Access, "nx_test_at_") || !strings.HasPrefix(tk.Refresh, "nx_test_rt_") {
		t.Fatalf("tokens are not nx_test_at_… / nx_test_rt_…: %s", r)
	}
	if !strings.EqualFold(r.Str("token_type"), "Bearer") || r.Get("expires_in") != float64(3600) || tk.Scope == "" {
		t.Errorf("token answer: want token_type Bearer, expires_in 3600 and a scope: %s", r)
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("token answer lacks Cache-Control: no-store: %v", r.Header)
	}
	return tk
}

// oaWantOAuthError checks an RFC 6749 §5.2 error answer.
func oaWantOAuthError(t testing.TB, r *Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.Str("error") != code {
		t.Fatalf("want %d {\"error\": %q}, got %s", status, code, r)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", r, ct)
	}
	if r.Str("access_token") != "" {
		t.Errorf("an error answer carries a token: %s", r)
	}
}

// tokensFor runs the whole flow for a signed-in agent: PKCE, consent,
// approval and the code exchange.
func (st *oaStack) tokensFor(t testing.TB, a *oaAgent, c oaClient, redirect string, extra ...string) oaTokens {
	t.Helper()
	v := oauth2.GenerateVerifier()
	code := a.code(t, oaAuthQuery(c, redirect, randomHex(8), oauth2.S256ChallengeFromVerifier(v), extra...))
	return oaWantTokens(t, st.exchange(t, c, code, redirect, v))
}

// signedIn returns an agent whose member has logged in.
func (st *oaStack) signedIn(t testing.TB, c oaClient, redirect string) *oaAgent {
	t.Helper()
	a := st.agent()
	a.login(t, st.authURL(oaAuthQuery(c, redirect, "login", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))), st.member)
	return a
}

// grants lists partner B's grants (its admin key) and returns the one with id.
func (st *oaStack) grant(t testing.TB, id string) map[string]any {
	t.Helper()
	r := st.api(t, "GET", "/v1/oauth_grants?limit=100", st.user.Admin.Key, nil)
	wantStatus(t, r, 200)
	for _, g := range r.Data() {
		if g["id"] == id {
			return g
		}
	}
	return nil
}

// activeGrants counts partner B's active grants of a client.
func (st *oaStack) activeGrants(t testing.TB, clientID string) int {
	t.Helper()
	r := st.api(t, "GET", "/v1/oauth_grants?limit=100", st.user.Admin.Key, nil)
	wantStatus(t, r, 200)
	n := 0
	for _, g := range r.Data() {
		if g["client_id"] == clientID && g["status"] == "active" {
			n++
		}
	}
	return n
}

// metadata is the RFC 8414 document.
func (st *oaStack) metadata(t testing.TB) *Response {
	t.Helper()
	r := do(t, "GET", st.s.URL+"/.well-known/oauth-authorization-server", st.h(nil), nil)
	wantStatus(t, r, 200)
	return r
}

// oaCallbackURL is a loopback redirect URI on a port nothing listens on.
func oaCallbackURL(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/cb"
}

// ---------------------------------------------------------------------------

// The code flow driven by golang.org/x/oauth2, the way a Go integrator would:
// metadata discovery, PKCE S256, login and consent over HTTP, the exchange,
// calls as the consenting partner, scope enforcement, and refresh rotation.
func TestOAuthFlowWithXOAuth2(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b)
		meta := st.metadata(t)
		issuer := meta.Str("issuer")
		redirect := oaCallbackURL(t)
		cl := st.createClient(t, "confidential", []string{redirect}, "read:balances", "read:funding")

		conf := &oauth2.Config{
			ClientID: cl.ClientID, ClientSecret: cl.ClientSecret, RedirectURL: redirect,
			Endpoint: oauth2.Endpoint{AuthURL: meta.Str("authorization_endpoint"), TokenURL: meta.Str("token_endpoint")},
			Scopes:   []string{"read:balances", "read:funding"},
		}
		verifier := oauth2.GenerateVerifier()
		state := randomHex(12)
		authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

		ua := st.agent()
		ua.login(t, authURL, st.member)
		page, form := ua.consent(t, authURL)
		text := oaVisibleText(page.Body)
		if !strings.Contains(text, cl.Name) {
			t.Errorf("the consent page does not name the app %q: %s", cl.Name, text)
		}
		if strings.Contains(page.Body, "<b>App</b>") {
			t.Errorf("the consent page shows the app name unescaped (HTML injection): %s", page)
		}
		if !regexp.MustCompile(`\btest\b`).MatchString(text) || regexp.MustCompile(`\blive\b`).MatchString(text) {
			t.Errorf("the consent page must name the test environment (and not live): %s", text)
		}
		oaCheckScopeWords(t, page.Body, []string{"read:balances", "read:funding"})

		back := oaBack(t, ua.decide(t, form, "approve"), redirect, issuer)
		if back.Get("code") == "" || back.Get("state") != state || back.Get("error") != "" {
			t.Fatalf("approval: want code and state %q, got %v", state, back)
		}
		if issuer != st.s.URL {
			t.Errorf("metadata issuer %q, want %q", issuer, st.s.URL)
		}

		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, st.httpClient())
		tok, err := conf.Exchange(ctx, back.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("x/oauth2 Exchange: %v", err)
		}
		if !strings.HasPrefix(tok.AccessToken, "nx_test_at_") || !strings.HasPrefix(tok.RefreshToken, "nx_test_rt_") ||
			!strings.EqualFold(tok.TokenType, "Bearer") {
			t.Fatalf("exchange: unexpected token %+v", tok)
		}
		if d := time.Until(tok.Expiry); d < 59*time.Minute || d > 61*time.Minute {
			t.Errorf("access token expires in %s, want 1 h", d)
		}
		if sc, _ := tok.Extra("scope").(string); !sameSet(strings.Fields(sc), []string{"read:balances", "read:funding"}) {
			t.Errorf("token scope %q, want read:balances read:funding", sc)
		}

		r := st.api(t, "GET", "/v1/balances", tok.AccessToken, nil)
		wantStatus(t, r, 200)
		if len(r.Data()) == 0 {
			t.Errorf("GET /v1/balances with the token: no balances: %s", r)
		}
		p := st.api(t, "GET", "/v1/partner", tok.AccessToken, nil)
		wantStatus(t, p, 200)
		if p.Str("id") != st.user.Partner.ID || p.Str("environment") != "test" || p.Str("credential.type") != "oauth_access_token" ||
			!sameSet(p.Strs("credential.scopes"), []string{"read:balances", "read:funding"}) {
			t.Errorf("GET /v1/partner with the token: want partner B %s, test, oauth_access_token, the granted scopes: %s", st.user.Partner.ID, p)
		}
		// x/oauth2's own transport works too.
		resp, err := conf.Client(ctx, tok).Get(st.s.URL + "/v1/balances/usdc")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET /v1/balances/usdc through conf.Client: %d", resp.StatusCode)
		}

		for _, c := range []struct{ method, path, scope string }{
			{"GET", "/v1/addresses", "read:addresses"},
			{"GET", "/v1/requests", "read:requests"},
			{"GET", "/v1/api_keys", "admin:all"},
			{"GET", "/v1/oauth_grants", "admin:all"},
		} {
			r := st.api(t, c.method, c.path, tok.AccessToken, nil)
			wantError(t, r, 403, "insufficient_scope")
			if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+c.scope+`"`) {
				t.Errorf("%s: WWW-Authenticate %q", r, h)
			}
		}

		// Refresh through the TokenSource once the access token looks expired:
		// both tokens rotate.
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Minute)
		fresh, err := conf.TokenSource(ctx, &expired).Token()
		if err != nil {
			t.Fatalf("x/oauth2 refresh: %v", err)
		}
		if fresh.AccessToken == tok.AccessToken || !strings.HasPrefix(fresh.AccessToken, "nx_test_at_") {
			t.Errorf("refresh did not give a new access token: %q", fresh.AccessToken)
		}
		if fresh.RefreshToken == tok.RefreshToken || !strings.HasPrefix(fresh.RefreshToken, "nx_test_rt_") {
			t.Errorf("refresh did not rotate the refresh token: %q (was %q)", fresh.RefreshToken, tok.RefreshToken)
		}
		if !fresh.Valid() {
			t.Errorf("refreshed token is not valid: %+v", fresh)
		}
		wantStatus(t, st.api(t, "GET", "/v1/balances", fresh.AccessToken, nil), 200)
		if p := st.api(t, "GET", "/v1/partner", fresh.AccessToken, nil); p.Str("id") != st.user.Partner.ID {
			t.Errorf("the refreshed token acts for %q, want partner B: %s", p.Str("id"), p)
		}

		// RFC 7662: the used refresh token is inactive, the new one active.
		if in := st.introspect(t, cl, tok.RefreshToken); in.Get("active") != false {
			t.Errorf("the rotated-out refresh token is still active: %s", in)
		}
		in := st.introspect(t, cl, fresh.AccessToken)
		if in.Get("active") != true || in.Str("client_id") != cl.ClientID || !sameSet(strings.Fields(in.Str("scope")), []string{"read:balances", "read:funding"}) {
			t.Errorf("introspection of the new access token: %s", in)
		}

		// RFC 7009: the app signs out; an unknown token is no error.
		revoke := func(tok string) *Response {
			return do(t, "POST", meta.Str("revocation_endpoint"), st.h(H{"Content-Type": "application/x-www-form-urlencoded"}),
				url.Values{"token": {tok}, "client_id": {cl.ClientID}, "client_secret": {cl.ClientSecret}}.Encode())
		}
		wantStatus(t, revoke("nx_test_rt_unknown"), 200)
		wantStatus(t, revoke(fresh.RefreshToken), 200)
		wantError(t, st.api(t, "GET", "/v1/balances", fresh.AccessToken, nil), 401, "token_revoked")
		if in := st.introspect(t, cl, fresh.RefreshToken); in.Get("active") != false {
			t.Errorf("revoked refresh token still active: %s", in)
		}
	})
}

// oaCheckScopeWords: the consent page lists each scope once, in plain words.
func oaCheckScopeWords(t testing.TB, body string, scopes []string) {
	t.Helper()
	var items []string
	for _, m := range oaLiRE.FindAllStringSubmatch(body, -1) {
		items = append(items, oaVisibleText(m[1]))
	}
	if len(items) != len(scopes) {
		t.Errorf("consent page lists %d permissions %q, want %d for %v", len(items), items, len(scopes), scopes)
	}
	for _, sc := range scopes {
		found := false
		for _, it := range items {
			for _, hint := range oaScopeHints[sc] {
				found = found || strings.Contains(strings.ToLower(it), hint)
			}
		}
		if !found {
			t.Errorf("consent page: no plain-words line for %s among %q", sc, items)
		}
	}
	for _, it := range items {
		if it == "" || strings.Contains(it, ":") {
			t.Errorf("consent page: permission %q is not in plain words", it)
		}
	}
}

// Every refusal of CONTRACT §7 with its RFC error, and no redirect where a
// redirect would leak to an unverified URI.
func TestOAuthRefusals(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		base := oaSetup(t, b)
		const appCB = "https://app.example/cb"
		loopCB := oaCallbackURL(t)
		conf := base.createClient(t, "confidential", []string{appCB, loopCB}, "read:balances", "read:funding")
		pub := base.createClient(t, "public", []string{loopCB}, "read:balances")

		t.Run("registration rules", func(t *testing.T) {
			st := base.fork()
			for _, c := range []struct {
				body map[string]any
				code string
			}{
				{map[string]any{"name": "x", "type": "public", "redirect_uris": []string{"http://app.example/cb"}, "scopes": []string{"read:balances"}}, "parameter_invalid"},
				{map[string]any{"name": "x", "type": "public", "redirect_uris": []string{"https://app.example/cb#f"}, "scopes": []string{"read:balances"}}, "parameter_invalid"},
				{map[string]any{"name": "x", "type": "public", "redirect_uris": []string{"/cb"}, "scopes": []string{"read:balances"}}, "parameter_invalid"},
				{map[string]any{"name": "x", "type": "public", "redirect_uris": []string{appCB}, "scopes": []string{"admin:all"}}, "invalid_scopes"},
			} {
				wantError(t, st.api(t, "POST", "/v1/oauth_clients", st.owner.Admin.Key, c.body), 400, c.code)
			}
		})

		t.Run("unknown client: error page, no redirect", func(t *testing.T) {
			st := base.fork()
			gone := st.createClient(t, "confidential", []string{appCB}, "read:balances")
			wantStatus(t, st.api(t, "DELETE", "/v1/oauth_clients/"+gone.ID, st.owner.Admin.Key, nil), 200)
			for _, a := range []*oaAgent{st.agent(), st.signedIn(t, conf, appCB)} {
				for name, q := range map[string]url.Values{
					"not registered": oaAuthQuery(oaClient{ClientID: "cli_doesnotexist0000000000"}, appCB, "s1", ""),
					"missing":        oaAuthQuery(oaClient{}, appCB, "s1", "", "client_id", ""),
					"deleted":        oaAuthQuery(gone, appCB, "s1", ""),
				} {
					oaWantErrorPage(t, a.get(t, st.authURL(q)), "client "+name)
				}
			}
		})

		t.Run("redirect URI not registered exactly: error page, no redirect", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, conf, appCB)
			for _, bad := range []string{
				appCB + "/",
				"https://APP.example/cb",
				"https://app.example/CB",
				appCB + "/evil",
				appCB + "evil",
				appCB + "?extra=1",
				appCB + "#frag",
				"https://app.example:443/cb",
				"http://app.example/cb",
				"https://evil.example/cb",
			} {
				q := oaAuthQuery(conf, bad, "s2", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
				oaWantErrorPage(t, a.get(t, st.authURL(q)), "redirect_uri "+bad)
				// Nor may the consent POST smuggle one in.
				q.Set("decision", "approve")
				oaWantErrorPage(t, a.send(t, "POST", st.s.URL+"/oauth/authorize", q), "POST with redirect_uri "+bad)
			}
			// Two URIs registered: the request must say which.
			q := oaAuthQuery(conf, "", "s2", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()), "redirect_uri", "")
			oaWantErrorPage(t, a.get(t, st.authURL(q)), "no redirect_uri with two registered")
		})

		t.Run("errors redirect back with error, state and iss", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, pub, loopCB)
			ch := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
			for _, c := range []struct {
				name   string
				client oaClient
				q      url.Values
				err    string
			}{
				{"public client without code_challenge", pub, oaAuthQuery(pub, loopCB, "st-1", ""), "invalid_request"},
				{"code_challenge_method=plain", pub, oaAuthQuery(pub, loopCB, "st-2", ch, "code_challenge_method", "plain"), "invalid_request"},
				{"plain challenge of a confidential client", conf, oaAuthQuery(conf, loopCB, "st-3", oauth2.GenerateVerifier(), "code_challenge_method", "plain"), "invalid_request"},
				{"code_challenge_method missing (plain by default)", pub, oaAuthQuery(pub, loopCB, "st-4", ch, "code_challenge_method", ""), "invalid_request"},
				{"response_type=token", pub, oaAuthQuery(pub, loopCB, "st-5", ch, "response_type", "token"), "unsupported_response_type"},
				{"scope beyond the client's", pub, oaAuthQuery(pub, loopCB, "st-6", ch, "scope", "read:balances read:funding"), "invalid_scope"},
				{"scope admin:all", conf, oaAuthQuery(conf, loopCB, "st-7", ch, "scope", "admin:all"), "invalid_scope"},
			} {
				for _, p := range []*oaPage{a.get(t, st.authURL(c.q)), st.agent().get(t, st.authURL(c.q))} {
					back := oaBack(t, p, loopCB, st.s.URL)
					if back.Get("error") != c.err || back.Get("state") != c.q.Get("state") || back.Get("code") != "" {
						t.Errorf("%s: want error=%s with state %q and no code, got %v", c.name, c.err, c.q.Get("state"), back)
					}
				}
			}
		})

		t.Run("deny", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, conf, loopCB)
			state := "st-deny a+b&c=d/é%20?#"
			q := oaAuthQuery(conf, loopCB, state, oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
			_, f := a.consent(t, st.authURL(q))
			back := oaBack(t, a.decide(t, f, "deny"), loopCB, st.s.URL)
			if back.Get("error") != "access_denied" || back.Get("state") != state || back.Get("code") != "" {
				t.Errorf("deny: want error=access_denied and the state %q exactly, got %v", state, back)
			}
		})

		t.Run("redirect_uri omitted when one is registered", func(t *testing.T) {
			// RFC 6749 §3.1.2.3 lets the request leave redirect_uri out when
			// a single one is registered; §4.1.3 then wants it left out of
			// the token request too.
			st := base.fork()
			a := st.signedIn(t, pub, loopCB)
			v := oauth2.GenerateVerifier()
			q := oaAuthQuery(pub, "", "st-o", oauth2.S256ChallengeFromVerifier(v), "redirect_uri", "")
			_, f := a.consent(t, st.authURL(q))
			back := oaBack(t, a.decide(t, f, "approve"), loopCB, st.s.URL)
			if back.Get("code") == "" || back.Get("state") != "st-o" {
				t.Fatalf("approval without redirect_uri: %v", back)
			}
			r := st.exchange(t, pub, back.Get("code"), "", v)
			if r.Status != 200 {
			}
			oaWantTokens(t, r)
		})

		t.Run("login: wrong password, and return_to stays on /oauth/authorize", func(t *testing.T) {
			st := base.fork()
			a := st.agent()
			lp := a.get(t, st.authURL(oaAuthQuery(conf, appCB, "st-l", "")))
			f := oaHidden(lp.Body)
			f.Set("email", st.member.Email)
			f.Set("password", st.member.Password+"x")
			p := a.send(t, "POST", st.s.URL+"/login", f)
			if p.Status != 401 || p.Header.Get("Location") != "" || strings.Contains(strings.Join(p.Header.Values("Set-Cookie"), ";"), "nexus_session=") {
				t.Errorf("wrong password: want 401, the form again and no session, got %s", p)
			}
			for _, rt := range []string{"https://evil.example/x", "//evil.example/x", "/\\evil.example", "/oauth/authorize?x=1\r\nLocation: https://evil.example"} {
				a := st.agent()
				f := oaHidden(a.get(t, st.s.URL+"/login").Body)
				f.Set("return_to", rt)
				f.Set("email", st.member.Email)
				f.Set("password", st.member.Password)
				p := a.send(t, "POST", st.s.URL+"/login", f)
				if l := p.location(t); l != nil && (l.Host != "" && l.Host != st.s.Addr || strings.Contains(strings.ToLower(l.String()), "evil")) {
					t.Errorf("login with return_to %q redirects off the server: %s", rt, p)
				}
			}
		})

		t.Run("consent by a partner that cannot use the environment", func(t *testing.T) {
			st := base.fork()
			pending := b.CreatePartner(t, "pending")
			st.member = oaCreateMember(t, b, pending.ID)
			live := st
			lc := st.createLiveClient(t, appCB)
			a := live.signedIn(t, lc, appCB)
			q := oaAuthQuery(lc, appCB, "st-p", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
			page, f := a.consent(t, st.authURL(q))
			if text := oaVisibleText(page.Body); !regexp.MustCompile(`\blive\b`).MatchString(text) {
				t.Errorf("the consent page of a live app does not say live: %s", text)
			}
			back := oaBack(t, a.decide(t, f, "approve"), appCB, st.s.URL)
			if back.Get("error") != "access_denied" || back.Get("code") != "" || back.Get("state") != "st-p" {
				t.Errorf("a pending partner approving a live app: want error=access_denied, got %v", back)
			}
		})

		t.Run("wrong or missing code_verifier", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, pub, loopCB)
			v := oauth2.GenerateVerifier()
			code := a.code(t, oaAuthQuery(pub, loopCB, "st-v", oauth2.S256ChallengeFromVerifier(v)))
			oaWantOAuthError(t, st.exchange(t, pub, code, loopCB, oauth2.GenerateVerifier()), 400, "invalid_grant")
			oaWantOAuthError(t, st.exchange(t, pub, code, loopCB, ""), 400, "invalid_grant")
			oaWantOAuthError(t, st.exchange(t, pub, code, loopCB, oauth2.S256ChallengeFromVerifier(v)), 400, "invalid_grant")
		})

		t.Run("code reused: refused and its tokens revoked", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, conf, appCB)
			v := oauth2.GenerateVerifier()
			code := a.code(t, oaAuthQuery(conf, appCB, "st-r", oauth2.S256ChallengeFromVerifier(v)))
			tk := oaWantTokens(t, st.exchange(t, conf, code, appCB, v))
			wantStatus(t, st.api(t, "GET", "/v1/balances", tk.Access, nil), 200)

			oaWantOAuthError(t, st.exchange(t, conf, code, appCB, v), 400, "invalid_grant")
			wantError(t, st.api(t, "GET", "/v1/balances", tk.Access, nil), 401, "token_revoked")
			oaWantOAuthError(t, st.refresh(t, conf, tk.Refresh, ""), 400, "invalid_grant")
		})

		t.Run("expired code", func(t *testing.T) {
			// Codes live 60 s. Rather than wait, age this code in the
			// database: expires_at = created_at (already past).
			st := base.fork()
			a := st.signedIn(t, conf, appCB)
			v := oauth2.GenerateVerifier()
			code := a.code(t, oaAuthQuery(conf, appCB, "st-e", oauth2.S256ChallengeFromVerifier(v)))
			oaAgeCode(t, b, code)
			oaWantOAuthError(t, st.exchange(t, conf, code, appCB, v), 400, "invalid_grant")
		})

		t.Run("code bound to its client and redirect URI", func(t *testing.T) {
			st := base.fork()
			other := st.createClient(t, "confidential", []string{appCB, loopCB}, "read:balances", "read:funding")
			otherPub := st.createClient(t, "public", []string{appCB}, "read:balances")
			a := st.signedIn(t, conf, appCB)
			v := oauth2.GenerateVerifier()
			code := a.code(t, oaAuthQuery(conf, appCB, "st-c", oauth2.S256ChallengeFromVerifier(v)))
			oaWantOAuthError(t, st.exchange(t, other, code, appCB, v), 400, "invalid_grant")
			oaWantOAuthError(t, st.exchange(t, otherPub, code, appCB, v), 400, "invalid_grant")
			oaWantOAuthError(t, st.exchange(t, conf, code, loopCB, v), 400, "invalid_grant")
		})

		t.Run("concurrent use of one code or one refresh token: one winner", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, conf, appCB)
			race := func(what string, form url.Values) {
				t.Helper()
				const n = 8
				type result struct {
					status int
					body   string
					err    error
				}
				results := make(chan result, n)
				start := make(chan struct{})
				for i := 0; i < n; i++ {
					go func() {
						<-start
						req, _ := http.NewRequest("POST", st.s.URL+"/oauth/token", strings.NewReader(form.Encode()))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						req.SetBasicAuth(url.QueryEscape(conf.ClientID), url.QueryEscape(conf.ClientSecret))
						resp, err := st.httpClient().Do(req)
						if err != nil {
							results <- result{err: err}
							return
						}
						data, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						results <- result{status: resp.StatusCode, body: string(data)}
					}()
				}
				close(start)
				won := 0
				for i := 0; i < n; i++ {
					r := <-results
					switch {
					case r.err != nil:
						t.Errorf("%s: %v", what, r.err)
					case r.status == 200:
						won++
					case r.status != 400 || !strings.Contains(r.body, `"invalid_grant"`):
						t.Errorf("%s: a concurrent loser got %d %s, want 400 invalid_grant", what, r.status, r.body)
					}
				}
				if won != 1 {
					t.Errorf("%s: %d of %d concurrent requests got tokens, want exactly 1", what, won, n)
				}
			}
			v := oauth2.GenerateVerifier()
			code := a.code(t, oaAuthQuery(conf, appCB, "st-race", oauth2.S256ChallengeFromVerifier(v)))
			race("one code", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCB}, "code_verifier": {v}})
			tk := st.tokensFor(t, a, conf, appCB)
			race("one refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}})
		})

		t.Run("refresh token reused: grant revoked", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, conf, appCB)
			tk1 := st.tokensFor(t, a, conf, appCB)
			grantID := st.api(t, "GET", "/v1/partner", tk1.Access, nil).Str("credential.id")
			tk2 := oaWantTokens(t, st.refresh(t, conf, tk1.Refresh, ""))
			if tk2.Refresh == tk1.Refresh || tk2.Access == tk1.Access {
				t.Fatalf("refresh did not rotate: %+v then %+v", tk1, tk2)
			}
			wantStatus(t, st.api(t, "GET", "/v1/balances", tk2.Access, nil), 200)

			oaWantOAuthError(t, st.refresh(t, conf, tk1.Refresh, ""), 400, "invalid_grant")
			wantError(t, st.api(t, "GET", "/v1/balances", tk2.Access, nil), 401, "token_revoked")
			wantError(t, st.api(t, "GET", "/v1/balances", tk1.Access, nil), 401, "token_revoked")
			oaWantOAuthError(t, st.refresh(t, conf, tk2.Refresh, ""), 400, "invalid_grant")
			if g := st.grant(t, grantID); g == nil || g["status"] != "revoked" {
				t.Errorf("grant %s after refresh-token reuse: %v, want status revoked", grantID, g)
			}
		})

		t.Run("refresh may narrow the scope, never widen it", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, conf, appCB)
			narrow := st.tokensFor(t, a, conf, appCB, "scope", "read:balances")
			if narrow.Scope != "read:balances" {
				t.Errorf("granted scope %q, want read:balances", narrow.Scope)
			}
			for _, sc := range []string{"read:balances read:funding", "read:funding", "write:addresses", "admin:all", "no-such-scope"} {
				oaWantOAuthError(t, st.refresh(t, conf, narrow.Refresh, sc), 400, "invalid_scope")
			}

			both := st.tokensFor(t, a, conf, appCB)
			tk := oaWantTokens(t, st.refresh(t, conf, both.Refresh, "read:balances"))
			if tk.Scope != "read:balances" {
				t.Errorf("narrowed refresh: scope %q, want read:balances", tk.Scope)
			}
			wantStatus(t, st.api(t, "GET", "/v1/balances", tk.Access, nil), 200)
			wantError(t, st.api(t, "GET", "/v1/funding", tk.Access, nil), 403, "insufficient_scope")
		})

		t.Run("client authentication", func(t *testing.T) {
			st := base.fork()
			form := url.Values{"grant_type": {"authorization_code"}, "code": {"whatever"}, "redirect_uri": {appCB}}
			wrong := conf
			wrong.ClientSecret = oaWrongSecret(conf.ClientSecret)
			stolen := conf // the secret of another client
			stolen.ClientSecret = st.createClient(t, "confidential", []string{appCB}, "read:balances").ClientSecret
			unknown := wrong
			unknown.ClientID = "cli_doesnotexist0000000000"
			for _, c := range []struct {
				name   string
				client oaClient
				basic  bool
			}{
				{"wrong secret, basic", wrong, true},
				{"wrong secret, post", wrong, false},
				{"another client's secret, basic", stolen, true},
				{"unknown client, basic", unknown, true},
				{"no secret", oaClient{ClientID: conf.ClientID}, false},
			} {
				r := st.token(t, c.client, c.basic, form)
				oaWantOAuthError(t, r, 401, "invalid_client")
				wa := r.Header.Get("WWW-Authenticate")
				if c.basic && !strings.HasPrefix(strings.ToLower(wa), "basic") {
					t.Errorf("%s: WWW-Authenticate %q, want a Basic challenge (RFC 6749 §5.2)", c.name, wa)
				}
			}
			// A public client presenting a secret is not authenticated either.
			withSecret := pub
			withSecret.ClientSecret = conf.ClientSecret
			oaWantOAuthError(t, st.token(t, withSecret, false, form), 401, "invalid_client")
		})

		t.Run("forged CSRF token on consent: 403, no code", func(t *testing.T) {
			st := base.fork()
			a := st.signedIn(t, conf, appCB)
			q := oaAuthQuery(conf, appCB, "st-x", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
			_, f := a.consent(t, st.authURL(q))
			before := st.activeGrants(t, conf.ClientID)
			forged := url.Values{}
			for k, v := range f {
				forged[k] = v
			}
			for name, token := range map[string]string{"forged": "forged-" + randomHex(24), "empty": ""} {
				forged.Set("csrf_token", token)
				p := a.decide(t, forged, "approve")
				if p.Status != 403 || p.Header.Get("Location") != "" || strings.Contains(p.Body, "code=") {
					t.Errorf("consent POST with a %s csrf_token: want 403 and no redirect, got %s", name, p)
				}
			}
			// A cross-site form cannot carry the cookie's twin either: a
			// second browser's valid pair does not fit this session.
			b2 := st.signedIn(t, conf, appCB)
			_, f2 := b2.consent(t, st.authURL(q))
			forged.Set("csrf_token", f2.Get("csrf_token"))
			if p := a.decide(t, forged, "approve"); p.Status != 403 || p.Header.Get("Location") != "" {
				t.Errorf("consent POST with another browser's csrf_token: want 403, got %s", p)
			}
			if n := st.activeGrants(t, conf.ClientID); n != before {
				t.Errorf("forged consent POSTs created grants: %d active grants of the app, %d before", n, before)
			}
			// The genuine form still works.
			oaBack(t, a.decide(t, f, "approve"), appCB, st.s.URL)

			// The login form is protected the same way.
			lp := st.agent().get(t, st.authURL(q))
			lf := oaHidden(lp.Body)
			lf.Set("csrf_token", "forged-"+randomHex(24))
			lf.Set("email", st.member.Email)
			lf.Set("password", st.member.Password)
			if p := st.agent().send(t, "POST", st.s.URL+"/login", lf); p.Status != 403 || p.Header.Get("Location") != "" {
				t.Errorf("login POST with a forged csrf_token: want 403, got %s", p)
			}
		})
	})
}

// oaWrongSecret returns a secret shaped like s that is not s.
func oaWrongSecret(s string) string {
	if len(s) < 12 {
		return s + "x"
	}
	// Same prefix, different random part: it passes no checksum, which is
	// what an attacker guessing would send.
	return s[:11] + strings.Repeat("A", len(s)-11)
}

// oaAgeCode makes a code expired by moving its expiry to its creation.
func oaAgeCode(t testing.TB, b *Backend, code string) {
	t.Helper()
	sum := sha256.Sum256([]byte(code))
	q := "UPDATE oauth_codes SET expires_at = created_at WHERE code_hash = ?"
	if b.Name == "postgres" {
		q = "UPDATE oauth_codes SET expires_at = created_at WHERE code_hash = $1"
	}
	res, err := OpenDB(t, b.URL).Exec(q, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("ageing the code: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("ageing the code: %d rows changed, want 1 (is the code stored as its SHA-256 hex digest?)", n)
	}
}

// RFC 8414 metadata: required fields, this server's issuer, S256 only, the
// two grant types, and endpoints that exist.
func TestOAuthMetadata(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := &oaStack{b: b, s: oaServer(t, b), ip: oaFakeIP()}
		m := st.metadata(t)
		if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("metadata Content-Type %q", ct)
		}
		for _, f := range []string{"issuer", "authorization_endpoint", "token_endpoint"} {
			if m.Str(f) == "" {
				t.Errorf("metadata lacks %s: %s", f, m)
			}
		}
		if m.Str("issuer") != st.s.URL {
			t.Errorf("issuer %q, want the server's base URL %q", m.Str("issuer"), st.s.URL)
		}
		if u, err := url.Parse(m.Str("issuer")); err != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
			t.Errorf("issuer %q must be a URL without query, fragment or trailing slash", m.Str("issuer"))
		}
		if got := m.Strs("response_types_supported"); !slices.Contains(got, "code") {
			t.Errorf("response_types_supported %v lacks code", got)
		}
		if got := m.Strs("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
			t.Errorf("code_challenge_methods_supported %v, want [S256]", got)
		}
		if got := m.Strs("grant_types_supported"); !sameSet(got, []string{"authorization_code", "refresh_token"}) {
			t.Errorf("grant_types_supported %v, want authorization_code and refresh_token", got)
		}
		if got := m.Get("authorization_response_iss_parameter_supported"); got != true {
			t.Errorf("authorization_response_iss_parameter_supported = %v, want true (iss is sent, RFC 9207)", got)
		}
		if got := m.Strs("scopes_supported"); slices.Contains(got, "admin:all") {
			t.Errorf("scopes_supported %v offers admin:all to third-party apps", got)
		}

		// Every endpoint listed answers on its own method (an error for an
		// empty request, but never 404, 405 or 5xx).
		checked := 0
		for k, v := range m.JSON {
			u, _ := v.(string)
			if !strings.HasSuffix(k, "_endpoint") && k != "service_documentation" && k != "jwks_uri" && k != "registration_endpoint" {
				continue
			}
			if !strings.HasPrefix(u, st.s.URL+"/") {
				t.Errorf("%s = %q is not on this server", k, u)
				continue
			}
			checked++
			var r *Response
			if k == "authorization_endpoint" || k == "service_documentation" || k == "jwks_uri" {
				r = do(t, "GET", u, st.h(nil), nil)
			} else {
				r = do(t, "POST", u, st.h(H{"Content-Type": "application/x-www-form-urlencoded"}), "")
			}
			if r.Status == 404 || r.Status == 405 || r.Status >= 500 {
				t.Errorf("%s %s does not answer: %s", k, u, r)
			}
		}
		if checked < 2 {
			t.Errorf("metadata lists %d endpoints", checked)
		}
	})
}

// A grant revoked on one instance stops its tokens on another within 1 s,
// and deleting a client stops every token issued to it (CONTRACT §2, §5).
func TestOAuthGrantRevocationAcrossInstances(t *testing.T) { // serial: it measures a delay
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		b.RequirePostgres(t)
		st := oaSetup(t, b)
		onB := st.on(oaServer(t, b))
		redirect := "https://app.example/cb"
		cl := st.createClient(t, "confidential", []string{redirect}, "read:balances", "read:funding")
		ua := st.signedIn(t, cl, redirect)

		refusedOnB := func(t *testing.T, what, tok string) {
			t.Helper()
			var last *Response
			took, ok := poll(3*time.Second, 50*time.Millisecond, func() bool {
				last = onB.api(t, "GET", "/v1/balances", tok, nil)
				return last.Status != 200
			})
			if !ok {
				t.Fatalf("server B still accepts the token %s after %s: %s", took, what, last)
			}
			wantError(t, last, 401, "token_revoked")
			if took >= time.Second {
				t.Errorf("server B refused the token %s after %s, want < 1s", took, what)
			}
			t.Logf("server B refused the token %s after %s", took.Round(time.Millisecond), what)
		}

		t.Run("grant revoked", func(t *testing.T) {
			start := time.Now().Add(-2 * time.Second)
			tk := st.tokensFor(t, ua, cl, redirect)
			for i := 0; i < 3; i++ { // B verifies it and caches it
				wantStatus(t, onB.api(t, "GET", "/v1/balances", tk.Access, nil), 200)
			}
			grantID := onB.api(t, "GET", "/v1/partner", tk.Access, nil).Str("credential.id")
			if !strings.HasPrefix(grantID, "grt_") {
				t.Fatalf("the token's credential id %q is not a grant", grantID)
			}
			g := st.grant(t, grantID)
			if g == nil {
				t.Fatalf("GET /v1/oauth_grants (partner B) does not list grant %s", grantID)
			}
			created, err := time.Parse(time.RFC3339, fmt.Sprint(g["created_at"]))
			if g["object"] != "oauth_grant" || g["client_id"] != cl.ClientID || g["client_name"] != cl.Name || g["status"] != "active" ||
				err != nil || created.Before(start) || created.After(time.Now().Add(2*time.Second)) {
				t.Errorf("grant %s: want client_id, client_name, created_at of the grant: %v", grantID, g)
			}
			if sc, _ := g["scopes"].([]any); len(sc) != 2 {
				t.Errorf("grant %s: scopes %v, want read:balances and read:funding", grantID, g["scopes"])
			}
			if in := onB.introspect(t, cl, tk.Access); in.Get("active") != true || (in.Str("grant_id") != "" && in.Str("grant_id") != grantID) {
				t.Errorf("introspection before revocation: %s", in)
			}

			r := st.api(t, "DELETE", "/v1/oauth_grants/"+grantID, st.user.Admin.Key, nil)
			wantStatus(t, r, 200)
			if r.Str("id") != grantID || r.Str("status") != "revoked" {
				t.Errorf("DELETE /v1/oauth_grants/%s: %s", grantID, r)
			}
			refusedOnB(t, "the grant was revoked on A", tk.Access)
			wantError(t, st.api(t, "GET", "/v1/balances", tk.Access, nil), 401, "token_revoked")
			if in := onB.introspect(t, cl, tk.Access); in.Get("active") != false || len(in.JSON) != 1 {
				t.Errorf("introspection after revocation: want exactly {\"active\": false}, got %s", in)
			}
			oaWantOAuthError(t, onB.refresh(t, cl, tk.Refresh, ""), 400, "invalid_grant")
			wantError(t, st.api(t, "DELETE", "/v1/oauth_grants/"+grantID, st.user.Admin.Key, nil), 409, "invalid_state")
		})

		t.Run("client deleted", func(t *testing.T) {
			tk1 := st.tokensFor(t, ua, cl, redirect)
			tk2 := onB.tokensFor(t, onB.signedIn(t, cl, redirect), cl, redirect)
			for _, tk := range []oaTokens{tk1, tk2} {
				wantStatus(t, onB.api(t, "GET", "/v1/balances", tk.Access, nil), 200)
			}
			r := st.api(t, "DELETE", "/v1/oauth_clients/"+cl.ID, st.owner.Admin.Key, nil)
			wantStatus(t, r, 200)
			if r.Str("id") != cl.ID || r.Str("status") == "active" {
				t.Errorf("DELETE /v1/oauth_clients/%s: %s", cl.ID, r)
			}
			refusedOnB(t, "its client was deleted on A", tk1.Access)
			refusedOnB(t, "its client was deleted on A", tk2.Access)
			for _, tk := range []oaTokens{tk1, tk2} {
				wantError(t, st.api(t, "GET", "/v1/balances", tk.Access, nil), 401, "token_revoked")
				// The client no longer authenticates at all.
				oaWantOAuthError(t, onB.refresh(t, cl, tk.Refresh, ""), 401, "invalid_client")
			}
			// The app no longer shows among B's active grants.
			r = st.api(t, "GET", "/v1/oauth_grants?limit=100", st.user.Admin.Key, nil)
			for _, g := range r.Data() {
				if g["client_id"] == cl.ClientID && g["status"] == "active" {
					t.Errorf("grant %v of the deleted client is still active", g["id"])
				}
			}
		})
	})
}

// Clients and grants are tenant objects: another partner's key sees 404,
// and its attempts change nothing (CONTRACT §1).
func TestOAuthIsolation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b)
		c := b.NewTenant(t, "approved")
		redirect := "https://app.example/cb"
		cl := st.createClient(t, "confidential", []string{redirect}, "read:balances")
		tk := st.tokensFor(t, st.signedIn(t, cl, redirect), cl, redirect)
		grantID := st.api(t, "GET", "/v1/partner", tk.Access, nil).Str("credential.id")

		for _, who := range []struct {
			name string
			key  string
		}{{"partner C", c.Admin.Key}, {"partner B (the consenting one)", st.user.Admin.Key}} {
			wantError(t, st.api(t, "GET", "/v1/oauth_clients/"+cl.ID, who.key, nil), 404, "resource_missing")
			wantError(t, st.api(t, "DELETE", "/v1/oauth_clients/"+cl.ID, who.key, nil), 404, "resource_missing")
			r := st.api(t, "GET", "/v1/oauth_clients?limit=100", who.key, nil)
			wantStatus(t, r, 200)
			for _, x := range r.Data() {
				if x["id"] == cl.ID {
					t.Errorf("%s lists partner A's client: %s", who.name, r)
				}
			}
		}
		for _, who := range []struct {
			name string
			key  string
		}{{"partner C", c.Admin.Key}, {"partner A (the app's owner)", st.owner.Admin.Key}} {
			wantError(t, st.api(t, "DELETE", "/v1/oauth_grants/"+grantID, who.key, nil), 404, "resource_missing")
			r := st.api(t, "GET", "/v1/oauth_grants?limit=100", who.key, nil)
			wantStatus(t, r, 200)
			for _, g := range r.Data() {
				if g["id"] == grantID {
					t.Errorf("%s lists partner B's grant: %s", who.name, r)
				}
			}
		}
		// Another app cannot introspect it (RFC 7662 §2.1: the owning client only).
		cst := *st
		cst.owner = c
		otherApp := cst.createClient(t, "confidential", []string{redirect}, "read:balances")
		if in := st.introspect(t, otherApp, tk.Access); in.Get("active") != false || len(in.JSON) != 1 {
			t.Errorf("another client introspecting the token: want {\"active\": false}, got %s", in)
		}
		// A key of B's other environment does not see it either.
		live := b.CreateKey(t, st.user.Partner.ID, "live", "secret")
		wantError(t, st.api(t, "DELETE", "/v1/oauth_grants/"+grantID, live.Key, nil), 404, "resource_missing")
		// Nor does the owner's live key see its test-environment client.
		ownerLive := b.CreateKey(t, st.owner.Partner.ID, "live", "secret")
		wantError(t, st.api(t, "GET", "/v1/oauth_clients/"+cl.ID, ownerLive.Key, nil), 404, "resource_missing")
		wantError(t, st.api(t, "DELETE", "/v1/oauth_clients/"+cl.ID, ownerLive.Key, nil), 404, "resource_missing")
		if r := st.api(t, "GET", "/v1/oauth_clients/"+cl.ID, st.owner.Admin.Key, nil); r.Status != 200 || r.Str("status") != "active" {
			t.Errorf("the client after the refused attempts: %s", r)
		}

		// Nothing changed.
		wantStatus(t, st.api(t, "GET", "/v1/balances", tk.Access, nil), 200)
		if g := st.grant(t, grantID); g == nil || g["status"] != "active" {
			t.Errorf("grant %s after the refused attempts: %v", grantID, g)
		}
		if r := st.api(t, "GET", "/v1/oauth_clients/"+cl.ID, st.owner.Admin.Key, nil); r.Status != 200 || r.Str("status") != "active" {
			t.Errorf("client after the refused attempts: %s", r)
		}
		fresh := oaWantTokens(t, st.refresh(t, cl, tk.Refresh, ""))

		// The tokens act for B: once B may use nothing, neither may they.
		b.SetPartnerStatus(t, st.user.Partner.ID, "inactive")
		// Only bounded here (a parallel test measures no delay; the 1 s
		// promise is TestPartnerStatusReachesRunningServer's).
		var last *Response
		took, ok := poll(3*time.Second, 50*time.Millisecond, func() bool {
			last = st.api(t, "GET", "/v1/balances", fresh.Access, nil)
			return last.Status != 200
		})
		if !ok {
			t.Errorf("the token of an inactive partner still works after %s: %s", took, last)
		}
		t.Logf("the token of the inactive partner was refused after %s", took.Round(time.Millisecond))
		wantError(t, last, 403, "partner_not_approved")
	})
}
