package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// dashMember runs `nexus admin member create --role role`, the password on
// stdin.
func dashMember(t testing.TB, b *Backend, partnerID, role string) oaMember {
	t.Helper()
	m := oaMember{Email: fmt.Sprintf("%s-%s@example.test", role, randomHex(5)), Password: "e2e-password-" + randomHex(8)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nexusBin, "admin", "member", "create", "--partner", partnerID, "--email", m.Email, "--role", role)
	cmd.Dir, cmd.Env = b.dir, b.env()
	cmd.Stdin = strings.NewReader(m.Password + "\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("nexus admin member create --role %s: %v\nstdout: %s\nstderr: %s", role, err, out.String(), errOut.String())
	}
	var v struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	}
	decodeJSON(t, "admin member create", out.Bytes(), &v)
	if v.Role != role || v.ID == "" {
		t.Fatalf("admin member create --role %s: %s", role, out.String())
	}
	m.ID = v.ID
	return m
}

// dashLogin signs an agent in through /login with a dashboard return_to
// and checks it lands there.
func dashLogin(t testing.TB, a *oaAgent, base string, m oaMember, returnTo string) {
	t.Helper()
	p := a.get(t, base+"/login?return_to="+url.QueryEscape(returnTo))
	form := oaHidden(p.Body)
	if form.Get("return_to") != returnTo {
		t.Fatalf("the login form dropped return_to %q: %s", returnTo, p)
	}
	form.Set("email", m.Email)
	form.Set("password", m.Password)
	r := a.send(t, "POST", base+"/login", form)
	if r.Status != 303 || r.Header.Get("Location") != returnTo {
		t.Fatalf("login with return_to %s: %s", returnTo, r)
	}
	for _, c := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "nexus_session=") && (!strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax")) {
			t.Errorf("the session cookie lacks HttpOnly or SameSite=Lax: %s", c)
		}
	}
}

// dashCSRF is the dashboard CSRF token of the page's forms (not the
// sign-out form's).
func dashCSRF(t testing.TB, body string) string {
	t.Helper()
	m := regexp.MustCompile(`<form method="post" action="/dashboard[^"]*"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no dashboard form with a CSRF token on the page:\n%s", tail(body, 2000))
	}
	return m[1]
}

// The dashboard over plain HTTP: sign-in round trip, role and tenant
// checks, CSRF, and a one-time invitation link.
func TestDashboardHTTP(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b) // owner: partner A; user: partner B
		base := st.s.URL
		owner := dashMember(t, b, st.owner.Partner.ID, "owner")
		viewer := dashMember(t, b, st.owner.Partner.ID, "viewer")
		dev := dashMember(t, b, st.owner.Partner.ID, "developer")

		// Signed out: to /login and back.
		anon := st.agent()
		if p := anon.get(t, base+"/dashboard/test/keys?status=all"); p.Status != 303 || p.Header.Get("Location") != "/login?return_to=%2Fdashboard%2Ftest%2Fkeys%3Fstatus%3Dall" {
			t.Fatalf("signed out: %s", p)
		}
		if p := anon.send(t, "POST", base+"/dashboard/test/keys", url.Values{"name": {"x"}}); p.Status != 403 {
			t.Errorf("signed-out POST: %s", p)
		}
		for _, bad := range []string{"https://evil.example/", "//evil.example/dashboard", "/dashboard//evil.example"} {
			p := anon.get(t, base+"/login?return_to="+url.QueryEscape(bad))
			if v := oaHidden(p.Body).Get("return_to"); v != "" {
				t.Errorf("login keeps return_to %q as %q: an open redirect", bad, v)
			}
		}

		oa := st.agent()
		dashLogin(t, oa, base, owner, "/dashboard/test/keys")
		p := oa.get(t, base+"/dashboard/test/keys")
		if p.Status != 200 || !strings.Contains(p.Body, "Test environment") || !strings.Contains(p.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("owner's keys page: %s", p)
		}
		if strings.Contains(strings.ToLower(p.Body), "<script>") || strings.Contains(p.Body, " onclick=") || strings.Contains(p.Body, "<style") {
			t.Errorf("a page holds inline script or style, which the CSP refuses")
		}

		// Create a test key.
		form := url.Values{"csrf_token": {dashCSRF(t, oa.get(t, base+"/dashboard/test/keys/new").Body)},
			"name": {"http key"}, "type": {"secret"}, "scopes": {"read:balances", "read:funding"}}
		p = oa.send(t, "POST", base+"/dashboard/test/keys", form)
		key := regexp.MustCompile(`value="(nx_test_sk_[0-9A-Za-z]{36})"`).FindStringSubmatch(p.Body)
		if p.Status != 201 || key == nil {
			t.Fatalf("create key: %s", p)
		}
		keyID := regexp.MustCompile(`key_[0-9a-z]{26}`).FindString(p.Body)
		if r := st.api(t, "GET", "/v1/balances", key[1], nil); r.Status != 200 {
			t.Fatalf("the dashboard's key: %s", r)
		}
		if r := st.api(t, "GET", "/v1/requests", key[1], nil); r.Status != 403 {
			t.Errorf("the restricted key reads requests: %s", r)
		}
		ev := st.api(t, "GET", "/v1/audit_events?type=api_key.created", st.owner.Admin.Key, nil)
		if ev.Status != 200 || len(ev.Data()) == 0 || ev.Data()[0]["object_id"] != keyID || ev.Data()[0]["actor"] != owner.Email || ev.Data()[0]["credential_id"] != owner.ID {
			t.Errorf("api_key.created does not name the member as actor: %s", ev)
		}
		// The page does not show the secret again.
		if d := oa.get(t, base+"/dashboard/test/keys/"+keyID); d.Status != 200 || strings.Contains(d.Body, key[1]) {
			t.Errorf("the key page shows the secret again: %s", d)
		}

		// Bad input: an error next to the field, nothing created.
		before := len(st.api(t, "GET", "/v1/api_keys?limit=100", st.owner.Admin.Key, nil).Data())
		bad := url.Values{"csrf_token": form["csrf_token"], "name": {"bad"}, "type": {"publishable"}, "scopes": {"write:requests"}}
		if p := oa.send(t, "POST", base+"/dashboard/test/keys", bad); p.Status != 400 || !strings.Contains(p.Body, `class="field-error"`) {
			t.Errorf("a publishable key with write scopes: %s", p)
		}
		bad = url.Values{"csrf_token": form["csrf_token"], "name": {"bad"}, "type": {"secret"}, "allowed_ips": {"not-an-ip"}}
		if p := oa.send(t, "POST", base+"/dashboard/test/keys", bad); p.Status != 400 || !strings.Contains(p.Body, "not an IP") {
			t.Errorf("a bad allowed IP: %s", p)
		}
		// Without the CSRF token, or with another session's: 403.
		noCSRF := url.Values{"name": {"no csrf"}, "type": {"secret"}}
		if p := oa.send(t, "POST", base+"/dashboard/test/keys", noCSRF); p.Status != 403 {
			t.Errorf("POST without CSRF token: %s", p)
		}
		if after := len(st.api(t, "GET", "/v1/api_keys?limit=100", st.owner.Admin.Key, nil).Data()); after != before {
			t.Errorf("refused creations made keys: %d before, %d after", before, after)
		}

		// Live: creating a secret key needs the password again.
		live := url.Values{"csrf_token": {dashCSRF(t, oa.get(t, base+"/dashboard/live/keys/new").Body)}, "name": {"live"}, "type": {"secret"}}
		if p := oa.send(t, "POST", base+"/dashboard/live/keys", live); p.Status != 403 || !strings.Contains(p.Body, "password") {
			t.Errorf("a live secret key without the password: %s", p)
		}
		live.Set("password", "wrong password 1234")
		if p := oa.send(t, "POST", base+"/dashboard/live/keys", live); p.Status != 403 {
			t.Errorf("a live secret key with a wrong password: %s", p)
		}
		live.Set("password", owner.Password)
		if p := oa.send(t, "POST", base+"/dashboard/live/keys", live); p.Status != 201 || !strings.Contains(p.Body, "nx_live_sk_") {
			t.Errorf("a live secret key with the password: %s", p)
		}

		// Another partner's key, and this partner's key in the other
		// environment: 404, and unchanged.
		other := b.CreateKey(t, st.user.Partner.ID, "test", "secret")
		for _, path := range []string{"/dashboard/test/keys/" + other.ID, "/dashboard/live/keys/" + keyID} {
			if p := oa.get(t, base+path); p.Status != 404 {
				t.Errorf("GET %s: %s", path, p)
			}
			if p := oa.send(t, "POST", base+path+"/revoke", url.Values{"csrf_token": form["csrf_token"], "password": {owner.Password}}); p.Status != 404 {
				t.Errorf("POST %s/revoke: %s", path, p)
			}
		}
		if r := do(t, "GET", base+"/v1/partner", st.h(bearer(other.Key)), nil); r.Status != 200 {
			t.Errorf("another partner's key was changed: %s", r)
		}

		// A viewer: no controls, and a forged POST is 403 and changes nothing.
		va := st.agent()
		dashLogin(t, va, base, viewer, "/dashboard/test/keys")
		p = va.get(t, base+"/dashboard/test/keys")
		if p.Status != 200 || strings.Contains(p.Body, "/keys/new") {
			t.Errorf("the viewer's keys page offers Create key: %s", p)
		}
		if p := va.get(t, base+"/dashboard/test/keys/"+keyID); p.Status != 200 || strings.Contains(p.Body, "/revoke") || strings.Contains(p.Body, "/suspend") {
			t.Errorf("the viewer's key page offers changes: %s", p)
		}
		for _, action := range []string{"revoke", "suspend", "rotate"} {
			p := va.send(t, "POST", base+"/dashboard/test/keys/"+keyID+"/"+action, url.Values{"csrf_token": form["csrf_token"]})
			if p.Status != 403 || !strings.Contains(p.Body, "viewer") {
				t.Errorf("the viewer's forged %s: %s", action, p)
			}
		}
		if p := va.send(t, "POST", base+"/dashboard/test/keys", form); p.Status != 403 {
			t.Errorf("the viewer's forged create: %s", p)
		}
		if p := va.send(t, "POST", base+"/dashboard/test/members/invitations", url.Values{"email": {"x@example.test"}, "role": {"owner"}}); p.Status != 403 {
			t.Errorf("the viewer's forged invitation: %s", p)
		}
		if r := st.api(t, "GET", "/v1/balances", key[1], nil); r.Status != 200 {
			t.Errorf("the key stopped working after the viewer's forged POSTs: %s", r)
		}

		// A developer manages test keys, not live ones.
		da := st.agent()
		dashLogin(t, da, base, dev, "/dashboard/live/keys")
		if p := da.get(t, base+"/dashboard/live/keys/new"); p.Status != 403 {
			t.Errorf("a developer opens the live create form: %s", p)
		}
		if p := da.get(t, base+"/dashboard/test/keys/new"); p.Status != 200 {
			t.Errorf("a developer cannot open the test create form: %s", p)
		}

		// The owner revokes: the key stops working.
		page := oa.get(t, base+"/dashboard/test/keys/"+keyID+"/revoke")
		p = oa.send(t, "POST", base+"/dashboard/test/keys/"+keyID+"/revoke", url.Values{"csrf_token": {dashCSRF(t, page.Body)}})
		if p.Status != 303 {
			t.Fatalf("revoke: %s", p)
		}
		if r := st.api(t, "GET", "/v1/balances", key[1], nil); r.Status != 401 || r.Str("error.code") != "api_key_revoked" {
			t.Errorf("the revoked key: %s", r)
		}
		ev = st.api(t, "GET", "/v1/audit_events?type=api_key.revoked", st.owner.Admin.Key, nil)
		if ev.Status != 200 || len(ev.Data()) == 0 || ev.Data()[0]["actor"] != owner.Email {
			t.Errorf("api_key.revoked does not name the member: %s", ev)
		}

		// An invitation link works once.
		mp := oa.get(t, base+"/dashboard/test/members")
		email := "invited-" + randomHex(4) + "@example.test"
		p = oa.send(t, "POST", base+"/dashboard/test/members/invitations", url.Values{"csrf_token": {dashCSRF(t, mp.Body)}, "email": {email}, "role": {"developer"}})
		link := regexp.MustCompile(`value="(http[^"]*/dashboard/invitations/[A-Za-z0-9_-]{43})"`).FindStringSubmatch(p.Body)
		if p.Status != 201 || link == nil {
			t.Fatalf("invite: %s", p)
		}
		ia := st.agent()
		inv := ia.get(t, link[1])
		if inv.Status != 200 || !strings.Contains(inv.Body, email) {
			t.Fatalf("the invitation page: %s", inv)
		}
		accept := oaHidden(inv.Body)
		accept.Set("password", "invited-password-123")
		accept.Set("password_again", "invited-password-124")
		if p := ia.send(t, "POST", link[1], accept); p.Status != 400 {
			t.Errorf("differing passwords: %s", p)
		}
		accept.Set("password_again", "invited-password-123")
		if p := ia.send(t, "POST", link[1], accept); p.Status != 201 {
			t.Fatalf("accepting the invitation: %s", p)
		}
		accept.Set("password", "another-password-123")
		accept.Set("password_again", "another-password-123")
		if p := ia.send(t, "POST", link[1], accept); p.Status != 404 {
			t.Errorf("the invitation link worked twice: %s", p)
		}
		if p := ia.get(t, link[1]); p.Status != 404 {
			t.Errorf("the used invitation page: %s", p)
		}
		// Service credentials and OAuth apps: created with the secret shown
		// once, ended after a confirmation; a viewer can do neither.
		ap := oa.get(t, base+"/dashboard/test/apps")
		if ap.Status != 200 || !strings.Contains(ap.Body, "No service credentials") {
			t.Fatalf("the apps page: %s", ap)
		}
		tokn := dashCSRF(t, ap.Body)
		p = oa.send(t, "POST", base+"/dashboard/test/service_credentials", url.Values{"csrf_token": {tokn}, "name": {"billing"}, "algorithm": {"HS256"}, "scopes": {"read:balances"}})
		scID := regexp.MustCompile(`sc_[0-9a-z]{26}`).FindString(p.Body)
		if p.Status != 201 || !regexp.MustCompile(`value="nx_test_ss_[0-9A-Za-z]{36}"`).MatchString(p.Body) || scID == "" {
			t.Fatalf("create a service credential: %s", p)
		}
		if p := oa.send(t, "POST", base+"/dashboard/test/service_credentials", url.Values{"csrf_token": {tokn}, "name": {"bad"}, "algorithm": {"ES256"}, "public_key": {"not a pem"}}); p.Status != 400 || !strings.Contains(p.Body, `class="field-error"`) {
			t.Errorf("a service credential with a bad key: %s", p)
		}
		if p := va.send(t, "POST", base+"/dashboard/test/service_credentials", url.Values{"csrf_token": {tokn}, "name": {"v"}, "algorithm": {"HS256"}}); p.Status != 403 {
			t.Errorf("the viewer creates a service credential: %s", p)
		}
		if p := va.send(t, "POST", base+"/dashboard/test/service_credentials/"+scID+"/end", url.Values{"csrf_token": {tokn}}); p.Status != 403 {
			t.Errorf("the viewer revokes a service credential: %s", p)
		}
		if p := oa.send(t, "POST", base+"/dashboard/live/service_credentials/"+scID+"/end", url.Values{"csrf_token": {tokn}, "password": {owner.Password}}); p.Status != 404 {
			t.Errorf("the test credential ended from live: %s", p)
		}
		cf := oa.get(t, base+"/dashboard/test/service_credentials/"+scID+"/end")
		if p := oa.send(t, "POST", base+"/dashboard/test/service_credentials/"+scID+"/end", url.Values{"csrf_token": {dashCSRF(t, cf.Body)}}); p.Status != 303 {
			t.Errorf("revoke the service credential: %s", p)
		}
		if r := st.api(t, "GET", "/v1/service_credentials/"+scID, st.owner.Admin.Key, nil); r.Str("status") != "revoked" {
			t.Errorf("the service credential after the dashboard revoked it: %s", r)
		}
		p = oa.send(t, "POST", base+"/dashboard/test/oauth_clients", url.Values{"csrf_token": {tokn}, "name": {"My app"}, "type": {"confidential"},
			"redirect_uris": {"https://app.example/cb"}, "scopes": {"read:balances"}})
		cliID := regexp.MustCompile(`cli_[0-9a-z]{26}`).FindString(p.Body)
		if p.Status != 201 || !strings.Contains(p.Body, "nx_test_cs_") || cliID == "" {
			t.Fatalf("register an app: %s", p)
		}
		if p := oa.send(t, "POST", base+"/dashboard/test/oauth_clients", url.Values{"csrf_token": {tokn}, "name": {"bad"}, "type": {"confidential"},
			"redirect_uris": {"ftp://x"}, "scopes": {"read:balances"}}); p.Status != 400 || !strings.Contains(p.Body, `class="field-error"`) {
			t.Errorf("an app with a bad redirect URI: %s", p)
		}
		cf = oa.get(t, base+"/dashboard/test/oauth_clients/"+cliID+"/end")
		if p := oa.send(t, "POST", base+"/dashboard/test/oauth_clients/"+cliID+"/end", url.Values{"csrf_token": {dashCSRF(t, cf.Body)}}); p.Status != 303 {
			t.Errorf("delete the app: %s", p)
		}
		if r := st.api(t, "GET", "/v1/oauth_clients/"+cliID, st.owner.Admin.Key, nil); r.Status != 404 && r.Str("status") != "deleted" {
			t.Errorf("the app after the dashboard deleted it: %s", r)
		}

		na := st.agent()
		dashLogin(t, na, base, oaMember{Email: email, Password: "invited-password-123"}, "/dashboard/test/members")
		if p := na.get(t, base+"/dashboard/test/members"); p.Status != 200 || !strings.Contains(p.Body, email) || strings.Contains(p.Body, "Create invitation link") {
			t.Errorf("the invited developer's members page: %s", p)
		}

		// The owner changes roles and removes members; a partner keeps an
		// owner; a viewer can do neither.
		mp = oa.get(t, base+"/dashboard/test/members")
		mt := dashCSRF(t, mp.Body)
		if p := oa.send(t, "POST", base+"/dashboard/test/members/"+dev.ID+"/role", url.Values{"csrf_token": {mt}, "role": {"viewer"}}); p.Status != 303 {
			t.Errorf("change the developer's role: %s", p)
		}
		if p := da.get(t, base+"/dashboard/test/keys/new"); p.Status != 403 {
			t.Errorf("a developer made viewer still opens the create form: %s", p)
		}
		if p := oa.send(t, "POST", base+"/dashboard/test/members/"+owner.ID+"/role", url.Values{"csrf_token": {mt}, "role": {"admin"}}); p.Status != 409 {
			t.Errorf("the only owner demoted itself: %s", p)
		}
		if p := oa.send(t, "POST", base+"/dashboard/test/members/"+st.member.ID+"/remove", url.Values{"csrf_token": {mt}}); p.Status != 404 {
			t.Errorf("removing another partner's member: %s", p)
		}
		if p := va.send(t, "POST", base+"/dashboard/test/members/"+dev.ID+"/remove", url.Values{"csrf_token": {mt}}); p.Status != 403 {
			t.Errorf("a viewer removes a member: %s", p)
		}
		if p := oa.send(t, "POST", base+"/dashboard/test/members/"+dev.ID+"/remove", url.Values{"csrf_token": {mt}}); p.Status != 303 {
			t.Errorf("remove the developer: %s", p)
		}
		if p := da.get(t, base+"/dashboard/test/keys"); p.Status != 303 {
			t.Errorf("a removed member's session still works: %s", p)
		}
	})
}

// dashBrowser is one Chromium tab of the dashboard test.
type dashBrowser struct {
	ctx  context.Context
	base string
	t    *testing.T
}

func (br *dashBrowser) must(what string, err error) {
	br.t.Helper()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			br.t.Fatalf("%s: timed out", what)
		}
		br.t.Fatalf("%s: %v", what, err)
	}
}

func (br *dashBrowser) login(m oaMember, path string) {
	br.t.Helper()
	br.must("sign in", chromedp.Do(br.ctx,
		chromedp.Navigate(br.base+path),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), m.Email),
		chromedp.SendKeys(chromedp.ID("password"), m.Password),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.sections`)),
	))
	loc, err := chromedp.Run(br.ctx, chromedp.Location())
	br.must("location", err)
	if loc != br.base+path {
		br.t.Fatalf("after signing in the browser is at %s, want %s", loc, path)
	}
}

// count is the number of visible elements matching a CSS selector.
func (br *dashBrowser) count(sel string) int {
	br.t.Helper()
	n, err := chromedp.Run(br.ctx, chromedp.Evaluate[int](fmt.Sprintf(`[...document.querySelectorAll(%q)].filter(e => e.offsetParent !== null).length`, sel)))
	br.must("counting "+sel, err)
	return n
}

// shot saves a screenshot when NEXUS_DASHBOARD_SCREENSHOTS names a folder
// (how the README's pictures are made).
func (br *dashBrowser) shot(name string) {
	br.t.Helper()
	dir := os.Getenv("NEXUS_DASHBOARD_SCREENSHOTS")
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(br.ctx, chromedp.FullScreenshot(100))
	br.must("screenshot", err)
	// Kept small for the README: 216 web-safe colours, not dithered
	// (dithering noise compresses badly).
	img, err := png.Decode(bytes.NewReader(shot))
	br.must("decoding the screenshot", err)
	pal := image.NewPaletted(img.Bounds(), palette.WebSafe)
	draw.Draw(pal, img.Bounds(), img, image.Point{}, draw.Src)
	var out bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	br.must("encoding the screenshot", enc.Encode(&out, pal))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), out.Bytes(), 0o644); err != nil {
		br.t.Fatal(err)
	}
}

// In real Chromium: an owner signs in, switches to test, creates a
// restricted key and reads it from the page; the API takes it; the owner
// revokes it and the API refuses it within a second (measured and logged:
// this test is serial). A viewer sees no controls and its forged POST is
// 403. Not parallel: it measures a latency.
func TestDashboardBrowser(t *testing.T) {
	chromium := oaChromium(t)
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			st := oaSetup(t, b)
			owner := dashMember(t, b, st.owner.Partner.ID, "owner")
			viewer := dashMember(t, b, st.owner.Partner.ID, "viewer")
			bctx := headlessChromium(t, chromium)
			if err := chromedp.Do(bctx, oaExtraHeaders(st.ip)); err != nil {
				t.Fatalf("starting Chromium (%s): %v", chromium, err)
			}
			ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
			defer cancel()
			br := &dashBrowser{ctx: ctx, base: st.s.URL, t: t}
			br.must("viewport", chromedp.Do(ctx, chromedp.EmulateViewport(1100, 800)))

			// Sign in lands on live; switch to test.
			br.login(owner, "/dashboard/live/keys")
			if br.count(".banner") != 0 {
				t.Errorf("the live environment shows the test banner")
			}
			br.must("switch to test", chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`nav.envs a.env-test`)),
				chromedp.WaitVisible(chromedp.CSS(`.banner`)),
			))
			loc, err := chromedp.Run(ctx, chromedp.Location())
			br.must("location", err)
			if loc != st.s.URL+"/dashboard/test/keys" {
				t.Errorf("the switch went to %s", loc)
			}

			// Create a restricted key.
			br.must("create key", chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`a[href="/dashboard/test/keys/new"]`)),
				chromedp.WaitVisible(chromedp.ID("name")),
				chromedp.SendKeys(chromedp.ID("name"), "Browser key"),
				chromedp.Click(chromedp.CSS(`input[name="scopes"][value="read:balances"]`)),
				chromedp.Click(chromedp.CSS(`input[name="scopes"][value="read:funding"]`)),
				chromedp.SendKeys(chromedp.ID("allowed_ips"), "0.0.0.0/0\n::/0"),
			))
			br.shot("create-key")
			br.must("submit", chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`form[action="/dashboard/test/keys"] button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.ID("secret-key")),
			))
			key, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("secret-key")))
			br.must("reading the key", err)
			if !regexp.MustCompile(`^nx_test_sk_[0-9A-Za-z]{36}$`).MatchString(key) {
				t.Fatalf("the page shows %q, not a test secret key", key)
			}
			if br.count(`button[data-copy="secret-key"]`) != 1 {
				t.Errorf("no Copy key button")
			}
			br.shot("key-created")
			if r := st.api(t, "GET", "/v1/balances", key, nil); r.Status != 200 {
				t.Fatalf("the browser's key: %s", r)
			}
			if r := st.api(t, "GET", "/v1/api_keys", key, nil); r.Status != 403 {
				t.Errorf("the restricted key lists keys: %s", r)
			}
			keyID := st.api(t, "GET", "/v1/partner", key, nil).Str("credential.id")

			// A second key, for the viewer to try and revoke.
			spare := b.CreateKey(t, st.owner.Partner.ID, "test", "secret")

			// Revoke in the dashboard.
			br.must("open the keys list", chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`a.button[href="/dashboard/test/keys"]`)),
				chromedp.WaitVisible(chromedp.CSS(`tr[data-key-id="`+keyID+`"]`)),
			))
			br.shot("keys")
			br.must("revoke", chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`tr[data-key-id="`+keyID+`"] a`)),
				chromedp.WaitVisible(chromedp.CSS(`a.danger`)),
				chromedp.Click(chromedp.CSS(`a.danger`)),
				chromedp.WaitVisible(chromedp.CSS(`button.danger`)),
				chromedp.Click(chromedp.CSS(`button.danger`)),
				chromedp.WaitVisible(chromedp.CSS(`.notice`)),
			))
			revoked := time.Now()
			var refused time.Duration
			for {
				r := st.api(t, "GET", "/v1/balances", key, nil)
				if r.Status == 401 {
					refused = time.Since(revoked)
					break
				}
				if time.Since(revoked) > 5*time.Second {
					t.Fatalf("the revoked key still works 5 s later: %s", r)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: the API refused the revoked key %v after the dashboard answered", b.Name, refused)
			if refused > time.Second {
				t.Errorf("the API refused the revoked key only after %v (promise: 1 s)", refused)
			}

			// Logs and overview pages render (and are photographed).
			br.must("logs", chromedp.Do(ctx, chromedp.Navigate(st.s.URL+"/dashboard/test/logs?kind=events"), chromedp.WaitVisible(chromedp.CSS("table.logs"))))
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
			br.must("reading the events", err)
			if !strings.Contains(text, "api_key.revoked") || !strings.Contains(text, owner.Email) {
				t.Errorf("the events page does not show the revocation by %s:\n%s", owner.Email, text)
			}
			br.shot("logs")
			br.must("overview", chromedp.Do(ctx, chromedp.Navigate(st.s.URL+"/dashboard/test"), chromedp.WaitVisible(chromedp.CSS("main table"))))
			br.shot("overview")

			// Usage: the chart shows the key's requests once the access log
			// has flushed (bounded wait, no fixed sleep).
			deadline := time.Now().Add(15 * time.Second)
			for {
				br.must("usage", chromedp.Do(ctx, chromedp.Navigate(st.s.URL+"/dashboard/test/usage?credential_id="+keyID), chromedp.WaitVisible(chromedp.CSS("svg.chart"))))
				if br.count(`svg.chart rect[fill="#1f4fd1"]:not([height="0.0"])`) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the usage chart never shows the key's requests")
				}
				time.Sleep(200 * time.Millisecond)
			}
			label, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("chart-title").textContent`))
			br.must("chart title", err)
			if !strings.Contains(label, "requests") {
				t.Errorf("the chart is not labelled: %q", label)
			}
			br.must("usage, all", chromedp.Do(ctx, chromedp.Navigate(st.s.URL+"/dashboard/test/usage"), chromedp.WaitVisible(chromedp.CSS("svg.chart"))))
			br.shot("usage")

			// Readable at 375 px: nothing wider than the screen.
			br.must("narrow", chromedp.Do(ctx, chromedp.EmulateViewport(375, 740), chromedp.Navigate(st.s.URL+"/dashboard/test/keys?status=all"), chromedp.WaitVisible(chromedp.CSS("main"))))
			wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
			br.must("width", err)
			if wide > 375 {
				t.Errorf("at 375 px the keys page is %d px wide", wide)
			}
			br.shot("keys-375")

			// The viewer.
			br.must("sign out", chromedp.Do(ctx, chromedp.EmulateViewport(1100, 800),
				chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.ID("email"))))
			br.login(viewer, "/dashboard/test/keys")
			if n := br.count(`a[href$="/keys/new"], a.danger, button.danger, form[method="post"][action*="/keys"]`); n != 0 {
				t.Errorf("the viewer sees %d create or revoke controls", n)
			}
			br.must("the viewer's key page", chromedp.Do(ctx, chromedp.Navigate(st.s.URL+"/dashboard/test/keys/"+spare.ID), chromedp.WaitVisible(chromedp.CSS("dl.facts"))))
			if n := br.count(`a.danger, button.danger, form[method="post"][action*="/keys/"]`); n != 0 {
				t.Errorf("the viewer's key page shows %d controls", n)
			}
			status, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(
				`fetch("/dashboard/test/keys/%s/revoke", {method: "POST", credentials: "same-origin", body: new URLSearchParams({csrf_token: "forged"})}).then(r => r.status)`, spare.ID),
				chromedp.EvalAwaitPromise))
			br.must("the viewer's forged POST", err)
			if status != 403 {
				t.Errorf("the viewer's forged POST answered %d, want 403", status)
			}
			if r := do(t, "GET", st.s.URL+"/v1/partner", st.h(bearer(spare.Key)), nil); r.Status != 200 {
				t.Errorf("the viewer's forged POST changed the key: %s", r)
			}
		})
	}
}
