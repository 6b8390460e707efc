package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// oaWithin calls call until done accepts its answer, which must happen
// within 1 s (the promise for every revocation on every instance); it logs
// the time taken and returns the answer.
func oaWithin(t *testing.T, what string, call func() *Response, done func(*Response) bool) *Response {
	t.Helper()
	var last *Response
	took, ok := poll(3*time.Second, 20*time.Millisecond, func() bool {
		last = call()
		return done(last)
	})
	if !ok {
		t.Fatalf("%s: not after %s: %s", what, took, last)
	}
	if took >= time.Second {
		t.Errorf("%s after %s, want < 1s", what, took)
	}
	t.Logf("%s after %s", what, took.Round(time.Millisecond))
	return last
}

func refused(r *Response) bool { return r.Status != 200 }
func served(r *Response) bool  { return r.Status == 200 }

// oaBlockedApp checks that app cl takes part in nothing: its access token
// is refused with 401 invalid_token on every server (within 1 s), the token
// endpoint refuses its refresh token and a code (401 invalid_client),
// introspection calls the token inactive, and the authorization page is an
// error page that redirects nowhere.
func oaBlockedApp(t *testing.T, why string, servers []*oaStack, ua *oaAgent, cl oaClient, tk oaTokens, code, verifier, redirect string) {
	t.Helper()
	for i, s := range servers {
		r := oaWithin(t, "server "+string(rune('A'+i))+" refuses the token of an app whose "+why,
			func() *Response { return s.fork().api(t, "GET", "/v1/balances", tk.Access, nil) }, refused)
		wantError(t, r, 401, "invalid_token")
	}
	// Every refusal counts as a failed authentication of its client IP:
	// each comes from another one, to stay clear of the lockout.
	last := servers[len(servers)-1]
	oaWantOAuthError(t, last.fork().refresh(t, cl, tk.Refresh, ""), 401, "invalid_client")
	oaWantOAuthError(t, last.fork().exchange(t, cl, code, redirect, verifier), 401, "invalid_client")
	for _, tok := range []string{tk.Access, tk.Refresh} {
		if in := last.fork().introspect(t, cl, tok); in.Get("active") != false || len(in.JSON) != 1 {
			t.Errorf("introspection of a token of an app whose %s: want exactly {\"active\": false}, got %s", why, in)
		}
	}
	q := oaAuthQuery(cl, redirect, "blocked", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
	oaWantErrorPage(t, ua.get(t, last.authURL(q)), "authorizing an app whose "+why)
}

// An app whose owner becomes inactive or rejected stops on every instance
// within 1 s: its access tokens are 401 invalid_token, its refresh tokens
// and codes are refused, introspection says inactive and no member can
// consent. Reactivating the owner restores the grants that were not
// revoked meanwhile. Serial: it measures how fast every instance hears it.
func TestOAuthClientOwnerNotApproved(t *testing.T) { // serial: oaWithin measures a delay
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b)
		servers := []*oaStack{st, st.on(oaServer(t, b))}
		redirect := "https://app.example/cb"
		cl := st.createClient(t, "confidential", []string{redirect}, "read:balances")
		ua := st.signedIn(t, cl, redirect)
		tk := st.tokensFor(t, ua, cl, redirect)
		doomed := st.tokensFor(t, ua, cl, redirect)
		doomedGrant := st.api(t, "GET", "/v1/partner", doomed.Access, nil).Str("credential.id")
		verifier := oauth2.GenerateVerifier()
		code := ua.code(t, oaAuthQuery(cl, redirect, "held", oauth2.S256ChallengeFromVerifier(verifier)))
		for _, s := range servers { // each caches the token
			wantStatus(t, s.api(t, "GET", "/v1/balances", tk.Access, nil), 200)
		}

		for _, status := range []string{"inactive", "rejected"} {
			b.SetPartnerStatus(t, st.owner.Partner.ID, status)
			oaBlockedApp(t, "owner is "+status, servers, ua, cl, tk, code, verifier, redirect)
			if status == "inactive" {
				// Consent withdrawn meanwhile stays withdrawn.
				wantStatus(t, st.api(t, "DELETE", "/v1/oauth_grants/"+doomedGrant, st.user.Admin.Key, nil), 200)
			}
			b.SetPartnerStatus(t, st.owner.Partner.ID, "approved")
			for i, s := range servers {
				oaWithin(t, "server "+string(rune('A'+i))+" accepts the token again once its app's owner is approved",
					func() *Response { return s.fork().api(t, "GET", "/v1/balances", tk.Access, nil) }, served)
			}
		}
		if in := servers[1].introspect(t, cl, tk.Access); in.Get("active") != true {
			t.Errorf("introspection once the owner is approved again: %s", in)
		}
		fresh := oaWantTokens(t, servers[1].refresh(t, cl, tk.Refresh, ""))
		wantStatus(t, st.api(t, "GET", "/v1/balances", fresh.Access, nil), 200)
		kept := oaWantTokens(t, st.exchange(t, cl, code, redirect, verifier))
		wantStatus(t, st.api(t, "GET", "/v1/balances", kept.Access, nil), 200)
		wantError(t, st.api(t, "GET", "/v1/balances", doomed.Access, nil), 401, "token_revoked")
	})
}

// oaCLIClient is an oauth_client as `nexus admin client` prints it.
type oaCLIClient struct {
	oaClient
	PartnerID string `json:"partner_id"`
}

// An operator stops one app with `nexus admin client disable` (its tokens
// refused on every instance within 1 s, the owner's other apps untouched),
// starts it again with enable, and removes it with delete. Serial: it
// measures how fast every instance hears it.
func TestOAuthAdminClientCLI(t *testing.T) { // serial: oaWithin measures a delay
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b)
		servers := []*oaStack{st, st.on(oaServer(t, b))}
		redirect := "https://app.example/cb"
		cl := st.createClient(t, "confidential", []string{redirect}, "read:balances")
		sibling := st.createClient(t, "public", []string{redirect}, "read:balances")
		ua := st.signedIn(t, cl, redirect)
		tk := st.tokensFor(t, ua, cl, redirect)
		stk := st.tokensFor(t, ua, sibling, redirect)
		verifier := oauth2.GenerateVerifier()
		code := ua.code(t, oaAuthQuery(cl, redirect, "held", oauth2.S256ChallengeFromVerifier(verifier)))
		for _, s := range servers {
			wantStatus(t, s.api(t, "GET", "/v1/balances", tk.Access, nil), 200)
		}

		list := func(args ...string) []oaCLIClient {
			t.Helper()
			out := b.CLI(t, append([]string{"admin", "client", "list"}, args...)...)
			var l struct {
				Object  string        `json:"object"`
				Data    []oaCLIClient `json:"data"`
				HasMore *bool         `json:"has_more"`
			}
			decodeJSON(t, "admin client list", out, &l)
			if l.Object != "list" || l.HasMore == nil || strings.Contains(string(out), "client_secret") || strings.Contains(string(out), "_cs_") {
				t.Fatalf("admin client list: %s", out)
			}
			return l.Data
		}
		mine := list("--partner", st.owner.Partner.ID)
		if len(mine) != 2 || mine[0].ID != sibling.ID || mine[1].ID != cl.ID {
			t.Fatalf("admin client list --partner: want the owner's two apps, newest first: %+v", mine)
		}
		for _, c := range mine {
			if c.Object != "oauth_client" || c.ClientID != c.ID || c.PartnerID != st.owner.Partner.ID || c.Status != "active" || c.Environment != "test" || c.Name == "" {
				t.Errorf("admin client list: %+v", c)
			}
		}
		found := false
		for _, c := range list() {
			found = found || c.ID == cl.ID
		}
		if !found {
			t.Errorf("admin client list (every partner) lacks %s", cl.ID)
		}

		change := func(verb, want string) {
			t.Helper()
			out := b.CLI(t, "admin", "client", verb, "--id", cl.ID)
			var c oaCLIClient
			decodeJSON(t, "admin client "+verb, out, &c)
			if c.ID != cl.ID || c.PartnerID != st.owner.Partner.ID || c.Status != want {
				t.Fatalf("admin client %s: want %s with status %s: %s", verb, cl.ID, want, out)
			}
		}
		cliError := func(code string, args ...string) {
			t.Helper()
			out, errOut, err := b.RunCLI(args...)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err == nil || json.Unmarshal(errOut, &e) != nil || e.Error.Code != code || e.Error.Message == "" {
				t.Errorf("nexus %s: want an error %s on stderr, got %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, err, out, errOut)
			}
		}

		change("disable", "disabled")
		oaBlockedApp(t, "client was disabled", servers, ua, cl, tk, code, verifier, redirect)
		wantStatus(t, servers[1].api(t, "GET", "/v1/balances", stk.Access, nil), 200) // the owner's other app
		if r := st.api(t, "GET", "/v1/oauth_clients/"+cl.ID, st.owner.Admin.Key, nil); r.Str("status") != "disabled" {
			t.Errorf("the owner sees its disabled client as %s", r)
		}
		cliError("invalid_state", "admin", "client", "disable", "--id", cl.ID)

		change("enable", "active")
		for i, s := range servers {
			oaWithin(t, "server "+string(rune('A'+i))+" accepts the token of a re-enabled app",
				func() *Response { return s.fork().api(t, "GET", "/v1/balances", tk.Access, nil) }, served)
		}
		tk = oaWantTokens(t, servers[1].refresh(t, cl, tk.Refresh, ""))
		oaWantTokens(t, st.exchange(t, cl, code, redirect, verifier))
		cliError("invalid_state", "admin", "client", "enable", "--id", cl.ID)

		change("delete", "deleted")
		for i, s := range servers {
			r := oaWithin(t, "server "+string(rune('A'+i))+" refuses the token of a deleted app",
				func() *Response { return s.fork().api(t, "GET", "/v1/balances", tk.Access, nil) }, refused)
			wantError(t, r, 401, "token_revoked")
		}
		cliError("invalid_state", "admin", "client", "enable", "--id", cl.ID)

		cliError("parameter_missing", "admin", "client", "disable")
		cliError("resource_missing", "admin", "client", "disable", "--id", "cli_doesnotexist")
		cliError("resource_missing", "admin", "client", "list", "--partner", "ptr_doesnotexist")
	})
}

// A deployment that serves test only (NEXUS_ENVIRONMENTS=test) issues no
// live grant, code or token, even for a live client registered elsewhere
// on the same database: the authorization page refuses it without
// redirecting, the token endpoint refuses its code and refresh token, and
// its tokens are inactive. Test apps work as before.
func TestOAuthTestOnlyDeployment(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b) // serves live and test
		sandbox := st.on(b.NewServer(t, oaTrustedProxies, "NEXUS_ENVIRONMENTS=test"))
		redirect := "https://app.example/cb"
		lc := st.createLiveClient(t, redirect)
		ua := st.signedIn(t, lc, redirect)
		verifier := oauth2.GenerateVerifier()
		code := ua.code(t, oaAuthQuery(lc, redirect, "live", oauth2.S256ChallengeFromVerifier(verifier)))
		liveTk := st.exchange(t, lc, ua.code(t, oaAuthQuery(lc, redirect, "live2", oauth2.S256ChallengeFromVerifier(verifier))), redirect, verifier)
		wantStatus(t, liveTk, 200)
		if !strings.HasPrefix(liveTk.Str("access_token"), "nx_live_at_") {
			t.Fatalf("the live deployment's live token: %s", liveTk)
		}

		// The sandbox refuses every step.
		p := ua.get(t, sandbox.authURL(oaAuthQuery(lc, redirect, "sb", oauth2.S256ChallengeFromVerifier(verifier))))
		oaWantErrorPage(t, p, "authorizing a live app on a test-only deployment")
		if !strings.Contains(oaVisibleText(p.Body), "live") {
			t.Errorf("the error page does not say the live environment is not served: %s", oaVisibleText(p.Body))
		}
		oaWantOAuthError(t, sandbox.exchange(t, lc, code, redirect, verifier), 401, "invalid_client")
		oaWantOAuthError(t, sandbox.refresh(t, lc, liveTk.Str("refresh_token"), ""), 401, "invalid_client")
		if in := sandbox.introspect(t, lc, liveTk.Str("access_token")); in.Get("active") != false || len(in.JSON) != 1 {
			t.Errorf("the sandbox introspecting a live token: %s", in)
		}
		wantError(t, sandbox.api(t, "GET", "/v1/balances", liveTk.Str("access_token"), nil), 403, "environment_not_served")

		// A test app works end to end on the sandbox.
		tc := st.createClient(t, "public", []string{redirect}, "read:balances")
		sua := sandbox.signedIn(t, tc, redirect)
		tk := sandbox.tokensFor(t, sua, tc, redirect)
		wantStatus(t, sandbox.api(t, "GET", "/v1/balances", tk.Access, nil), 200)
	})
}

// createLiveClient registers a confidential live app for partner A with a
// live admin key of its own.
func (st *oaStack) createLiveClient(t testing.TB, redirect string) oaClient {
	t.Helper()
	liveKey := st.b.CreateKey(t, st.owner.Partner.ID, "live", "secret")
	r := st.api(t, "POST", "/v1/oauth_clients", liveKey.Key, map[string]any{"name": "Live app", "type": "confidential",
		"redirect_uris": []string{redirect}, "scopes": []string{"read:balances"}})
	wantStatus(t, r, 201)
	var lc oaClient
	r.Decode(t, &lc)
	if lc.Environment != "live" || !strings.HasPrefix(lc.ClientSecret, "nx_live_cs_") {
		t.Fatalf("a client registered with a live key: %s", r)
	}
	return lc
}
