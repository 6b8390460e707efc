package httpapi

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
)

// browser is a user agent over App().Test: it keeps cookies and follows no
// redirect.
type browser struct {
	t       *testing.T
	srv     *Server
	cookies map[string]string
}

func newBrowser(t *testing.T, srv *Server) *browser {
	return &browser{t: t, srv: srv, cookies: map[string]string{}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) send(method, target string, form url.Values) *page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := b.srv.App().Test(req, 10000)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return &page{status: res.StatusCode, header: res.Header, body: string(data)}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

var formRE = regexp.MustCompile(`(?s)<form[^>]*action="([^"]+)".*?</form>`)

// form returns the hidden fields of the page's first form.
func (p *page) form() url.Values {
	m := formRE.FindStringSubmatch(p.body)
	if m == nil {
		return url.Values{}
	}
	return hiddenFields(m[0])
}

// formFor returns the hidden fields of the page's form posting to action.
func (p *page) formFor(action string) url.Values {
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == action {
			return hiddenFields(m[0])
		}
	}
	return nil
}

func hiddenFields(form string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(form, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// signInFx is a server with an approved partner that registered an app and
// another whose member signs in and consents.
type signInFx struct {
	env             *testEnv
	authURL         string
	email, password string
}

func newSignInFx(t *testing.T, opts ...func(*Config)) *signInFx {
	t.Helper()
	env := newTestEnv(t, opts...)
	ctx := context.Background()
	mk := func(name string) nexus.Partner {
		p, err := env.partners.Create(ctx, partner.CreateParams{Name: name, Status: nexus.PartnerApproved})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	dev, user := mk("Dev"), mk("User")
	svc := env.srv.cfg.OAuth
	cl, err := svc.CreateClient(ctx, nexus.Tenant{PartnerID: dev.ID, Environment: nexus.Test}, oauth.CreateClientParams{
		Name: "App", Type: oauth.Public, RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"read:balances"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &signInFx{env: env, email: "member@example.com", password: "a long enough password"}
	if _, err := svc.CreateMember(ctx, user.ID, f.email, f.password); err != nil {
		t.Fatal(err)
	}
	f.authURL = "/oauth/authorize?" + url.Values{"response_type": {"code"}, "client_id": {cl.ID},
		"redirect_uri": {"https://app.example/cb"}, "state": {"st"}, "code_challenge": {strings.Repeat("a", 43)},
		"code_challenge_method": {"S256"}}.Encode()
	return f
}

// signIn logs b in through the login form of the authorization request and
// returns the consent page's form.
func (f *signInFx) signIn(t *testing.T, b *browser) url.Values {
	t.Helper()
	lp := b.send("GET", f.authURL, nil)
	p := b.send("POST", "/login", with(lp.form(), "email", f.email, "password", f.password))
	if p.status != 303 || b.cookies[sessionCookie] == "" {
		t.Fatalf("login: %d %s, cookies %v", p.status, p.body, b.cookies)
	}
	cp := b.send("GET", f.authURL, nil)
	if cp.status != 200 || !strings.Contains(cp.body, `value="approve"`) {
		t.Fatalf("consent page: %d %s", cp.status, cp.body)
	}
	return cp.form()
}

func wantRefused(t *testing.T, what string, p *page) {
	t.Helper()
	if p.status != 403 || p.header.Get("Location") != "" || strings.Contains(p.body, "code=") {
		t.Errorf("%s: want 403 and no redirect, got %d Location %q", what, p.status, p.header.Get("Location"))
	}
}

// The CSRF tokens of login, consent and logout are bound to the browser's
// pre-session or session and to their form: a planted cookie with a value
// of the attacker's choosing, another browser's token, another form's
// token or a missing one are refused.
func TestCSRFTokensBound(t *testing.T) {
	t.Parallel()
	f := newSignInFx(t)
	srv := f.env.srv

	t.Run("login", func(t *testing.T) {
		a, b := newBrowser(t, srv), newBrowser(t, srv)
		fa, fb := a.send("GET", "/login", nil).form(), b.send("GET", "/login", nil).form()
		creds := []string{"email", f.email, "password", f.password}
		wantRefused(t, "another browser's token", a.send("POST", "/login", with(fb, creds...)))
		wantRefused(t, "no token", a.send("POST", "/login", with(fa, append(creds, "csrf_token", "")...)))
		wantRefused(t, "no pre-session cookie", newBrowser(t, srv).send("POST", "/login", with(fa, creds...)))
		// A double-submit pair made up by an attacker (cookie planted,
		// form token equal to it) is no token at all.
		planted := newBrowser(t, srv)
		planted.cookies[csrfCookie] = strings.Repeat("x", 43)
		wantRefused(t, "a planted cookie's value as token", planted.send("POST", "/login", with(fa, append(creds, "csrf_token", strings.Repeat("x", 43))...)))
		if p := a.send("POST", "/login", with(fa, creds...)); p.status != 200 || a.cookies[sessionCookie] == "" {
			t.Errorf("the genuine login form: %d, cookies %v", p.status, a.cookies)
		}
	})

	t.Run("consent", func(t *testing.T) {
		a := newBrowser(t, srv)
		ca := f.signIn(t, a)
		// A second session in a browser that shares a's pre-session cookie
		// (planted, or the same browser before and after a re-login).
		b := newBrowser(t, srv)
		b.cookies[csrfCookie] = a.cookies[csrfCookie]
		cb := f.signIn(t, b)
		if cb.Get("csrf_token") == ca.Get("csrf_token") {
			t.Fatal("two sessions got the same consent token")
		}
		wantRefused(t, "another session's token", a.send("POST", "/oauth/authorize", with(ca, "decision", "approve", "csrf_token", cb.Get("csrf_token"))))
		login := a.send("GET", "/login", nil).form().Get("csrf_token")
		wantRefused(t, "the login form's token", a.send("POST", "/oauth/authorize", with(ca, "decision", "approve", "csrf_token", login)))
		wantRefused(t, "the pre-session cookie as token", a.send("POST", "/oauth/authorize", with(ca, "decision", "approve", "csrf_token", a.cookies[csrfCookie])))
		wantRefused(t, "no token", a.send("POST", "/oauth/authorize", with(ca, "decision", "approve", "csrf_token", "")))
		p := a.send("POST", "/oauth/authorize", with(ca, "decision", "approve"))
		if loc, _ := url.Parse(p.header.Get("Location")); p.status != 303 || loc == nil || loc.Query().Get("code") == "" {
			t.Errorf("the genuine consent form: %d Location %q", p.status, p.header.Get("Location"))
		}
	})

	t.Run("logout", func(t *testing.T) {
		a, b := newBrowser(t, srv), newBrowser(t, srv)
		ca := f.signIn(t, a)
		f.signIn(t, b)
		// Signing in without return_to shows a page with a sign-out form.
		done := func(br *browser) url.Values {
			d := br.send("POST", "/login", with(br.send("GET", "/login", nil).form(), "email", f.email, "password", f.password))
			if d.status != 200 || !strings.Contains(d.body, `action="/logout"`) {
				t.Fatalf("signed-in page without a sign-out form: %d %s", d.status, d.body)
			}
			return d.form()
		}
		la, lb := done(a), done(b)
		wantRefused(t, "another session's token", a.send("POST", "/logout", lb))
		wantRefused(t, "the consent form's token", a.send("POST", "/logout", with(la, "csrf_token", ca.Get("csrf_token"))))
		wantRefused(t, "no token", a.send("POST", "/logout", url.Values{}))
		if a.cookies[sessionCookie] == "" {
			t.Fatal("a refused logout ended the session")
		}
		if p := a.send("POST", "/logout", la); p.status != 303 || a.cookies[sessionCookie] != "" {
			t.Errorf("the genuine logout form: %d, cookies %v", p.status, a.cookies)
		}
		if p := a.send("GET", f.authURL, nil); !strings.Contains(p.body, `action="/login"`) {
			t.Errorf("after logout the authorization request does not ask to sign in: %s", p.body)
		}
	})
}

// When every password-check slot is held, POST /login answers 503 with
// Retry-After and the form again, opens no session, and works once a slot
// is free.
func TestLoginBusy(t *testing.T) {
	t.Parallel()
	slots := oauth.NewPasswordSlots(1, 0)
	f := newSignInFx(t, func(c *Config) { c.OAuth = oauth.New(c.DB, oauth.Config{PasswordSlots: slots}) })
	b := newBrowser(t, f.env.srv)
	form := with(b.send("GET", "/login", nil).form(), "email", f.email, "password", f.password)

	release, ok := slots.Acquire(context.Background())
	if !ok {
		t.Fatal("no free slot at start")
	}
	p := b.send("POST", "/login", form)
	if p.status != 503 || p.header.Get("Retry-After") != "1" || !strings.Contains(p.body, `name="csrf_token"`) {
		t.Errorf("login with every slot held: %d Retry-After %q, want 503, 1 and the form again: %s", p.status, p.header.Get("Retry-After"), p.body)
	}
	if b.cookies[sessionCookie] != "" {
		t.Error("a refused login opened a session")
	}
	release()
	if p := b.send("POST", "/login", form); p.status != 200 || b.cookies[sessionCookie] == "" {
		t.Errorf("login once a slot is free: %d", p.status)
	}
}

// The consent page names who grants (the member's email, the partner's
// name); "Not you? Sign out" ends the session and comes back to the same
// authorization request, whose login page names the app asking; signing in
// again leads to the consent page of that request.
func TestConsentNamesWhoGrants(t *testing.T) {
	t.Parallel()
	f := newSignInFx(t)
	b := newBrowser(t, f.env.srv)
	lp := b.send("GET", f.authURL, nil)
	if !strings.Contains(lp.body, `id="asking"`) || !strings.Contains(lp.body, "<strong>App</strong> is asking") {
		t.Errorf("the login page of an authorization request does not name the app: %s", lp.body)
	}
	f.signIn(t, b)
	cp := b.send("GET", f.authURL, nil)
	for _, want := range []string{`<strong id="member">member@example.com</strong>`, `<strong id="partner">User</strong>`, "Not you?"} {
		if !strings.Contains(cp.body, want) {
			t.Errorf("the consent page lacks %q: %s", want, cp.body)
		}
	}
	out := cp.formFor("/logout")
	if out == nil || out.Get("return_to") == "" {
		t.Fatalf("the consent page has no sign-out form returning to the request: %s", cp.body)
	}
	// The consent form's token does not sign out.
	wantRefused(t, "sign-out with the consent form's token", b.send("POST", "/logout", with(out, "csrf_token", cp.form().Get("csrf_token"))))
	p := b.send("POST", "/logout", out)
	if p.status != 303 || b.cookies[sessionCookie] != "" {
		t.Fatalf("Not you? Sign out: %d, cookies %v", p.status, b.cookies)
	}
	loc := p.header.Get("Location")
	want, _ := url.Parse(f.authURL)
	got, err := url.Parse(loc)
	if err != nil || got.Path != want.Path || got.Query().Encode() != want.Query().Encode() {
		t.Fatalf("after signing out the browser goes to %q, want the authorization request %q", loc, f.authURL)
	}
	lp = b.send("GET", loc, nil)
	if !strings.Contains(lp.body, `action="/login"`) || !strings.Contains(lp.body, "<strong>App</strong> is asking") {
		t.Fatalf("the request after signing out does not ask to sign in, naming the app: %s", lp.body)
	}
	// A wrong password keeps the app named and the way back.
	bad := b.send("POST", "/login", with(lp.form(), "email", f.email, "password", "wrong password!"))
	if bad.status != 401 || !strings.Contains(bad.body, "<strong>App</strong> is asking") || bad.form().Get("return_to") != lp.form().Get("return_to") {
		t.Errorf("a failed sign-in: %d, the app or return_to lost: %s", bad.status, bad.body)
	}
	p = b.send("POST", "/login", with(lp.form(), "email", f.email, "password", f.password))
	if p.status != 303 {
		t.Fatalf("signing in again: %d %s", p.status, p.body)
	}
	if got, _ := url.Parse(p.header.Get("Location")); got == nil || got.Query().Encode() != want.Query().Encode() {
		t.Errorf("signing in again goes to %q, want the same authorization request", p.header.Get("Location"))
	}
	if cp := b.send("GET", p.header.Get("Location"), nil); !strings.Contains(cp.body, `value="approve"`) {
		t.Errorf("signing in again does not lead to the consent page: %s", cp.body)
	}
	// A sign-out form pointed elsewhere goes to the sign-in page, never
	// off the site.
	b2 := newBrowser(t, f.env.srv)
	f.signIn(t, b2)
	out2 := b2.send("GET", f.authURL, nil).formFor("/logout")
	if p := b2.send("POST", "/logout", with(out2, "return_to", "https://evil.example/")); p.header.Get("Location") != "/login" {
		t.Errorf("return_to off the site: Location %q, want /login", p.header.Get("Location"))
	}
}

// Error pages say what to do next; a consent answer that fails its CSRF
// check offers the same request again.
func TestErrorPagesSayWhatNext(t *testing.T) {
	t.Parallel()
	f := newSignInFx(t)
	b := newBrowser(t, f.env.srv)
	bad := b.send("GET", "/oauth/authorize?client_id=cli_unknown", nil)
	if bad.status != 400 || !strings.Contains(bad.body, "Go back to the application") {
		t.Errorf("unknown client: %d %s", bad.status, bad.body)
	}
	ca := f.signIn(t, b)
	p := b.send("POST", "/oauth/authorize", with(ca, "decision", "approve", "csrf_token", "stale"))
	if p.status != 403 || !strings.Contains(p.body, "nothing was shared") || !strings.Contains(p.body, `href="/oauth/authorize?`) {
		t.Errorf("a stale consent form: %d %s", p.status, p.body)
	}
}

// Over the per-IP limit the pages people see answer 429 as a page that
// says how long to wait, with Retry-After; the token endpoint keeps JSON.
func TestIPLimitedPages(t *testing.T) {
	t.Parallel()
	f := newSignInFx(t, func(c *Config) { c.IPLimit = 1 })
	b := newBrowser(t, f.env.srv)
	if p := b.send("GET", "/login", nil); p.status != 200 {
		t.Fatalf("first request: %d", p.status)
	}
	for _, target := range []string{"/login", f.authURL} {
		p := b.send("GET", target, nil)
		if p.status != 429 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") ||
			!strings.Contains(p.body, "then reload this page") || p.header.Get("Retry-After") == "" {
			t.Errorf("GET %s over the limit: %d %q Retry-After %q: %s", target, p.status, p.header.Get("Content-Type"), p.header.Get("Retry-After"), p.body)
		}
	}
	p := b.send("POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}})
	if p.status != 429 || !strings.HasPrefix(p.header.Get("Content-Type"), "application/json") {
		t.Errorf("POST /oauth/token over the limit: %d %q", p.status, p.header.Get("Content-Type"))
	}
}
