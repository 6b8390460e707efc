package oauth

import (
	"slices"
	"strings"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

func TestCreateClientTypes(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	for _, env := range []nexus.Environment{nexus.Test, nexus.Live} {
		conf := f.newClient(Confidential, env, []string{appRedirect}, "read:balances")
		if conf.Object != "oauth_client" || conf.ID != conf.ClientID || !strings.HasPrefix(conf.ID, "cli_") ||
			conf.Environment != env || conf.Type != Confidential || conf.Status != "active" || conf.DeletedAt != nil {
			t.Fatalf("confidential view = %+v", conf)
		}
		wantCred(t, conf.ClientSecret, string(env), credential.KindClientSecret)
		row := f.row(conf.ID)
		if row.SecretHash == nil || *row.SecretHash != credential.DigestHex(conf.ClientSecret) {
			t.Fatalf("stored secret hash %v, want the digest only", row.SecretHash)
		}

		pub := f.newClient(Public, env, []string{appRedirect}, "read:balances")
		if pub.ClientSecret != "" || pub.Type != Public {
			t.Fatalf("public view = %+v", pub)
		}
		if f.row(pub.ID).SecretHash != nil {
			t.Fatal("public client has a stored secret")
		}

		got, err := f.svc.GetClient(f.ctx, tenant(f.dev, env), conf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ClientSecret != "" {
			t.Fatal("GetClient shows the secret again")
		}
		if !slices.Equal(got.RedirectURIs, []string{appRedirect}) || !slices.Equal(got.Scopes, []string{"read:balances"}) {
			t.Fatalf("GetClient = %+v", got)
		}
	}
	if _, err := credential.Parse(f.newClient(Confidential, nexus.Live, []string{appRedirect}, "read").ClientSecret); err != nil {
		t.Fatal(err)
	}
}

func TestCreateClientRedirectURIs(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	good := "https://ok.example.com/cb"
	cases := []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/callback", true},
		{"https://app.example.com:8443/cb?x=1", true},
		{"http://localhost/cb", true},
		{"http://localhost:8080/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:53682/cb", true},
		{"http://example.com/cb", false},
		{"http://localhost.evil.com/cb", false},
		{"http://127.0.0.1.nip.io/cb", false},
		{"http://[::1]/cb", false}, // CONTRACT §7: localhost / 127.0.0.1 only
		{"https://app.example.com/cb#frag", false},
		{"https://app.example.com/cb#", false},
		{"/cb", false},
		{"cb", false},
		{"//app.example.com/cb", false},
		{"", false},
		{"https:///cb", false},
		{"https:app.example.com", false},
		{"https://user:pw@app.example.com/cb", false},
		{"ftp://app.example.com/cb", false},
		{"javascript:alert(1)", false},
		{"com.example.app:/cb", false},
	}
	for _, tc := range cases {
		t.Run(tc.uri, func(t *testing.T) {
			// The bad URI is second, so the parameter names its index.
			v, err := f.svc.CreateClient(f.ctx, tenant(f.dev, nexus.Test), CreateClientParams{
				Name: "x", Type: Public, RedirectURIs: []string{good, tc.uri}, Scopes: []string{"read"}})
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !slices.Equal(v.RedirectURIs, []string{good, tc.uri}) {
					t.Fatalf("stored %v", v.RedirectURIs)
				}
				return
			}
			if err == nil && tc.uri == "https://app.example.com/cb#" {
				t.Fatal("regression: clients.go:137 checkRedirectURI accepts an empty fragment (\"…/cb#\"): url.Parse leaves Fragment empty; RFC 6749 §3.1.2 forbids any fragment component — also refuse strings.Contains(raw, \"#\")")
			}
			e := wantNexus(t, err, nexus.CodeParameterInvalid)
			if e.Param != "redirect_uris[1]" {
				t.Fatalf("param %q, want redirect_uris[1]", e.Param)
			}
		})
	}
}

func TestCreateClientScopes(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	cases := []struct {
		scopes []string
		want   []string // nil: refused with invalid_scopes
	}{
		{[]string{"read"}, []string{"read:addresses", "read:balances", "read:funding", "read:requests", "read:usage"}},
		{[]string{"write"}, []string{"read:addresses", "read:balances", "read:funding", "read:requests", "read:usage", "write:addresses", "write:requests"}},
		{[]string{"read:balances", "write:addresses"}, []string{"read:balances", "write:addresses"}},
		{[]string{"read:balances", "read:balances"}, []string{"read:balances"}},
		{[]string{"admin"}, nil},
		{[]string{"admin:all"}, nil},
		{[]string{"read", "admin:all"}, nil},
		{[]string{"internal"}, nil},
		{[]string{"internal:funding"}, nil},
		{[]string{"internal:requests", "read"}, nil},
		{[]string{"read:everything"}, nil},
		{[]string{"READ:BALANCES"}, nil},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.scopes, "+"), func(t *testing.T) {
			v, err := f.svc.CreateClient(f.ctx, tenant(f.dev, nexus.Test), CreateClientParams{
				Name: "x", Type: Confidential, RedirectURIs: []string{appRedirect}, Scopes: tc.scopes})
			if tc.want == nil {
				e := wantNexus(t, err, nexus.CodeInvalidScopes)
				if e.Param != "scopes" {
					t.Fatalf("param %q", e.Param)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(v.Scopes, tc.want) {
				t.Fatalf("scopes %v, want %v", v.Scopes, tc.want)
			}
		})
	}
}

func TestAuthenticateClient(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	conf := f.newClient(Confidential, nexus.Test, []string{appRedirect}, "read")
	other := f.newClient(Confidential, nexus.Test, []string{appRedirect}, "read")
	pub := f.newClient(Public, nexus.Test, []string{appRedirect}, "read")
	gone := f.newClient(Confidential, nexus.Test, []string{appRedirect}, "read")
	if _, err := f.svc.DeleteClient(f.ctx, tenant(f.dev, nexus.Test), gone.ID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		a    ClientAuth
		ok   bool
	}{
		{"confidential basic", ClientAuth{ID: conf.ID, Secret: conf.ClientSecret, Basic: true}, true},
		{"confidential post", ClientAuth{ID: conf.ID, Secret: conf.ClientSecret}, true},
		{"confidential wrong secret", ClientAuth{ID: conf.ID, Secret: credential.MustNew("test", credential.KindClientSecret)}, false},
		{"confidential other client's secret", ClientAuth{ID: conf.ID, Secret: other.ClientSecret}, false},
		{"confidential secret digest", ClientAuth{ID: conf.ID, Secret: credential.DigestHex(conf.ClientSecret)}, false},
		{"confidential missing secret", ClientAuth{ID: conf.ID}, false},
		{"public none", ClientAuth{ID: pub.ID}, true},
		{"public with a secret", ClientAuth{ID: pub.ID, Secret: conf.ClientSecret}, false},
		{"public with basic secret", ClientAuth{ID: pub.ID, Secret: "x", Basic: true}, false},
		{"unknown client", ClientAuth{ID: "cli_unknown", Secret: conf.ClientSecret}, false},
		{"no client id", ClientAuth{Secret: conf.ClientSecret}, false},
		// The database cannot compare these: unknown, not an error.
		{"client id with NUL", ClientAuth{ID: conf.ID[:10] + "\x00" + conf.ID[11:], Secret: conf.ClientSecret}, false},
		{"client id not UTF-8", ClientAuth{ID: conf.ID[:10] + "\xff" + conf.ID[11:], Secret: conf.ClientSecret}, false},
		{"deleted client", ClientAuth{ID: gone.ID, Secret: gone.ClientSecret}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.svc.AuthenticateClient(f.ctx, tc.a)
			if tc.ok {
				if err != nil || c == nil || c.ID != tc.a.ID {
					t.Fatalf("= %+v, %v", c, err)
				}
				return
			}
			if c != nil {
				t.Fatalf("authenticated as %s", c.ID)
			}
			wantOAuth(t, err, "invalid_client")
		})
	}
}

func TestClientTenantIsolation(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	a := f.app(Confidential)
	for _, tt := range []nexus.Tenant{tenant(f.user, nexus.Test), tenant(f.dev, nexus.Live)} {
		if _, err := f.svc.GetClient(f.ctx, tt, a.v.ID); err == nil {
			t.Fatalf("GetClient from %+v succeeded", tt)
		} else {
			wantNexus(t, err, nexus.CodeResourceMissing)
		}
		if _, err := f.svc.DeleteClient(f.ctx, tt, a.v.ID); err == nil {
			t.Fatalf("DeleteClient from %+v succeeded", tt)
		} else {
			wantNexus(t, err, nexus.CodeResourceMissing)
		}
		l, _, err := f.svc.ListClients(f.ctx, tt, store.Page{})
		if err != nil || len(l) != 0 {
			t.Fatalf("ListClients from %+v = %d, %v", tt, len(l), err)
		}
	}
	if _, err := f.svc.GetClient(f.ctx, tenant(f.dev, nexus.Test), "cli_nope"); err == nil {
		t.Fatal("GetClient of an unknown id succeeded")
	} else {
		wantNexus(t, err, nexus.CodeResourceMissing)
	}
	// The refused deletes changed nothing.
	if _, err := f.svc.AuthenticateClient(f.ctx, ClientAuth{ID: a.v.ID, Secret: a.v.ClientSecret}); err != nil {
		t.Fatalf("client unusable after a refused delete: %v", err)
	}
	l, more, err := f.svc.ListClients(f.ctx, tenant(f.dev, nexus.Test), store.Page{})
	if err != nil || more || len(l) != 1 || l[0].ID != a.v.ID || l[0].ClientSecret != "" {
		t.Fatalf("ListClients = %+v %v %v", l, more, err)
	}
}

func TestDeleteClient(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	topics := f.topics()
	a := f.app(Confidential)
	b := f.app(Confidential) // unaffected
	tr1 := f.tokens(a, "")
	tr2 := f.tokens(a, "read:balances") // a second grant of the same client
	trB := f.tokens(b, "")
	pendingCode, pendingVerifier := f.code(a, "")
	for _, tok := range []string{tr1.AccessToken, tr2.AccessToken, trB.AccessToken} {
		wantVerify(t, v, tok, "") // now cached
	}

	dv, err := f.svc.DeleteClient(f.ctx, tenant(f.dev, nexus.Test), a.v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if dv.Status != "deleted" || dv.DeletedAt == nil || dv.ClientSecret != "" {
		t.Fatalf("deleted view = %+v", dv)
	}
	if got := topics(); !slices.Contains(got, store.TopicKey(a.v.ID)) {
		t.Fatalf("published %v, want %s", got, store.TopicKey(a.v.ID))
	}
	// The cached entries were dropped through OnLocalPublish, not by hand.
	wantVerify(t, v, tr1.AccessToken, nexus.CodeTokenRevoked)
	wantVerify(t, v, tr2.AccessToken, nexus.CodeTokenRevoked)
	wantVerify(t, v, trB.AccessToken, "")
	for _, tok := range []string{tr1.AccessToken, tr1.RefreshToken, tr2.AccessToken} {
		if in, err := f.svc.Introspect(f.ctx, tok, ""); err != nil || in.Active {
			t.Fatalf("Introspect after delete = %+v, %v", in, err)
		}
	}
	// The client can no longer authenticate, authorize, or redeem a code.
	if _, err := f.svc.AuthenticateClient(f.ctx, ClientAuth{ID: a.v.ID, Secret: a.v.ClientSecret}); err == nil {
		t.Fatal("deleted client authenticated")
	}
	_, verr := f.svc.ValidateAuthorize(f.ctx, authQuery(a, s256(pendingVerifier), ""))
	if _, ok := verr.(*FatalError); !ok {
		t.Fatalf("authorize for a deleted client: %v, want *FatalError", verr)
	}
	_, err = f.svc.ExchangeCode(f.ctx, a.c, pendingCode, appRedirect, pendingVerifier)
	wantOAuth(t, err, "invalid_grant")

	gs, _, err := f.svc.ListGrants(f.ctx, tenant(f.user, nexus.Test), store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		want := "revoked"
		if g.ClientID == b.v.ID {
			want = "active"
		}
		if g.Status != want {
			t.Fatalf("grant %s of %s: %s, want %s", g.ID, g.ClientID, g.Status, want)
		}
	}

	_, err = f.svc.DeleteClient(f.ctx, tenant(f.dev, nexus.Test), a.v.ID)
	wantNexus(t, err, nexus.CodeInvalidState)
	if got, err := f.svc.GetClient(f.ctx, tenant(f.dev, nexus.Test), a.v.ID); err != nil || got.Status != "deleted" {
		t.Fatalf("GetClient after delete = %+v, %v", got, err)
	}
}

func TestGrantsListAndRevoke(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	topics := f.topics()
	a := f.app(Confidential)
	b := f.app(Public)
	trA := f.tokens(a, "read:balances")
	trB := f.tokens(b, "")
	wantVerify(t, v, trA.AccessToken, "")
	wantVerify(t, v, trB.AccessToken, "")

	ut := tenant(f.user, nexus.Test)
	gs, more, err := f.svc.ListGrants(f.ctx, ut, store.Page{})
	if err != nil || more || len(gs) != 2 {
		t.Fatalf("ListGrants = %d %v %v", len(gs), more, err)
	}
	byClient := map[string]*GrantView{}
	for _, g := range gs {
		byClient[g.ClientID] = g
	}
	gA := byClient[a.v.ID]
	if gA == nil || gA.Object != "oauth_grant" || gA.ClientName != a.v.Name || gA.Status != "active" ||
		gA.Environment != nexus.Test || !slices.Equal(gA.Scopes, []string{"read:balances"}) || gA.RevokedAt != nil {
		t.Fatalf("grant of a = %+v", gA)
	}
	if byClient[b.v.ID] == nil || byClient[b.v.ID].ClientName != b.v.Name {
		t.Fatalf("grant of b = %+v", byClient[b.v.ID])
	}
	if gA.ID != f.grantID(trA.AccessToken) {
		t.Fatal("the token's grant is not the listed one")
	}
	// The grant lives with the consenting partner, not the app's owner.
	for _, tt := range []nexus.Tenant{tenant(f.dev, nexus.Test), tenant(f.user, nexus.Live)} {
		if l, _, err := f.svc.ListGrants(f.ctx, tt, store.Page{}); err != nil || len(l) != 0 {
			t.Fatalf("ListGrants(%+v) = %d, %v", tt, len(l), err)
		}
	}

	// Another partner (the app's owner included) cannot revoke it.
	for _, tt := range []nexus.Tenant{tenant(f.dev, nexus.Test), tenant(f.user, nexus.Live)} {
		_, err := f.svc.RevokeGrant(f.ctx, tt, gA.ID)
		wantNexus(t, err, nexus.CodeResourceMissing)
	}
	_, err = f.svc.RevokeGrant(f.ctx, ut, "grt_unknown")
	wantNexus(t, err, nexus.CodeResourceMissing)
	if in, _ := f.svc.Introspect(f.ctx, trA.AccessToken, ""); !in.Active {
		t.Fatal("a refused RevokeGrant revoked the tokens")
	}
	if _, err := f.svc.Refresh(f.ctx, a.c, trA.RefreshToken, ""); err != nil {
		t.Fatalf("refresh after a refused RevokeGrant: %v", err)
	}
	gA2 := f.grantID(trA.AccessToken)

	rv, err := f.svc.RevokeGrant(f.ctx, ut, gA2)
	if err != nil {
		t.Fatal(err)
	}
	if rv.Status != "revoked" || rv.RevokedAt == nil || rv.ClientName != a.v.Name {
		t.Fatalf("revoked view = %+v", rv)
	}
	if got := topics(); !slices.Contains(got, store.TopicKey(gA2)) {
		t.Fatalf("published %v, want %s", got, store.TopicKey(gA2))
	}
	wantVerify(t, v, trA.AccessToken, nexus.CodeTokenRevoked)
	wantVerify(t, v, trB.AccessToken, "")
	if in, _ := f.svc.Introspect(f.ctx, trA.AccessToken, ""); in.Active {
		t.Fatal("revoked grant's token is active")
	}

	_, err = f.svc.RevokeGrant(f.ctx, ut, gA2)
	wantNexus(t, err, nexus.CodeInvalidState)

	gs, _, _ = f.svc.ListGrants(f.ctx, ut, store.Page{})
	for _, g := range gs {
		if (g.ID == gA2) != (g.Status == "revoked") {
			t.Fatalf("grant %+v", g)
		}
	}
}

// The HTTP layer validates type (oneof=confidential public); the service
// must still fail closed for anything else.
func TestClientUnknownTypeFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v, err := f.svc.CreateClient(f.ctx, tenant(f.dev, nexus.Test), CreateClientParams{
		Name: "x", Type: "", RedirectURIs: []string{appRedirect}, Scopes: []string{"read"}})
	if err != nil {
		return // refused at creation: closed
	}
	if c, err := f.svc.AuthenticateClient(f.ctx, ClientAuth{ID: v.ID}); err == nil && c != nil {
		t.Fatal("regression: flow_token.go:66-80 AuthenticateClient has no default case: a client whose type is neither confidential nor public (CreateClient does not check p.Type, clients.go:89) authenticates with no secret; fix: default → invalid_client, and refuse other types in CreateClient")
	}
}
