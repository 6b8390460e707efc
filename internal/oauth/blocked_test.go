package oauth

import (
	"errors"
	"slices"
	"testing"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// wantBlocked asserts that client a takes part in no flow: the authorization
// page refuses it without redirecting, the token endpoint refuses its code
// and refresh token (the code stays unspent), its access token is refused
// with code, and introspection calls both tokens inactive.
func (f *fx) wantBlocked(t *testing.T, v *Verifier, a *app, code, verifier string, tr *TokenResponse, tokenCode nexus.Code) {
	t.Helper()
	_, challenge := pkce()
	r, err := f.svc.ValidateAuthorize(f.ctx, authQuery(a, challenge, ""))
	var fe *FatalError
	if !errors.As(err, &fe) || r != nil {
		t.Fatalf("authorize: (%+v, %v), want a *FatalError and nothing to redirect to", r, err)
	}
	c := f.row(a.v.ID) // as the token endpoint reads it
	_, err = f.svc.ExchangeCode(f.ctx, c, code, appRedirect, verifier)
	wantOAuth(t, err, "invalid_client")
	_, err = f.svc.Refresh(f.ctx, c, tr.RefreshToken, "")
	wantOAuth(t, err, "invalid_client")
	wantVerify(t, v, tr.AccessToken, tokenCode)
	for _, tok := range []string{tr.AccessToken, tr.RefreshToken} {
		for _, owner := range []string{"", a.v.ID} {
			if in, err := f.svc.Introspect(f.ctx, tok, owner); err != nil || in.Active || *in != (Introspection{}) {
				t.Fatalf("introspect (owner %q): %+v, %v; want exactly inactive", owner, in, err)
			}
		}
	}
}

// wantWorks asserts that client a's tokens, refresh and codes work.
func (f *fx) wantWorks(t *testing.T, v *Verifier, a *app, tr *TokenResponse) *TokenResponse {
	t.Helper()
	wantVerify(t, v, tr.AccessToken, "")
	if in, err := f.svc.Introspect(f.ctx, tr.AccessToken, a.v.ID); err != nil || !in.Active {
		t.Fatalf("introspect: %+v, %v; want active", in, err)
	}
	fresh, err := f.svc.Refresh(f.ctx, f.row(a.v.ID), tr.RefreshToken, "")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	wantVerify(t, v, fresh.AccessToken, "")
	return fresh
}

// An app whose owner becomes inactive or rejected stops at once: no
// consent, no code exchange, no refresh, its tokens refused, introspection
// inactive. Reactivating the owner restores the grants that were not
// revoked meanwhile (CONTRACT §1 applied to the app's owner).
func TestClientOwnerNotApproved(t *testing.T) {
	t.Parallel()
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		for _, status := range []nexus.PartnerStatus{nexus.PartnerInactive, nexus.PartnerRejected} {
			t.Run(string(status), func(t *testing.T) {
				f := newFxOn(t, db)
				v := f.verifier()
				a := f.app(Confidential)
				tr := f.tokens(a, "")
				doomed := f.tokens(a, "")
				code, verifier := f.code(a, "")
				wantVerify(t, v, tr.AccessToken, "") // cached now

				if _, err := f.partners.SetStatus(f.ctx, f.dev.ID, status); err != nil {
					t.Fatal(err)
				}
				f.wantBlocked(t, v, a, code, verifier, tr, nexus.CodeInvalidToken)
				// Revoking still works while blocked, and stays revoked.
				if err := f.svc.Revoke(f.ctx, f.row(a.v.ID), doomed.AccessToken); err != nil {
					t.Fatal(err)
				}

				if _, err := f.partners.SetStatus(f.ctx, f.dev.ID, nexus.PartnerApproved); err != nil {
					t.Fatal(err)
				}
				f.wantWorks(t, v, a, tr)
				if _, err := f.svc.ExchangeCode(f.ctx, f.row(a.v.ID), code, appRedirect, verifier); err != nil {
					t.Fatalf("the code kept while the owner was blocked: %v", err)
				}
				wantVerify(t, v, doomed.AccessToken, nexus.CodeTokenRevoked)
			})
		}

		// A pending owner may use test only: its test app keeps working,
		// its live app stops.
		t.Run("pending", func(t *testing.T) {
			f := newFxOn(t, db)
			v := f.verifier()
			a := f.app(Confidential)
			tr := f.tokens(a, "")
			lv := f.newClient(Confidential, nexus.Live, []string{appRedirect}, "read:balances")
			live := &app{v: lv, c: f.row(lv.ID)}
			ltr := f.tokens(live, "")
			lcode, lverifier := f.code(live, "")
			wantVerify(t, v, ltr.AccessToken, "")
			if _, err := f.partners.SetStatus(f.ctx, f.dev.ID, nexus.PartnerPending); err != nil {
				t.Fatal(err)
			}
			f.wantWorks(t, v, a, tr)
			f.wantBlocked(t, v, live, lcode, lverifier, ltr, nexus.CodeInvalidToken)
		})
	})
}

// An operator disables one app and enables it again; deleting a disabled
// app revokes its tokens for good. Every change is conditional, audited and
// announced on the client's topic.
func TestDisableEnableClient(t *testing.T) {
	t.Parallel()
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFxOn(t, db)
		v := f.verifier()
		topics := f.topics()
		a := f.app(Public)
		other := f.app(Public)
		tr, otr := f.tokens(a, ""), f.tokens(other, "")
		code, verifier := f.code(a, "")
		wantVerify(t, v, tr.AccessToken, "")
		devTest := tenant(f.dev, nexus.Test)

		// The operator's door finds the client's tenant; no other tenant
		// may touch it.
		got, err := f.svc.ClientTenant(f.ctx, a.v.ID)
		if err != nil || got != devTest {
			t.Fatalf("ClientTenant = %+v, %v; want %+v", got, err, devTest)
		}
		_, err = f.svc.ClientTenant(f.ctx, "cli_unknown")
		wantNexus(t, err, nexus.CodeResourceMissing)
		for _, wrong := range []nexus.Tenant{tenant(f.user, nexus.Test), tenant(f.dev, nexus.Live)} {
			_, err := f.svc.DisableClient(f.ctx, wrong, a.v.ID)
			wantNexus(t, err, nexus.CodeResourceMissing)
		}

		cv, err := f.svc.DisableClient(f.ctx, devTest, a.v.ID)
		if err != nil || cv.Status != ClientDisabled || cv.ID != a.v.ID {
			t.Fatalf("DisableClient = %+v, %v", cv, err)
		}
		if !slices.Contains(topics(), store.TopicKey(a.v.ID)) {
			t.Errorf("disabling published %v, want the client's topic", topics())
		}
		f.wantBlocked(t, v, a, code, verifier, tr, nexus.CodeInvalidToken)
		f.wantWorks(t, v, other, otr) // another app of the same owner
		_, err = f.svc.DisableClient(f.ctx, devTest, a.v.ID)
		wantNexus(t, err, nexus.CodeInvalidState)
		if g, _ := f.svc.GetClient(f.ctx, devTest, a.v.ID); g == nil || g.Status != ClientDisabled {
			t.Errorf("GET shows %+v, want status disabled", g)
		}

		cv, err = f.svc.EnableClient(f.ctx, devTest, a.v.ID)
		if err != nil || cv.Status != ClientActive {
			t.Fatalf("EnableClient = %+v, %v", cv, err)
		}
		tr = f.wantWorks(t, v, a, tr)
		_, err = f.svc.EnableClient(f.ctx, devTest, a.v.ID)
		wantNexus(t, err, nexus.CodeInvalidState)

		// A disabled client can be deleted; its tokens are then revoked and
		// there is nothing to enable.
		if _, err := f.svc.DisableClient(f.ctx, devTest, a.v.ID); err != nil {
			t.Fatal(err)
		}
		if cv, err = f.svc.DeleteClient(f.ctx, devTest, a.v.ID); err != nil || cv.Status != ClientDeleted || cv.DeletedAt == nil {
			t.Fatalf("DeleteClient of a disabled client = %+v, %v", cv, err)
		}
		wantVerify(t, v, tr.AccessToken, nexus.CodeTokenRevoked)
		_, err = f.svc.EnableClient(f.ctx, devTest, a.v.ID)
		wantNexus(t, err, nexus.CodeInvalidState)

		events, _, err := audit.NewReader(f.db).List(f.ctx, devTest, audit.ListParams{Page: store.Page{Limit: 100}})
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range events {
			if e.ObjectID == a.v.ID {
				types = append(types, e.Type)
			}
		}
		for _, want := range []string{"oauth_client.disabled", "oauth_client.enabled", "oauth_client.deleted"} {
			if !slices.Contains(types, want) {
				t.Errorf("audit events of the client %v lack %s", types, want)
			}
		}

		// The operator's list: every partner's clients, or one partner's.
		all, err := f.svc.AllClients(f.ctx, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("AllClients = %d clients, %v; want 2", len(all), err)
		}
		for _, c := range all {
			if c.PartnerID != f.dev.ID || c.ClientView == nil {
				t.Errorf("AllClients: %+v", c)
			}
		}
		if none, err := f.svc.AllClients(f.ctx, f.user.ID); err != nil || len(none) != 0 {
			t.Errorf("AllClients of a partner without clients = %+v, %v", none, err)
		}
	})
}

// A test-only deployment issues nothing live: a live client gets no
// consent page, no grant, no code exchange, no refresh, and its tokens are
// inactive; test clients work as before.
func TestEnvironmentNotServed(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	lv := f.newClient(Confidential, nexus.Live, []string{appRedirect}, "read:balances")
	live := &app{v: lv, c: f.row(lv.ID)}
	ltr := f.tokens(live, "") // issued while live was served
	lcode, lverifier := f.code(live, "")
	test := f.app(Confidential)
	ttr := f.tokens(test, "")

	f.svc = New(f.db, Config{Environments: []nexus.Environment{nexus.Test}})
	v := f.verifier()
	// The verifier leaves the environment to the authenticator (403
	// environment_not_served); everything that issues refuses here.
	_, challenge := pkce()
	r, err := f.svc.ValidateAuthorize(f.ctx, authQuery(live, challenge, ""))
	var fe *FatalError
	if !errors.As(err, &fe) || r != nil {
		t.Fatalf("authorize a live client: (%+v, %v), want a *FatalError", r, err)
	}
	// Even a request validated before (by an instance serving live) gets
	// no grant here.
	old := NewService(f.db)
	if r, err = old.ValidateAuthorize(f.ctx, authQuery(live, challenge, "")); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Approve(f.ctx, f.sess, r, nexus.PartnerApproved)
	wantOAuth(t, err, "access_denied")
	_, err = f.svc.ExchangeCode(f.ctx, f.row(live.v.ID), lcode, appRedirect, lverifier)
	wantOAuth(t, err, "invalid_client")
	_, err = f.svc.Refresh(f.ctx, f.row(live.v.ID), ltr.RefreshToken, "")
	wantOAuth(t, err, "invalid_client")
	if in, err := f.svc.Introspect(f.ctx, ltr.AccessToken, ""); err != nil || in.Active {
		t.Fatalf("introspect a live token: %+v, %v", in, err)
	}
	f.wantWorks(t, v, test, ttr)
	f.tokens(test, "")
}
