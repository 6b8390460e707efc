package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// corsWantGrant checks that r lets a page of origin read it.
func corsWantGrant(t testing.TB, r *Response, origin string) {
	t.Helper()
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", r, got, origin)
	}
	expose := strings.ToLower(r.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"} {
		if !strings.Contains(expose, h) {
			t.Errorf("%s: Access-Control-Expose-Headers %q lacks %s", r, expose, h)
		}
	}
	corsWantVary(t, r)
}

// corsWantNoGrant checks that r lets no page read it.
func corsWantNoGrant(t testing.TB, r *Response) {
	t.Helper()
	for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Credentials"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("%s: %s %q, want none", r, h, v)
		}
	}
}

func corsWantVary(t testing.TB, r *Response) {
	t.Helper()
	if !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("%s: Vary %q lacks Origin", r, r.Header.Values("Vary"))
	}
}

// CORS as the server speaks it: the preflight lets any web origin ask,
// and only a publishable key bound to the origin has its answers granted.
func TestCORSAnswers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b) // a server that also issues OAuth tokens
		s := st.s
		const shop, evil = "https://shop.example", "https://evil.example"
		pk := apiCreateKey(t, s, st.owner.Admin.Key, map[string]any{"type": "publishable", "allowed_origins": []string{shop}})
		from := func(origin string, h H) H { return st.h(h.with("Origin", origin)) }

		t.Run("preflight", func(t *testing.T) {
			for _, path := range []string{"/v1/balances", "/v1/balances/usdc", "/v1/addresses"} {
				r := do(t, "OPTIONS", s.URL+path, st.h(H{
					"Origin": shop, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization",
				}), nil)
				wantStatus(t, r, 204)
				if got := r.Header.Get("Access-Control-Allow-Origin"); got != shop {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want the request's origin", r, got)
				}
				allow := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))
				for _, h := range []string{"authorization", "content-type", "idempotency-key", "x-api-key"} {
					if !strings.Contains(allow, h) {
						t.Errorf("%s: Access-Control-Allow-Headers %q lacks %s", r, allow, h)
					}
				}
				if m := r.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "GET") {
					t.Errorf("%s: Access-Control-Allow-Methods %q", r, m)
				}
				if r.Header.Get("Access-Control-Max-Age") == "" {
					t.Errorf("%s: no Access-Control-Max-Age", r)
				}
				if c := r.Header.Get("Access-Control-Allow-Credentials"); c != "" {
					t.Errorf("%s: Access-Control-Allow-Credentials %q: cookies must not cross", r, c)
				}
				corsWantVary(t, r)
			}
			// Sandboxed frames and files all share "null": nothing to grant.
			r := do(t, "OPTIONS", s.URL+"/v1/balances", st.h(H{"Origin": "null", "Access-Control-Request-Method": "GET"}), nil)
			wantStatus(t, r, 204)
			corsWantNoGrant(t, r)
			// Only /v1 is for browsers.
			r = do(t, "OPTIONS", s.URL+"/internal/v1/funding", st.h(H{"Origin": shop, "Access-Control-Request-Method": "POST"}), nil)
			wantError(t, r, 404, "route_not_found")
			corsWantNoGrant(t, r)
		})

		t.Run("publishable key bound to the origin", func(t *testing.T) {
			r := do(t, "GET", s.URL+"/v1/balances", from(shop, bearer(pk.Key)), nil)
			wantStatus(t, r, 200)
			corsWantGrant(t, r, shop)
			// Its refusals are readable by its page too.
			r = do(t, "GET", s.URL+"/v1/funding", from(shop, bearer(pk.Key)), nil)
			wantError(t, r, 403, "insufficient_scope")
			corsWantGrant(t, r, shop)
			// Another origin, or none, is refused and granted nothing.
			r = do(t, "GET", s.URL+"/v1/balances", from(evil, bearer(pk.Key)), nil)
			wantError(t, r, 403, "origin_not_allowed")
			corsWantNoGrant(t, r)
			r = do(t, "GET", s.URL+"/v1/balances", st.h(bearer(pk.Key)), nil)
			wantError(t, r, 403, "origin_not_allowed")
			corsWantNoGrant(t, r)
		})

		t.Run("no grant for other credentials", func(t *testing.T) {
			open := apiCreateKey(t, s, st.owner.Admin.Key, map[string]any{"type": "publishable"})
			restricted := apiCreateKey(t, s, st.owner.Admin.Key, map[string]any{"scopes": []string{"read:balances"}, "allowed_origins": []string{shop}})
			hs := stHS256(t, s, st.owner.Admin.Key)
			jwt := stMint(t, sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret, Lifetime: 5 * time.Minute})
			cl := st.createClient(t, "confidential", []string{"https://app.example/cb"}, "read:balances")
			oauthTok := st.tokensFor(t, st.signedIn(t, cl, "https://app.example/cb"), cl, "https://app.example/cb").Access
			for name, cred := range map[string]string{
				"secret key": st.owner.Admin.Key, "secret key with allowed_origins": restricted.Key,
				"publishable key without allowed_origins": open.Key, "service JWT": jwt, "OAuth access token": oauthTok,
			} {
				r := do(t, "GET", s.URL+"/v1/balances", from(shop, bearer(cred)), nil)
				if r.Status != 200 {
					t.Errorf("%s from a page: %s, want 200 (answered normally, without a grant)", name, r)
				}
				corsWantNoGrant(t, r)
			}
		})
	})
}

// corsPage serves a blank page on a loopback origin of its own.
func corsPage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>shop</title><p>shop</p>")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// corsFetch is what a page's fetch() of Nexus came to.
type corsFetch struct {
	OK        bool   `json:"ok"` // false: the promise rejected
	Status    int    `json:"status"`
	Object    string `json:"object"`
	RequestID string `json:"request_id"`
	Remaining string `json:"remaining"`
	Error     string `json:"error"`
}

// The README's fetch() in a real browser: a page on one loopback origin
// reads /v1/balances from Nexus on another with a publishable key bound to
// it; a page on a third origin cannot (the browser rejects the fetch), nor
// can the allowed page read what a secret key gets.
func TestCORSBrowser(t *testing.T) {
	t.Parallel()
	chromium := oaChromium(t)
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		shop, other := corsPage(t), corsPage(t)
		pk := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"type": "publishable", "allowed_origins": []string{shop}})

		bctx := headlessChromium(t, chromium)
		ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
		defer cancel()

		// fetchFrom opens page and has it fetch /v1/balances with key.
		fetchFrom := func(page, key string) corsFetch {
			t.Helper()
			js := fmt.Sprintf(`fetch(%q, {headers: {"Authorization": "Bearer " + %q}})
				.then(async r => { const body = await r.json(); return {ok: true, status: r.status,
					object: body.object || "", request_id: r.headers.get("X-Request-Id") || "",
					remaining: r.headers.get("RateLimit-Remaining") || ""}; })
				.catch(e => ({ok: false, error: String(e)}))`, s.URL+"/v1/balances", key)
			err := chromedp.Do(ctx, chromedp.Navigate(page+"/checkout"))
			var got corsFetch
			if err == nil {
				got, err = chromedp.Run(ctx, chromedp.Evaluate[corsFetch](js, chromedp.EvalAwaitPromise))
			}
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("fetch from %s: timed out", page)
				}
				t.Fatalf("fetch from %s: %v", page, err)
			}
			return got
		}

		got := fetchFrom(shop, pk.Key)
		if !got.OK || got.Status != 200 || got.Object != "list" || !strings.HasPrefix(got.RequestID, "req_") || got.Remaining == "" {
			t.Errorf("the allowed page's fetch: %+v, want 200, the balances list, X-Request-Id and RateLimit-Remaining readable", got)
		}
		if got := fetchFrom(other, pk.Key); got.OK || !strings.Contains(got.Error, "TypeError") {
			t.Errorf("another origin's fetch: %+v, want it rejected by the browser (TypeError)", got)
		}
		if got := fetchFrom(shop, tn.Admin.Key); got.OK || !strings.Contains(got.Error, "TypeError") {
			t.Errorf("a secret key's fetch from the allowed page: %+v, want it rejected by the browser (TypeError)", got)
		}
	})
}
