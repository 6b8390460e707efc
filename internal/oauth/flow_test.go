package oauth

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

func TestValidateAuthorize(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	multi := f.newClient(Confidential, nexus.Test, []string{appRedirect, "http://localhost:8080/cb"}, "read:balances", "read:funding", "write:addresses")
	single := f.newClient(Public, nexus.Test, []string{"https://spa.example.com/cb"}, "read:balances")
	_, challenge := pkce()

	type want struct {
		fatal    bool
		code     string // OAuth error code sent to the redirect URI
		redirect string
		given    string
		scopes   string
	}
	cases := []struct {
		name   string
		client *ClientView
		set    url.Values // added to client_id + response_type=code
		del    []string
		want   want
	}{
		{"unknown client", nil, url.Values{"client_id": {"cli_unknown"}, "redirect_uri": {appRedirect}}, nil, want{fatal: true}},
		{"no client id", nil, url.Values{"redirect_uri": {appRedirect}}, []string{"client_id"}, want{fatal: true}},
		{"unknown client and bad response_type", nil, url.Values{"client_id": {"cli_unknown"}, "response_type": {"token"}}, nil, want{fatal: true}},
		{"redirect trailing slash", multi, url.Values{"redirect_uri": {appRedirect + "/"}}, nil, want{fatal: true}},
		{"redirect case", multi, url.Values{"redirect_uri": {"https://APP.example.com/cb"}}, nil, want{fatal: true}},
		{"redirect path case", multi, url.Values{"redirect_uri": {"https://app.example.com/CB"}}, nil, want{fatal: true}},
		{"redirect prefix", multi, url.Values{"redirect_uri": {"https://app.example.com/c"}}, nil, want{fatal: true}},
		{"redirect longer path", multi, url.Values{"redirect_uri": {appRedirect + "/evil"}}, nil, want{fatal: true}},
		{"redirect extra query", multi, url.Values{"redirect_uri": {appRedirect + "?x=1"}}, nil, want{fatal: true}},
		{"redirect http instead of https", multi, url.Values{"redirect_uri": {"http://app.example.com/cb"}}, nil, want{fatal: true}},
		{"redirect other port", multi, url.Values{"redirect_uri": {"http://localhost:8081/cb"}}, nil, want{fatal: true}},
		{"redirect of another client", multi, url.Values{"redirect_uri": {"https://spa.example.com/cb"}}, nil, want{fatal: true}},
		{"redirect omitted with two registered", multi, nil, nil, want{fatal: true}},
		{"redirect wrong and bad response_type", multi, url.Values{"redirect_uri": {appRedirect + "/"}, "response_type": {"token"}}, nil, want{fatal: true}},

		{"ok second redirect", multi, url.Values{"redirect_uri": {"http://localhost:8080/cb"}}, nil,
			want{redirect: "http://localhost:8080/cb", given: "http://localhost:8080/cb", scopes: "read:balances read:funding write:addresses"}},
		{"redirect omitted with one registered", single, url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, nil,
			want{redirect: "https://spa.example.com/cb", given: "", scopes: "read:balances"}},

		{"response_type token", multi, url.Values{"redirect_uri": {appRedirect}, "response_type": {"token"}}, nil, want{code: "unsupported_response_type", redirect: appRedirect}},
		{"response_type missing", multi, url.Values{"redirect_uri": {appRedirect}}, []string{"response_type"}, want{code: "unsupported_response_type", redirect: appRedirect}},
		{"response_type code token", multi, url.Values{"redirect_uri": {appRedirect}, "response_type": {"code token"}}, nil, want{code: "unsupported_response_type", redirect: appRedirect}},
		{"public without challenge", single, nil, nil, want{code: "invalid_request", redirect: "https://spa.example.com/cb"}},
		{"public method without challenge", single, url.Values{"code_challenge_method": {"S256"}}, nil, want{code: "invalid_request", redirect: "https://spa.example.com/cb"}},
		{"method plain", multi, url.Values{"redirect_uri": {appRedirect}, "code_challenge": {challenge}, "code_challenge_method": {"plain"}}, nil, want{code: "invalid_request", redirect: appRedirect}},
		{"method omitted (plain by default)", multi, url.Values{"redirect_uri": {appRedirect}, "code_challenge": {challenge}}, nil, want{code: "invalid_request", redirect: appRedirect}},
		{"method s256 lower case", multi, url.Values{"redirect_uri": {appRedirect}, "code_challenge": {challenge}, "code_challenge_method": {"s256"}}, nil, want{code: "invalid_request", redirect: appRedirect}},
		{"challenge 42 chars", single, url.Values{"code_challenge": {challenge[:42]}, "code_challenge_method": {"S256"}}, nil, want{code: "invalid_request", redirect: "https://spa.example.com/cb"}},
		{"challenge 44 chars", single, url.Values{"code_challenge": {challenge + "A"}, "code_challenge_method": {"S256"}}, nil, want{code: "invalid_request", redirect: "https://spa.example.com/cb"}},
		{"challenge 42 chars and a newline", single, url.Values{"code_challenge": {challenge[:42] + "\n"}, "code_challenge_method": {"S256"}}, nil, want{code: "invalid_request", redirect: "https://spa.example.com/cb"}},
		{"challenge 43 chars, not base64url", single, url.Values{"code_challenge": {strings.Repeat("~", 43)}, "code_challenge_method": {"S256"}}, nil, want{code: "invalid_request", redirect: "https://spa.example.com/cb"}},
		{"challenge 129 chars", single, url.Values{"code_challenge": {strings.Repeat("a", 129)}, "code_challenge_method": {"S256"}}, nil, want{code: "invalid_request", redirect: "https://spa.example.com/cb"}},
		{"scope wider than client", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"read:balances write:requests"}}, nil, want{code: "invalid_scope", redirect: appRedirect}},
		{"scope admin", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"admin"}}, nil, want{code: "invalid_scope", redirect: appRedirect}},
		{"scope admin:all", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"admin:all"}}, nil, want{code: "invalid_scope", redirect: appRedirect}},
		{"scope internal", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"internal:funding"}}, nil, want{code: "invalid_scope", redirect: appRedirect}},
		{"scope unknown", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"read:balances bogus"}}, nil, want{code: "invalid_scope", redirect: appRedirect}},
		{"scope alias wider", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"read"}}, nil, want{code: "invalid_scope", redirect: appRedirect}},

		{"scope narrower", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"read:funding"}}, nil,
			want{redirect: appRedirect, given: appRedirect, scopes: "read:funding"}},
		{"scope implied read by write", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {" read:addresses  read:balances "}}, nil,
			want{redirect: appRedirect, given: appRedirect, scopes: "read:addresses read:balances"}},
		{"scope empty", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {""}}, nil,
			want{redirect: appRedirect, given: appRedirect, scopes: "read:balances read:funding write:addresses"}},
		{"scope blank", multi, url.Values{"redirect_uri": {appRedirect}, "scope": {"   "}}, nil,
			want{redirect: appRedirect, given: appRedirect, scopes: "read:balances read:funding write:addresses"}},
		{"confidential with S256", multi, url.Values{"redirect_uri": {appRedirect}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}, nil,
			want{redirect: appRedirect, given: appRedirect, scopes: "read:balances read:funding write:addresses"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"response_type": {"code"}, "state": {"s-1"}}
			if tc.client != nil {
				q.Set("client_id", tc.client.ID)
			}
			for k, v := range tc.set {
				q[k] = v
			}
			for _, k := range tc.del {
				q.Del(k)
			}
			r, err := f.svc.ValidateAuthorize(f.ctx, q)
			if tc.want.fatal {
				var fe *FatalError
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v (%T), want *FatalError", err, err)
				}
				if r != nil {
					t.Fatalf("a fatal error returned a request to redirect with: %+v", r)
				}
				return
			}
			if tc.want.code != "" {
				wantOAuth(t, err, tc.want.code)
				// The error goes back to the verified redirect URI, with state.
				if r == nil || r.RedirectURI != tc.want.redirect || r.State != "s-1" {
					t.Fatalf("request for the error redirect = %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Client.ID != tc.client.ID || r.RedirectURI != tc.want.redirect || r.RedirectGiven != tc.want.given ||
				r.Scopes.String() != tc.want.scopes || r.State != "s-1" || r.CodeChallenge != q.Get("code_challenge") {
				t.Fatalf("request = %+v (scopes %q)", r, r.Scopes)
			}
		})
	}
}

func TestExchangeCodeHappyPath(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	for _, typ := range []string{Public, Confidential} {
		t.Run(typ, func(t *testing.T) {
			a := f.app(typ)
			verifier, challenge := pkce()
			r, err := f.svc.ValidateAuthorize(f.ctx, authQuery(a, challenge, "read:balances write:addresses"))
			if err != nil {
				t.Fatal(err)
			}
			code, err := f.svc.Approve(f.ctx, f.sess, r, nexus.PartnerApproved)
			if err != nil || code == "" {
				t.Fatalf("Approve = %q, %v", code, err)
			}
			// Only the digest of the code is stored.
			if n, err := f.cross("looks for a raw code").Select((*codeRow)(nil)).Where("code_hash = ?", code).Count(f.ctx); err != nil || n != 0 {
				t.Fatalf("code stored in clear (%d, %v)", n, err)
			}
			tr, err := f.svc.ExchangeCode(f.ctx, a.c, code, appRedirect, verifier)
			if err != nil {
				t.Fatal(err)
			}
			wantCred(t, tr.AccessToken, "test", credential.KindAccessToken)
			wantCred(t, tr.RefreshToken, "test", credential.KindRefreshToken)
			if tr.TokenType != "Bearer" || tr.ExpiresIn != 3600 || tr.Scope != "read:balances write:addresses" {
				t.Fatalf("token response = %+v", tr)
			}
			p := wantVerify(t, v, tr.AccessToken, "")
			if p.Partner.ID != f.user.ID || p.Environment != nexus.Test || p.CredentialType != nexus.CredentialOAuthToken ||
				p.Actor != a.v.ID || p.Scopes.String() != tr.Scope || !strings.HasPrefix(p.CredentialID, "grt_") {
				t.Fatalf("principal = %+v", p)
			}
			if !p.Scopes.Has(nexus.ScopeReadAddresses) || p.Scopes.Has(nexus.ScopeReadFunding) {
				t.Fatalf("principal scopes %q", p.Scopes)
			}
			for _, tok := range []string{tr.AccessToken, tr.RefreshToken} {
				if n, err := f.cross("looks for a raw token").Select((*Token)(nil)).Where("token_hash = ?", tok).Count(f.ctx); err != nil || n != 0 {
					t.Fatalf("token stored in clear (%d, %v)", n, err)
				}
			}
		})
	}
	t.Run("live client", func(t *testing.T) {
		lv := f.newClient(Public, nexus.Live, []string{appRedirect}, "read")
		a := &app{v: lv, c: f.row(lv.ID)}
		tr := f.tokens(a, "")
		wantCred(t, tr.AccessToken, "live", credential.KindAccessToken)
		wantCred(t, tr.RefreshToken, "live", credential.KindRefreshToken)
		if p := wantVerify(t, v, tr.AccessToken, ""); p.Environment != nexus.Live {
			t.Fatalf("principal env %s", p.Environment)
		}
	})
}

func TestExchangeCodeErrors(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	pub := f.app(Public)
	conf := f.app(Confidential)
	single := f.newClient(Confidential, nexus.Test, []string{"https://one.example.com/cb"}, "read")
	one := &app{v: single, c: f.row(single.ID)}

	// authorize issues a code for a; challenge "" means no PKCE.
	authorize := func(t *testing.T, a *app, challenge string, withRedirect bool) string {
		t.Helper()
		q := url.Values{"client_id": {a.v.ID}, "response_type": {"code"}}
		if withRedirect {
			q.Set("redirect_uri", a.v.RedirectURIs[0])
		}
		if challenge != "" {
			q.Set("code_challenge", challenge)
			q.Set("code_challenge_method", "S256")
		}
		r, err := f.svc.ValidateAuthorize(f.ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		code, err := f.svc.Approve(f.ctx, f.sess, r, nexus.PartnerApproved)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	verifier, challenge := pkce()
	otherVerifier, _ := pkce()

	cases := []struct {
		name         string
		a            *app // the client the code is issued to
		challenge    string
		withRedirect bool
		presenter    *app // the client at the token endpoint (default a)
		redirect     string
		verifier     string
		expire       bool
		wantCode     string // "" = success
	}{
		{"pkce ok", pub, challenge, true, nil, appRedirect, verifier, false, ""},
		{"confidential without pkce", conf, "", true, nil, appRedirect, "", false, ""},
		{"redirect omitted in both", one, "", false, nil, "", "", false, ""},
		{"wrong verifier", pub, challenge, true, nil, appRedirect, otherVerifier, false, "invalid_grant"},
		{"missing verifier", pub, challenge, true, nil, appRedirect, "", false, "invalid_grant"},
		{"challenge as verifier", pub, challenge, true, nil, appRedirect, challenge, false, "invalid_grant"},
		{"verifier too short", pub, s256("short"), true, nil, appRedirect, "short", false, "invalid_grant"},
		{"verifier without challenge", conf, "", true, nil, appRedirect, verifier, false, "invalid_grant"},
		{"wrong redirect_uri", pub, challenge, true, nil, "https://app.example.com/cb/", verifier, false, "invalid_grant"},
		{"redirect_uri omitted at token", pub, challenge, true, nil, "", verifier, false, "invalid_grant"},
		{"code of another client", conf, challenge, true, pub, appRedirect, verifier, false, "invalid_grant"},
		{"expired code", pub, challenge, true, nil, appRedirect, verifier, true, "invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := authorize(t, tc.a, tc.challenge, tc.withRedirect)
			if tc.expire {
				f.setExpiry("oauth_codes", "code_hash", digest(code), store.Now().Add(-time.Second))
			}
			presenter := tc.presenter
			if presenter == nil {
				presenter = tc.a
			}
			tr, err := f.svc.ExchangeCode(f.ctx, presenter.c, code, tc.redirect, tc.verifier)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				wantCred(t, tr.AccessToken, "test", credential.KindAccessToken)
				return
			}
			if tr != nil {
				t.Fatalf("tokens issued: %+v", tr)
			}
			wantOAuth(t, err, tc.wantCode)
		})
	}

	t.Run("unknown code", func(t *testing.T) {
		_, err := f.svc.ExchangeCode(f.ctx, pub.c, randomToken(), appRedirect, verifier)
		wantOAuth(t, err, "invalid_grant")
	})
	t.Run("empty code", func(t *testing.T) {
		_, err := f.svc.ExchangeCode(f.ctx, pub.c, "", appRedirect, verifier)
		wantOAuth(t, err, "invalid_request")
	})
	t.Run("code digest as code", func(t *testing.T) {
		code := authorize(t, pub, challenge, true)
		_, err := f.svc.ExchangeCode(f.ctx, pub.c, digest(code), appRedirect, verifier)
		wantOAuth(t, err, "invalid_grant")
	})
	// A refused attempt (here: by another client) does not spend the code,
	// so the legitimate client can still redeem it.
	t.Run("refused attempt keeps the code", func(t *testing.T) {
		code := authorize(t, pub, challenge, true)
		_, err := f.svc.ExchangeCode(f.ctx, conf.c, code, appRedirect, verifier)
		wantOAuth(t, err, "invalid_grant")
		if _, err := f.svc.ExchangeCode(f.ctx, pub.c, code, appRedirect, verifier); err != nil {
			t.Fatalf("legitimate exchange after a refused one: %v", err)
		}
	})
	t.Run("grant revoked before exchange", func(t *testing.T) {
		code := authorize(t, pub, challenge, true)
		var grantID string
		if err := f.cross("finds a code's grant").Select((*codeRow)(nil)).Column("grant_id").Where("code_hash = ?", digest(code)).Scan(f.ctx, &grantID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RevokeGrant(f.ctx, tenant(f.user, nexus.Test), grantID); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.ExchangeCode(f.ctx, pub.c, code, appRedirect, verifier)
		wantOAuth(t, err, "invalid_grant")
	})
}

func TestExchangeCodeReuseRevokes(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	a := f.app(Public)
	other := f.tokens(a, "") // an unrelated grant of the same client
	code, verifier := f.code(a, "")
	tr, err := f.svc.ExchangeCode(f.ctx, a.c, code, appRedirect, verifier)
	if err != nil {
		t.Fatal(err)
	}
	grant := f.grantID(tr.AccessToken)
	wantVerify(t, v, tr.AccessToken, "") // cached
	wantVerify(t, v, other.AccessToken, "")

	tr2, err := f.svc.ExchangeCode(f.ctx, a.c, code, appRedirect, verifier)
	if tr2 != nil {
		t.Fatalf("second exchange issued tokens: %+v", tr2)
	}
	wantOAuth(t, err, "invalid_grant")

	wantVerify(t, v, tr.AccessToken, nexus.CodeTokenRevoked) // dropped through OnLocalPublish
	_, err = f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "")
	wantOAuth(t, err, "invalid_grant")
	for _, tok := range []string{tr.AccessToken, tr.RefreshToken} {
		if in, err := f.svc.Introspect(f.ctx, tok, ""); err != nil || in.Active {
			t.Fatalf("Introspect = %+v %v", in, err)
		}
	}
	gs, _, _ := f.svc.ListGrants(f.ctx, tenant(f.user, nexus.Test), store.Page{})
	for _, g := range gs {
		if (g.ID == grant) != (g.Status == "revoked") {
			t.Fatalf("grant %+v", g)
		}
	}
	wantVerify(t, v, other.AccessToken, "")

	// A third presentation, even with wrong parameters, is still refused.
	_, err = f.svc.ExchangeCode(f.ctx, a.c, code, "", "")
	wantOAuth(t, err, "invalid_grant")
}

// Tokens minted from a refresh share the code's lineage: reusing the code
// after a refresh revokes the refreshed tokens too.
func TestExchangeCodeReuseAfterRefresh(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	a := f.app(Confidential)
	code, verifier := f.code(a, "")
	tr, err := f.svc.ExchangeCode(f.ctx, a.c, code, appRedirect, verifier)
	if err != nil {
		t.Fatal(err)
	}
	tr2, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, tr2.AccessToken, "")
	_, err = f.svc.ExchangeCode(f.ctx, a.c, code, appRedirect, verifier)
	wantOAuth(t, err, "invalid_grant")
	wantVerify(t, v, tr2.AccessToken, nexus.CodeTokenRevoked)
	_, err = f.svc.Refresh(f.ctx, a.c, tr2.RefreshToken, "")
	wantOAuth(t, err, "invalid_grant")
}

func TestApprovePartnerStatus(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	live := f.newClient(Public, nexus.Live, []string{appRedirect}, "read")
	test := f.newClient(Public, nexus.Test, []string{appRedirect}, "read")
	cases := []struct {
		client *ClientView
		status nexus.PartnerStatus
		ok     bool
	}{
		{live, nexus.PartnerApproved, true},
		{test, nexus.PartnerApproved, true},
		{live, nexus.PartnerPending, false},
		{test, nexus.PartnerPending, true},
		{live, nexus.PartnerInactive, false},
		{test, nexus.PartnerInactive, false},
		{test, nexus.PartnerRejected, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.client.Environment)+"/"+string(tc.status), func(t *testing.T) {
			a := &app{v: tc.client, c: f.row(tc.client.ID)}
			_, challenge := pkce()
			r, err := f.svc.ValidateAuthorize(f.ctx, authQuery(a, challenge, ""))
			if err != nil {
				t.Fatal(err)
			}
			before, _, _ := f.svc.ListGrants(f.ctx, tenant(f.user, tc.client.Environment), store.Page{Limit: 100})
			code, err := f.svc.Approve(f.ctx, f.sess, r, tc.status)
			after, _, _ := f.svc.ListGrants(f.ctx, tenant(f.user, tc.client.Environment), store.Page{Limit: 100})
			if tc.ok {
				if err != nil || code == "" || len(after) != len(before)+1 {
					t.Fatalf("Approve = %q, %v (grants %d → %d)", code, err, len(before), len(after))
				}
				return
			}
			wantOAuth(t, err, "access_denied")
			if code != "" || len(after) != len(before) {
				t.Fatalf("refused Approve left code %q, grants %d → %d", code, len(before), len(after))
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	a := f.app(Confidential) // read:balances read:funding write:addresses
	b := f.app(Confidential)

	t.Run("rotation and reuse", func(t *testing.T) {
		tr := f.tokens(a, "")
		grant := f.grantID(tr.AccessToken)
		tr2, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "")
		if err != nil {
			t.Fatal(err)
		}
		wantCred(t, tr2.RefreshToken, "test", credential.KindRefreshToken)
		wantCred(t, tr2.AccessToken, "test", credential.KindAccessToken)
		if tr2.RefreshToken == tr.RefreshToken || tr2.AccessToken == tr.AccessToken || tr2.Scope != tr.Scope || tr2.TokenType != "Bearer" {
			t.Fatalf("refresh = %+v", tr2)
		}
		if f.grantID(tr2.AccessToken) != grant {
			t.Fatal("refresh started a new grant")
		}
		if in, _ := f.svc.Introspect(f.ctx, tr.RefreshToken, ""); in.Active {
			t.Fatal("the used refresh token is still active")
		}
		tr3, err := f.svc.Refresh(f.ctx, a.c, tr2.RefreshToken, "")
		if err != nil {
			t.Fatal(err)
		}
		wantVerify(t, v, tr3.AccessToken, "") // cached

		// Presenting a used refresh token revokes the whole grant.
		_, err = f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "")
		wantOAuth(t, err, "invalid_grant")
		wantVerify(t, v, tr3.AccessToken, nexus.CodeTokenRevoked)
		wantVerify(t, v, tr.AccessToken, nexus.CodeTokenRevoked)
		_, err = f.svc.Refresh(f.ctx, a.c, tr3.RefreshToken, "")
		wantOAuth(t, err, "invalid_grant")
		if in, _ := f.svc.Introspect(f.ctx, tr3.RefreshToken, ""); in.Active {
			t.Fatal("newest refresh token active after reuse")
		}
		gs, _, _ := f.svc.ListGrants(f.ctx, tenant(f.user, nexus.Test), store.Page{Limit: 100})
		for _, g := range gs {
			if g.ID == grant && g.Status != "revoked" {
				t.Fatalf("grant after reuse: %+v", g)
			}
		}
	})

	t.Run("scope", func(t *testing.T) {
		cases := []struct {
			name, granted, asked string
			want                 string // "" = invalid_scope
		}{
			{"same", "", "", "read:balances read:funding write:addresses"},
			{"narrow", "read:balances read:funding", "read:balances", "read:balances"},
			{"narrow two", "", "read:funding read:balances", "read:balances read:funding"},
			{"write to read", "write:addresses", "read:addresses", "read:addresses"},
			{"repeat all", "read:balances read:funding", "read:balances read:funding", "read:balances read:funding"},
			{"widen", "read:balances", "read:balances read:funding", ""},
			{"widen beyond client", "", "write:requests", ""},
			{"read to write", "read:balances read:funding", "write:addresses", ""},
			{"alias read", "read:balances read:funding", "read", ""},
			{"admin", "", "admin", ""},
			{"internal", "", "internal:funding", ""},
			{"unknown", "", "read:balances bogus", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tr := f.tokens(a, tc.granted)
				tr2, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, tc.asked)
				if tc.want == "" {
					wantOAuth(t, err, "invalid_scope")
					// A refused refresh does not spend the token (no false reuse).
					if _, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, ""); err != nil {
						t.Fatalf("refresh after a refused one: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if tr2.Scope != tc.want {
					t.Fatalf("scope %q, want %q", tr2.Scope, tc.want)
				}
				if p := wantVerify(t, v, tr2.AccessToken, ""); p.Scopes.String() != tc.want {
					t.Fatalf("principal scopes %q", p.Scopes)
				}
				if in, _ := f.svc.Introspect(f.ctx, tr2.RefreshToken, ""); in.Scope != tc.want {
					t.Fatalf("new refresh token scope %q", in.Scope)
				}
			})
		}
	})

	t.Run("narrowed token cannot widen back", func(t *testing.T) {
		tr := f.tokens(a, "read:balances read:funding")
		tr2, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "read:balances")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Refresh(f.ctx, a.c, tr2.RefreshToken, "read:balances read:funding")
		wantOAuth(t, err, "invalid_scope")
	})

	t.Run("another client", func(t *testing.T) {
		tr := f.tokens(a, "")
		_, err := f.svc.Refresh(f.ctx, b.c, tr.RefreshToken, "")
		wantOAuth(t, err, "invalid_grant")
		if _, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, ""); err != nil {
			t.Fatalf("owner's refresh after another client's attempt: %v", err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		tr := f.tokens(a, "")
		f.setExpiry("oauth_tokens", "token_hash", credential.DigestHex(tr.RefreshToken), store.Now().Add(-time.Second))
		_, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "")
		wantOAuth(t, err, "invalid_grant")
		if in, _ := f.svc.Introspect(f.ctx, tr.RefreshToken, ""); in.Active {
			t.Fatal("expired refresh token is active")
		}
		wantVerify(t, v, tr.AccessToken, "") // the access token lives on
	})

	t.Run("access token as refresh token", func(t *testing.T) {
		tr := f.tokens(a, "")
		_, err := f.svc.Refresh(f.ctx, a.c, tr.AccessToken, "")
		wantOAuth(t, err, "invalid_grant")
	})
	t.Run("unknown and empty", func(t *testing.T) {
		_, err := f.svc.Refresh(f.ctx, a.c, credential.MustNew("test", credential.KindRefreshToken), "")
		wantOAuth(t, err, "invalid_grant")
		_, err = f.svc.Refresh(f.ctx, a.c, "", "")
		wantOAuth(t, err, "invalid_request")
	})
	t.Run("revoked grant", func(t *testing.T) {
		tr := f.tokens(a, "")
		if _, err := f.svc.RevokeGrant(f.ctx, tenant(f.user, nexus.Test), f.grantID(tr.AccessToken)); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "")
		wantOAuth(t, err, "invalid_grant")
	})
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	a := f.app(Confidential)
	b := f.app(Public)

	for _, which := range []string{"access", "refresh"} {
		t.Run("by "+which+" token", func(t *testing.T) {
			tr := f.tokens(a, "")
			tr2, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, "") // two generations in the grant
			if err != nil {
				t.Fatal(err)
			}
			wantVerify(t, v, tr.AccessToken, "")
			wantVerify(t, v, tr2.AccessToken, "")
			tok := tr2.AccessToken
			if which == "refresh" {
				tok = tr2.RefreshToken
			}
			if err := f.svc.Revoke(f.ctx, a.c, tok); err != nil {
				t.Fatal(err)
			}
			wantVerify(t, v, tr.AccessToken, nexus.CodeTokenRevoked)
			wantVerify(t, v, tr2.AccessToken, nexus.CodeTokenRevoked)
			_, err = f.svc.Refresh(f.ctx, a.c, tr2.RefreshToken, "")
			wantOAuth(t, err, "invalid_grant")
			for _, tok := range []string{tr2.AccessToken, tr2.RefreshToken} {
				if in, _ := f.svc.Introspect(f.ctx, tok, ""); in.Active {
					t.Fatal("revoked token is active")
				}
			}
			// Revoking again is fine (RFC 7009 §2.2).
			if err := f.svc.Revoke(f.ctx, a.c, tok); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("another client's token is ignored", func(t *testing.T) {
		tr := f.tokens(a, "")
		for _, tok := range []string{tr.AccessToken, tr.RefreshToken} {
			if err := f.svc.Revoke(f.ctx, b.c, tok); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		}
		wantVerify(t, v, tr.AccessToken, "")
		if in, _ := f.svc.Introspect(f.ctx, tr.AccessToken, ""); !in.Active {
			t.Fatal("token revoked by another client")
		}
		if _, err := f.svc.Refresh(f.ctx, a.c, tr.RefreshToken, ""); err != nil {
			t.Fatalf("refresh after another client's revoke: %v", err)
		}
	})

	t.Run("unknown token", func(t *testing.T) {
		for _, tok := range []string{"", "garbage", credential.MustNew("test", credential.KindAccessToken)} {
			if err := f.svc.Revoke(f.ctx, a.c, tok); err != nil {
				t.Fatalf("Revoke(%q) = %v", tok, err)
			}
		}
	})
}

// Introspection answers alike from the database and from the verifier's
// cache.
func TestIntrospect(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{false, true} {
		name := "database"
		if cached {
			name = "verifier cache"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testIntrospect(t, cached)
		})
	}
}

func testIntrospect(t *testing.T, cached bool) {
	f := newFx(t)
	if cached {
		f.verifier()
	}
	a := f.app(Confidential)
	b := f.app(Confidential)
	tr := f.tokens(a, "read:balances read:funding")
	before := time.Now()

	in, err := f.svc.Introspect(f.ctx, tr.AccessToken, "")
	if err != nil {
		t.Fatal(err)
	}
	if !in.Active || in.Scope != "read:balances read:funding" || in.ClientID != a.v.ID || in.TokenType != "Bearer" ||
		in.Sub != f.user.ID || in.Environment != "test" || !strings.HasPrefix(in.GrantID, "grt_") {
		t.Fatalf("introspection = %+v", in)
	}
	if exp := time.Unix(in.Exp, 0); exp.Before(before.Add(AccessTokenTTL-time.Minute)) || exp.After(before.Add(AccessTokenTTL+time.Minute)) {
		t.Fatalf("exp %v, want about now + 1h", exp)
	}
	if in.Iat > in.Exp || in.Iat < before.Add(-time.Minute).Unix() {
		t.Fatalf("iat %d exp %d", in.Iat, in.Exp)
	}
	if own, err := f.svc.Introspect(f.ctx, tr.AccessToken, a.v.ID); err != nil || !own.Active {
		t.Fatalf("owner's introspection = %+v %v", own, err)
	}
	rt, err := f.svc.Introspect(f.ctx, tr.RefreshToken, a.v.ID)
	if err != nil || !rt.Active || rt.ClientID != a.v.ID || rt.TokenType == "Bearer" {
		t.Fatalf("refresh token introspection = %+v %v", rt, err)
	}
	if exp := time.Unix(rt.Exp, 0); exp.Before(before.Add(RefreshTokenTTL - time.Minute)) {
		t.Fatalf("refresh exp %v, want about now + 30 days", exp)
	}

	expired := f.tokens(a, "")
	f.setExpiry("oauth_tokens", "token_hash", credential.DigestHex(expired.AccessToken), store.Now().Add(-time.Second))
	revoked := f.tokens(a, "")
	if err := f.svc.Revoke(f.ctx, a.c, revoked.AccessToken); err != nil {
		t.Fatal(err)
	}

	inactive := []struct{ name, tok, owner string }{
		{"another client asks", tr.AccessToken, b.v.ID},
		{"another client asks (refresh)", tr.RefreshToken, b.v.ID},
		{"expired", expired.AccessToken, ""},
		{"revoked", revoked.AccessToken, ""},
		{"revoked refresh", revoked.RefreshToken, a.v.ID},
		{"unknown", credential.MustNew("test", credential.KindAccessToken), ""},
		{"garbage", "garbage", ""},
		{"empty", "", ""},
		{"digest as token", credential.DigestHex(tr.AccessToken), ""},
	}
	for _, tc := range inactive {
		t.Run(tc.name, func(t *testing.T) {
			in, err := f.svc.Introspect(f.ctx, tc.tok, tc.owner)
			if err != nil {
				t.Fatal(err)
			}
			if *in != (Introspection{}) {
				t.Fatalf("introspection = %+v, want only active=false", in)
			}
		})
	}
}

// Introspection from the verifier's cache: the cache answers (a change
// behind the service's back is not seen until its topic is dropped), and
// every change the service makes shows at once.
func TestIntrospectCached(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	a := f.app(Confidential)
	active := func(tok string) bool {
		t.Helper()
		in, err := f.svc.Introspect(f.ctx, tok, "")
		if err != nil {
			t.Fatal(err)
		}
		return in.Active
	}
	tr := f.tokens(a, "")
	grant := f.grantID(tr.AccessToken)
	if _, err := f.cross("revokes a grant unannounced").Update((*Grant)(nil)).Set("status = ?", GrantRevoked).
		Where("id = ?", grant).Exec(f.ctx); err != nil {
		t.Fatal(err)
	}
	if !active(tr.AccessToken) {
		t.Fatal("introspection read the database: want the cached answer until the grant's topic")
	}
	v.Drop(store.TopicKey(grant))
	if active(tr.AccessToken) {
		t.Fatal("revoked grant's token active after its topic was dropped")
	}

	t.Run("revoked grant", func(t *testing.T) {
		tr := f.tokens(a, "")
		if !active(tr.AccessToken) {
			t.Fatal("new token inactive")
		}
		if _, err := f.svc.RevokeGrant(f.ctx, tenant(f.user, nexus.Test), f.grantID(tr.AccessToken)); err != nil {
			t.Fatal(err)
		}
		if active(tr.AccessToken) {
			t.Fatal("token of a revoked grant still active")
		}
	})
	t.Run("revoked token", func(t *testing.T) {
		tr := f.tokens(a, "")
		if !active(tr.AccessToken) {
			t.Fatal("new token inactive")
		}
		if err := f.svc.Revoke(f.ctx, a.c, tr.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if active(tr.AccessToken) {
			t.Fatal("revoked token still active")
		}
	})
	t.Run("client disabled, enabled", func(t *testing.T) {
		tr := f.tokens(a, "")
		if !active(tr.AccessToken) {
			t.Fatal("new token inactive")
		}
		if _, err := f.svc.DisableClient(f.ctx, tenant(f.dev, nexus.Test), a.v.ID); err != nil {
			t.Fatal(err)
		}
		if active(tr.AccessToken) {
			t.Fatal("token of a disabled client still active")
		}
		if _, err := f.svc.EnableClient(f.ctx, tenant(f.dev, nexus.Test), a.v.ID); err != nil {
			t.Fatal(err)
		}
		if !active(tr.AccessToken) {
			t.Fatal("token inactive after its client was enabled")
		}
	})
	t.Run("expiry while cached", func(t *testing.T) {
		tr := f.tokens(a, "")
		if !active(tr.AccessToken) {
			t.Fatal("new token inactive")
		}
		f.advance(AccessTokenTTL)
		defer f.advance(-AccessTokenTTL)
		if active(tr.AccessToken) {
			t.Fatal("expired token active")
		}
	})
}
