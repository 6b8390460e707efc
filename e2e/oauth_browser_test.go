package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// oaChromium finds Chromium, or skips the test (fails it when
// NEXUS_TEST_REQUIRE_BROWSER=1).
func oaChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "Chromium not found (neither /usr/bin/chromium nor chromium on PATH); on Debian/Ubuntu: apt-get update && apt-get install -y chromium"
	if os.Getenv("NEXUS_TEST_REQUIRE_BROWSER") == "1" {
		t.Fatal("NEXUS_TEST_REQUIRE_BROWSER=1: " + msg)
	}
	t.Skip(msg)
	return ""
}

// headlessChromium starts Chromium with a fresh profile; it stops when t
// ends (waiting for the browser to exit), before the profile is removed.
func headlessChromium(t *testing.T, chromium string) context.Context {
	t.Helper()
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	return bctx
}

// oaCallback is the app's redirect URI: a loopback server that records
// the query of every hit.
type oaCallback struct {
	URL  string
	hits chan oaHit
}

type oaHit struct {
	query url.Values
	xff   string
}

func oaStartCallback(t *testing.T) *oaCallback {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cb := &oaCallback{URL: "http://" + ln.Addr().String() + "/cb", hits: make(chan oaHit, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/cb", func(w http.ResponseWriter, r *http.Request) {
		cb.hits <- oaHit{query: r.URL.Query(), xff: r.Header.Get("X-Forwarded-For")}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>App callback</title><p id=done>The app got the answer.</p>")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return cb
}

// wait returns the next hit, failing after d.
func (cb *oaCallback) wait(t *testing.T, d time.Duration) oaHit {
	t.Helper()
	select {
	case h := <-cb.hits:
		return h
	case <-time.After(d):
		t.Fatalf("the browser did not reach the redirect URI %s within %s", cb.URL, d)
	}
	return oaHit{}
}

// oaPhotograph checks that the page reads at 375 px (no sideways scroll,
// ready visible) and takes a PNG at desktop width and at 375 px into dir,
// and into $NEXUS_E2E_SHOTS when set (the README's pictures come from there).
func oaPhotograph(t *testing.T, ctx context.Context, dir, name, ready string) {
	t.Helper()
	for _, vp := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"", 1024, 720, false}, {"-375", 375, 740, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.w, vp.h, opts...), chromedp.WaitVisible(chromedp.CSS(ready))); err != nil {
			t.Fatalf("%s at %d px: %v", name, vp.w, err)
		}
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if wide {
			t.Errorf("the %s page at %d px scrolls sideways", name, vp.w)
		}
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot of %s: %v", name, err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
			t.Errorf("the %s screenshot (%d bytes) is not a real PNG: %v", name, len(shot), err)
		}
		for _, d := range []string{dir, os.Getenv("NEXUS_E2E_SHOTS")} {
			if d == "" {
				continue
			}
			if err := os.WriteFile(filepath.Join(d, name+vp.suffix+".png"), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := chromedp.Do(ctx, chromedp.ResetViewport()); err != nil {
		t.Fatal(err)
	}
}

// oaExtraHeaders makes the tab send X-Forwarded-For: ip on every request.
func oaExtraHeaders(ip string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Forwarded-For": ip}})
		return chromedp.Void{}, err
	}
}

// A member in a real browser: login form, consent page (seen and
// photographed), Approve lands on the app with code and state; a second
// authorization in the same browser skips the login and Deny lands with
// error=access_denied.
func TestOAuthBrowser(t *testing.T) {
	t.Parallel()
	chromium := oaChromium(t)
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b)
		cb := oaStartCallback(t)
		cl := st.createClient(t, "confidential", []string{cb.URL}, "read:balances", "read:funding", "read:requests")
		conf := &oauth2.Config{
			ClientID: cl.ClientID, ClientSecret: cl.ClientSecret, RedirectURL: cb.URL,
			Endpoint: oauth2.Endpoint{AuthURL: st.s.URL + "/oauth/authorize", TokenURL: st.s.URL + "/oauth/token"},
			Scopes:   []string{"read:balances", "read:funding", "read:requests"},
		}

		shots := t.TempDir()
		bctx := headlessChromium(t, chromium)
		if err := chromedp.Do(bctx, oaExtraHeaders(st.ip)); err != nil {
			t.Fatalf("starting Chromium (%s): %v", chromium, err)
		}
		// Generous: two sign-ins, a consent and four screenshots on a busy machine.
		ctx, cancel := context.WithTimeout(bctx, 4*time.Minute)
		defer cancel()
		must := func(what string, err error) {
			t.Helper()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s: timed out", what)
				}
				t.Fatalf("%s: %v", what, err)
			}
		}

		// Approve.
		verifier := oauth2.GenerateVerifier()
		state := "approve-" + randomHex(6)
		must("login form", chromedp.Do(ctx,
			chromedp.Navigate(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), st.member.Email),
			chromedp.SendKeys(chromedp.ID("password"), st.member.Password),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)),
		))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		must("reading the consent page", err)
		if !strings.Contains(text, cl.Name) {
			t.Errorf("the consent page does not name the app %q:\n%s", cl.Name, text)
		}
		// Who grants: the member and the partner it acts for.
		for _, want := range []string{st.member.Email, st.user.Partner.Name, "Not you?"} {
			if !strings.Contains(text, want) {
				t.Errorf("the consent page does not show %q:\n%s", want, text)
			}
		}
		if !regexp.MustCompile(`\btest\b`).MatchString(text) {
			t.Errorf("the consent page does not name the test environment:\n%s", text)
		}
		items, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("li")].filter(e => e.offsetParent !== null).map(e => e.innerText.trim())`))
		must("reading the permissions", err)
		html := "<ul>"
		for _, it := range items {
			html += "<li>" + it + "</li>"
		}
		oaCheckScopeWords(t, html+"</ul>", []string{"read:balances", "read:funding", "read:requests"})
		for _, sel := range []string{`button[value="approve"]`, `button[value="deny"]`} {
			must("visible "+sel, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))))
		}

		oaPhotograph(t, ctx, shots, "consent", `button[value="approve"]`)

		must("approve", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="approve"]`))))
		hit := cb.wait(t, 20*time.Second)
		if hit.query.Get("code") == "" || hit.query.Get("state") != state || hit.query.Get("iss") != st.s.URL || hit.query.Get("error") != "" {
			t.Fatalf("approve: the app got %v, want code, state %q and iss %q", hit.query, state, st.s.URL)
		}
		if hit.xff != st.ip {
			t.Errorf("the browser did not send the test's X-Forwarded-For (got %q): the rate limits would count it as 127.0.0.1", hit.xff)
		}
		must("landing on the app", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("done"))))
		loc, err := chromedp.Run(ctx, chromedp.Location())
		must("location", err)
		if !strings.HasPrefix(loc, cb.URL+"?") {
			t.Errorf("the browser is at %s, want the redirect URI %s", loc, cb.URL)
		}
		hctx := context.WithValue(context.Background(), oauth2.HTTPClient, st.httpClient())
		tok, err := conf.Exchange(hctx, hit.query.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchanging the browser's code: %v", err)
		}
		if p := st.api(t, "GET", "/v1/partner", tok.AccessToken, nil); p.Status != 200 || p.Str("id") != st.user.Partner.ID {
			t.Errorf("the token from the browser flow: %s", p)
		}

		// Deny, in the same browser: the session skips the login. On the way
		// "Not you? Sign out" ends the session and comes back to the same
		// request, whose login page names the app; signing in again leads to
		// its consent page.
		state = "deny-" + randomHex(6)
		must("consent again", chromedp.Do(ctx,
			chromedp.Navigate(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))),
			chromedp.WaitVisible(chromedp.CSS(`button[value="deny"]`)),
			chromedp.Click(chromedp.ID("switch-account")),
			chromedp.WaitVisible(chromedp.ID("email")),
		))
		asking, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("asking")))
		must("reading the login page", err)
		if !strings.Contains(asking, cl.Name) {
			t.Errorf("the login page of the authorization request does not name the app %q: %q", cl.Name, asking)
		}
		loc, err = chromedp.Run(ctx, chromedp.Location())
		must("location", err)
		if u, err := url.Parse(loc); err != nil || u.Path != "/oauth/authorize" || u.Query().Get("state") != state {
			t.Errorf("after Not you? the browser is at %s, want the same authorization request (state %s)", loc, state)
		}
		oaPhotograph(t, ctx, shots, "login", `button[type="submit"]`)
		must("signing in again", chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("email"), st.member.Email),
			chromedp.SendKeys(chromedp.ID("password"), st.member.Password),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[value="deny"]`)),
			chromedp.Click(chromedp.CSS(`button[value="deny"]`)),
		))
		hit = cb.wait(t, 20*time.Second)
		if hit.query.Get("error") != "access_denied" || hit.query.Get("state") != state || hit.query.Get("iss") != st.s.URL || hit.query.Get("code") != "" {
			t.Errorf("deny: the app got %v, want error=access_denied, state %q, iss %q and no code", hit.query, state, st.s.URL)
		}
		select {
		case extra := <-cb.hits:
			t.Errorf("the redirect URI was hit once more: %v", extra.query)
		default:
		}
	})
}
