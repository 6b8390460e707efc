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

// form returns the hidden fields of the page's form.
func (p *page) form() url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
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
