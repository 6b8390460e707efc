package oauth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

func TestVerifierUnknown(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	a := f.app(Public)
	tr := f.tokens(a, "")
	for _, tok := range []string{
		"",
		"garbage",
		credential.MustNew("test", credential.KindAccessToken),
		credential.MustNew("live", credential.KindAccessToken),
		tr.RefreshToken, // a refresh token is not a bearer token
		credential.DigestHex(tr.AccessToken),
		a.v.ID,
	} {
		wantVerify(t, v, tok, nexus.CodeInvalidToken)
	}
	// An unknown answer is not cached: a token that appears later works.
	wantVerify(t, v, tr.AccessToken, "")
}

// The verifier serves cached principals until an invalidation drops them;
// revocation in the database alone does not reach a cached entry.
func TestVerifierCacheUntilDrop(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := NewVerifier(f.svc, f.partners) // not subscribed: drops are by hand here
	a := f.app(Confidential)
	b := f.app(Confidential)

	type tokens struct{ at, grant string }
	mint := func(a *app) tokens {
		tr := f.tokens(a, "")
		return tokens{tr.AccessToken, f.grantID(tr.AccessToken)}
	}
	revoke := func(grant string) {
		t.Helper()
		if _, err := f.svc.RevokeGrant(f.ctx, tenant(f.user, nexus.Test), grant); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name string
		// topic that evicts the entry, given the grant and client
		topic func(grant, client string) string
	}{
		{"grant topic", func(g, _ string) string { return store.TopicKey(g) }},
		{"client topic", func(_, c string) string { return store.TopicKey(c) }},
		{"partner topic", func(_, _ string) string { return store.TopicPartner(f.user.ID) }},
		{"client owner's partner topic", func(_, _ string) string { return store.TopicPartner(f.dev.ID) }},
		{"all", func(_, _ string) string { return store.TopicAll }},
		{"unknown kind clears everything", func(_, _ string) string { return "something:else" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, other := mint(a), mint(b)
			p1 := wantVerify(t, v, tk.at, "")
			wantVerify(t, v, other.at, "")
			revoke(tk.grant)
			revoke(other.grant)
			p2 := wantVerify(t, v, tk.at, "") // still cached
			if p1 != p2 {
				t.Fatal("second Verify did not come from the cache")
			}
			// Unrelated topics do not evict it.
			for _, topic := range []string{store.TopicKey("grt_other"), store.TopicKey("cli_other"), store.TopicPartner("ptr_other")} {
				v.Drop(topic)
				wantVerify(t, v, tk.at, "")
			}
			topic := tc.topic(tk.grant, a.v.ID)
			v.Drop(topic)
			wantVerify(t, v, tk.at, nexus.CodeTokenRevoked)
			// A grant or client topic is selective; the others are not.
			if topic == store.TopicKey(tk.grant) || topic == store.TopicKey(a.v.ID) {
				wantVerify(t, v, other.at, "")
			} else {
				wantVerify(t, v, other.at, nexus.CodeTokenRevoked)
			}
		})
	}
}

func TestVerifierExpired(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := NewVerifier(f.svc, f.partners)
	a := f.app(Public)
	tr := f.tokens(a, "")
	grant := f.grantID(tr.AccessToken)
	wantVerify(t, v, tr.AccessToken, "")

	f.setExpiry("oauth_tokens", "token_hash", credential.DigestHex(tr.AccessToken), store.Now().Add(-time.Second))
	wantVerify(t, v, tr.AccessToken, "") // cached with the old expiry
	v.Drop(store.TopicKey(grant))
	wantVerify(t, v, tr.AccessToken, nexus.CodeTokenExpired)
	wantVerify(t, v, tr.AccessToken, nexus.CodeTokenExpired) // and from the cache

	// A cached entry expires on its own, without a drop.
	tr2 := f.tokens(a, "")
	wantVerify(t, v, tr2.AccessToken, "")
	f.advance(AccessTokenTTL - time.Second)
	wantVerify(t, v, tr2.AccessToken, "")
	f.advance(time.Second)
	wantVerify(t, v, tr2.AccessToken, nexus.CodeTokenExpired)
	f.advance(-AccessTokenTTL)

	// Revoked and expired: revoked wins.
	tr3 := f.tokens(a, "")
	f.setExpiry("oauth_tokens", "token_hash", credential.DigestHex(tr3.AccessToken), store.Now().Add(-time.Second))
	if err := f.svc.Revoke(f.ctx, a.c, tr3.AccessToken); err != nil {
		t.Fatal(err)
	}
	wantVerify(t, v, tr3.AccessToken, nexus.CodeTokenRevoked)
}

// racingLookup revokes the grant and publishes the drop while the verifier
// is between reading the token and caching it.
type racingLookup struct {
	f     *fx
	grant string
	once  sync.Once
}

func (r *racingLookup) Get(ctx context.Context, id string) (nexus.Partner, error) {
	r.once.Do(func() {
		if _, err := r.f.svc.RevokeGrant(ctx, tenant(r.f.user, nexus.Test), r.grant); err != nil {
			r.f.t.Errorf("RevokeGrant: %v", err)
		}
	})
	return r.f.partners.Get(ctx, id)
}

// A drop that happens while a token is being loaded keeps the stale entry
// out of the cache.
func TestVerifierDropDuringLoad(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	a := f.app(Public)
	tr := f.tokens(a, "")
	v := NewVerifier(f.svc, &racingLookup{f: f, grant: f.grantID(tr.AccessToken)})
	f.db.OnLocalPublish(v.Drop)

	// The first answer raced the revocation and may be either; the second
	// must not be served from a stale cache entry.
	_, _ = v.Verify(f.ctx, tr.AccessToken)
	wantVerify(t, v, tr.AccessToken, nexus.CodeTokenRevoked)
}

func TestVerifierGrantMissing(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	a := f.app(Public)
	tr := f.tokens(a, "")
	if _, err := f.cross("deletes a grant").Delete((*Grant)(nil)).Where("id = ?", f.grantID(tr.AccessToken)).Exec(f.ctx); err != nil {
		t.Fatal(err)
	}
	v := f.verifier()
	if p, err := v.Verify(f.ctx, tr.AccessToken); err == nil || p != nil {
		t.Fatalf("Verify with the grant row gone = %+v, %v; want an error", p, err)
	}
}

func TestVerifierConcurrent(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	v := f.verifier()
	a := f.app(Public)
	toks := make([]*TokenResponse, 4)
	for i := range toks {
		toks[i] = f.tokens(a, "")
	}
	grant0 := f.grantID(toks[0].AccessToken)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				tok := toks[(i+j)%len(toks)].AccessToken
				if _, err := v.Verify(context.Background(), tok); err != nil && nexus.CodeOf(err) != nexus.CodeTokenRevoked {
					t.Errorf("Verify: %v", err)
					return
				}
				if j%10 == 0 {
					v.Drop(store.TopicKey("grt_unrelated"))
				}
			}
		}()
	}
	if _, err := f.svc.RevokeGrant(f.ctx, tenant(f.user, nexus.Test), grant0); err != nil {
		t.Error(err)
	}
	wg.Wait()
	wantVerify(t, v, toks[0].AccessToken, nexus.CodeTokenRevoked)
	for _, tr := range toks[1:] {
		wantVerify(t, v, tr.AccessToken, "")
	}
}
