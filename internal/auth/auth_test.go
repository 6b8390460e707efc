package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// wantCode fails unless err is a contract error with code want ("" means no error).
func wantCode(t testing.TB, err error, want nexus.Code) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ne *nexus.Error
	if !errors.As(err, &ne) {
		t.Fatalf("error = %v (%T), want contract code %s", err, err, want)
	}
	if ne.Code != want {
		t.Fatalf("code = %s (%q), want %s", ne.Code, ne.Message, want)
	}
}

func bearer(k string) *auth.Request { return &auth.Request{Authorization: "Bearer " + k} }

// env is a fake store with one approved partner and one live secret key.
type env struct {
	store *fakeStore
	a     *auth.Authenticator
	key   string
	row   *apikey.Row
}

func newEnv(t testing.TB, cfg auth.Config) *env {
	t.Helper()
	fs := newFakeStore()
	fs.addPartner("ptr_a", nexus.PartnerApproved)
	key, row := fs.addKey(t, "ptr_a", keyOpts{scopes: "read:balances write:addresses"})
	cfg.Keys = fs
	return &env{store: fs, a: auth.New(cfg), key: key, row: row}
}

// corrupt changes the last checksum character so the checksum no longer matches.
func corrupt(k string) string {
	last := k[len(k)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return k[:len(k)-1] + string(repl)
}

const jwtLike = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJzY18xIn0.c2lnbmF0dXJl"

func TestAuthenticateHeaders(t *testing.T) {
	e := newEnv(t, auth.Config{})
	other, _ := e.store.addKey(t, "ptr_a", keyOpts{})
	signing := credential.MustNew("live", credential.KindSigningSecret)
	refresh := credential.MustNew("live", credential.KindRefreshToken)
	clientSecret := credential.MustNew("live", credential.KindClientSecret)
	access := credential.MustNew("live", credential.KindAccessToken)

	tests := []struct {
		name string
		req  auth.Request
		want nexus.Code
		// store: whether the key store may be consulted.
		store bool
	}{
		{name: "authorization bearer", req: auth.Request{Authorization: "Bearer " + e.key}, store: true},
		{name: "authorization bearer lower case scheme", req: auth.Request{Authorization: "bearer " + e.key}, store: true},
		{name: "authorization bearer extra spaces", req: auth.Request{Authorization: "Bearer   " + e.key + "  "}, store: true},
		{name: "authorization apikey", req: auth.Request{Authorization: "ApiKey " + e.key}, store: true},
		{name: "authorization apikey upper case", req: auth.Request{Authorization: "APIKEY " + e.key}, store: true},
		{name: "x-api-key", req: auth.Request{XAPIKey: e.key}, store: true},
		{name: "x-api-key padded", req: auth.Request{XAPIKey: " " + e.key + " "}, store: true},
		{name: "x-partner-api-key", req: auth.Request{XPartnerAPIKey: e.key}, store: true},
		{name: "same key in every header", req: auth.Request{Authorization: "Bearer " + e.key, XAPIKey: e.key, XPartnerAPIKey: e.key}, store: true},
		{name: "same key in two api key headers", req: auth.Request{XAPIKey: e.key, XPartnerAPIKey: e.key}, store: true},

		{name: "missing", req: auth.Request{}, want: nexus.CodeMissingCredentials},
		{name: "only blanks", req: auth.Request{XAPIKey: "   ", XPartnerAPIKey: "\t"}, want: nexus.CodeMissingCredentials},
		{name: "origin alone is no credential", req: auth.Request{Origin: "https://a.example"}, want: nexus.CodeMissingCredentials},

		{name: "ambiguous bearer and x-api-key", req: auth.Request{Authorization: "Bearer " + e.key, XAPIKey: other}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous x-api-key and x-partner-api-key", req: auth.Request{XAPIKey: e.key, XPartnerAPIKey: other}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous apikey and x-partner-api-key", req: auth.Request{Authorization: "ApiKey " + other, XPartnerAPIKey: e.key}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous jwt and key", req: auth.Request{Authorization: "Bearer " + jwtLike, XAPIKey: e.key}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous even when one is garbage", req: auth.Request{XAPIKey: e.key, XPartnerAPIKey: "garbage"}, want: nexus.CodeAmbiguousCredentials},

		// HTTP lets a header repeat: every line is a credential.
		{name: "ambiguous two authorization lines", req: auth.Request{Authorization: "Bearer " + e.key, Repeated: []auth.Header{{auth.HeaderAuthorization, "Bearer " + other}}}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous two x-api-key lines", req: auth.Request{XAPIKey: e.key, Repeated: []auth.Header{{auth.HeaderXAPIKey, other}}}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous two x-partner-api-key lines", req: auth.Request{XPartnerAPIKey: e.key, Repeated: []auth.Header{{auth.HeaderXPartnerAPIKey, other}}}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous third authorization line", req: auth.Request{Authorization: "ApiKey " + e.key, Repeated: []auth.Header{{"authorization", "Bearer " + e.key}, {"authorization", "Bearer " + jwtLike}}}, want: nexus.CodeAmbiguousCredentials},
		{name: "ambiguous repeated line with garbage", req: auth.Request{XAPIKey: e.key, Repeated: []auth.Header{{auth.HeaderXAPIKey, "garbage"}}}, want: nexus.CodeAmbiguousCredentials},
		{name: "bad scheme on a repeated authorization line", req: auth.Request{Authorization: "Bearer " + e.key, Repeated: []auth.Header{{auth.HeaderAuthorization, "Basic abc"}}}, want: nexus.CodeMalformedCredentials},
		{name: "same key on two authorization lines", req: auth.Request{Authorization: "Bearer " + e.key, Repeated: []auth.Header{{auth.HeaderAuthorization, "Bearer  " + e.key}}}, store: true},
		{name: "same key on two x-api-key lines", req: auth.Request{XAPIKey: e.key, Repeated: []auth.Header{{auth.HeaderXAPIKey, e.key + " "}, {auth.HeaderXAPIKey, ""}}}, store: true},
		{name: "jwt on a repeated x-api-key line", req: auth.Request{XAPIKey: jwtLike, Repeated: []auth.Header{{auth.HeaderXAPIKey, jwtLike}}}, want: nexus.CodeMalformedCredentials},

		{name: "unsupported scheme basic", req: auth.Request{Authorization: "Basic dXNlcjpwYXNz"}, want: nexus.CodeMalformedCredentials},
		{name: "unsupported scheme token", req: auth.Request{Authorization: "Token " + e.key}, want: nexus.CodeMalformedCredentials},
		{name: "scheme without value", req: auth.Request{Authorization: "Bearer"}, want: nexus.CodeMalformedCredentials},
		{name: "scheme with blank value", req: auth.Request{Authorization: "Bearer    "}, want: nexus.CodeMalformedCredentials},
		{name: "raw key without scheme", req: auth.Request{Authorization: e.key}, want: nexus.CodeMalformedCredentials},
		{name: "bad scheme with a good x-api-key", req: auth.Request{Authorization: "Basic abc", XAPIKey: e.key}, want: nexus.CodeMalformedCredentials},

		{name: "malformed garbage", req: auth.Request{XAPIKey: "hello"}, want: nexus.CodeMalformedCredentials},
		{name: "malformed nx prefix too short", req: auth.Request{XAPIKey: "nx_live_sk_abc"}, want: nexus.CodeMalformedCredentials},
		{name: "malformed unknown env", req: auth.Request{XAPIKey: "nx_prod" + e.key[7:]}, want: nexus.CodeMalformedCredentials},
		{name: "malformed unknown kind", req: auth.Request{XAPIKey: e.key[:8] + "zz" + e.key[10:]}, want: nexus.CodeMalformedCredentials},
		{name: "malformed non base62", req: auth.Request{XAPIKey: e.key[:20] + "-" + e.key[21:]}, want: nexus.CodeMalformedCredentials},
		{name: "malformed trailing data", req: auth.Request{XAPIKey: e.key + "x"}, want: nexus.CodeMalformedCredentials},
		{name: "wrong checksum", req: auth.Request{Authorization: "Bearer " + corrupt(e.key)}, want: nexus.CodeMalformedCredentials},
		{name: "wrong checksum x-api-key", req: auth.Request{XAPIKey: corrupt(e.key)}, want: nexus.CodeMalformedCredentials},
		{name: "signing secret cannot authenticate", req: auth.Request{XAPIKey: signing}, want: nexus.CodeMalformedCredentials},
		{name: "refresh token cannot authenticate", req: auth.Request{Authorization: "Bearer " + refresh}, want: nexus.CodeMalformedCredentials},
		{name: "client secret cannot authenticate", req: auth.Request{Authorization: "Bearer " + clientSecret}, want: nexus.CodeMalformedCredentials},

		{name: "jwt in x-api-key", req: auth.Request{XAPIKey: jwtLike}, want: nexus.CodeMalformedCredentials},
		{name: "jwt in apikey scheme", req: auth.Request{Authorization: "ApiKey " + jwtLike}, want: nexus.CodeMalformedCredentials},
		{name: "access token in x-partner-api-key", req: auth.Request{XPartnerAPIKey: access}, want: nexus.CodeMalformedCredentials},
		{name: "jwt bearer without verifier", req: auth.Request{Authorization: "Bearer " + jwtLike}, want: nexus.CodeInvalidToken},
		{name: "access token bearer without verifier", req: auth.Request{Authorization: "Bearer " + access}, want: nexus.CodeInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.a.Drop(store.TopicAll)
			before := e.store.lookups.Load()
			p, err := e.a.Authenticate(context.Background(), &tt.req)
			wantCode(t, err, tt.want)
			if tt.want == "" {
				if p == nil || p.Partner.ID != "ptr_a" {
					t.Fatalf("principal = %+v", p)
				}
			} else if p != nil {
				t.Fatalf("principal %+v returned with an error", p)
			}
			if calls := e.store.lookups.Load() - before; !tt.store && calls != 0 {
				t.Fatalf("key store consulted %d times for a request refused before lookup", calls)
			}
		})
	}
}

func TestAuthenticatePrincipal(t *testing.T) {
	e := newEnv(t, auth.Config{})
	p, err := e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	if p.Partner.ID != "ptr_a" || p.Partner.Status != nexus.PartnerApproved || p.Environment != nexus.Live {
		t.Errorf("tenant = %+v / %s", p.Partner, p.Environment)
	}
	if p.CredentialID != e.row.ID || p.Actor != e.row.ID || p.CredentialType != nexus.CredentialAPIKey {
		t.Errorf("credential = %s %s %s, want %s", p.CredentialID, p.Actor, p.CredentialType, e.row.ID)
	}
	if want := nexus.ScopeSet(nexus.ScopeReadBalances | nexus.ScopeWriteAddresses); p.Scopes != want {
		t.Errorf("scopes = %q, want %q", p.Scopes, want)
	}
	if got := p.Tenant(); got != (nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}) {
		t.Errorf("Tenant() = %+v", got)
	}
}

func TestWrongChecksumNeverTouchesStore(t *testing.T) {
	e := newEnv(t, auth.Config{})
	bad := corrupt(e.key)
	for range 100 {
		_, err := e.a.Authenticate(context.Background(), bearer(bad))
		wantCode(t, err, nexus.CodeMalformedCredentials)
	}
	if n := e.store.lookups.Load(); n != 0 {
		t.Fatalf("store consulted %d times for keys with a wrong checksum", n)
	}
}

func TestUnknownKeyNegativeCache(t *testing.T) {
	e := newEnv(t, auth.Config{})
	unknown := credential.MustNew("live", credential.KindSecretKey)
	_, err := e.a.Authenticate(context.Background(), bearer(unknown))
	wantCode(t, err, nexus.CodeInvalidAPIKey)
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("lookups after first unknown attempt = %d, want 1", n)
	}
	for range 10 {
		_, err = e.a.Authenticate(context.Background(), &auth.Request{XAPIKey: unknown})
		wantCode(t, err, nexus.CodeInvalidAPIKey)
	}
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("lookups after repeated unknown attempts within 5 s = %d, want 1 (negative cache)", n)
	}
	// Another unknown key is its own lookup.
	_, err = e.a.Authenticate(context.Background(), bearer(credential.MustNew("live", credential.KindSecretKey)))
	wantCode(t, err, nexus.CodeInvalidAPIKey)
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d, want 2", n)
	}
	// Any drop forgets the negative entries (a key may have been created).
	e.a.Drop(store.TopicKey("key_unrelated"))
	_, err = e.a.Authenticate(context.Background(), bearer(unknown))
	wantCode(t, err, nexus.CodeInvalidAPIKey)
	if n := e.store.lookups.Load(); n != 3 {
		t.Fatalf("lookups after a drop = %d, want 3", n)
	}
	// The partner is never read for an unknown key.
	if n := e.store.partnerN.Load(); n != 0 {
		t.Errorf("partner reads = %d, want 0", n)
	}
}

func TestStoreErrorIsNotCached(t *testing.T) {
	e := newEnv(t, auth.Config{})
	boom := errors.New("database is down")
	e.store.lookupErr = boom
	_, err := e.a.Authenticate(context.Background(), bearer(e.key))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the store's error", err)
	}
	if nexus.CodeOf(err) != nexus.CodeInternalError {
		t.Fatalf("a store failure must render as internal_error, got %s", nexus.CodeOf(err))
	}
	e.store.mu.Lock()
	e.store.lookupErr = nil
	e.store.mu.Unlock()
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d, want 2 (a failed lookup is not cached)", n)
	}
}

func TestKeyStatuses(t *testing.T) {
	past := time.Now().Add(-time.Minute)
	future := time.Now().Add(time.Hour)
	tests := []struct {
		name string
		o    keyOpts
		want nexus.Code
	}{
		{name: "active", o: keyOpts{}},
		{name: "active with future expiry", o: keyOpts{expiresAt: &future}},
		{name: "suspended", o: keyOpts{status: apikey.Suspended}, want: nexus.CodeAPIKeySuspended},
		{name: "revoked", o: keyOpts{status: apikey.Revoked}, want: nexus.CodeAPIKeyRevoked},
		{name: "expired", o: keyOpts{expiresAt: &past}, want: nexus.CodeAPIKeyExpired},
		{name: "revoked and expired says revoked", o: keyOpts{status: apikey.Revoked, expiresAt: &past}, want: nexus.CodeAPIKeyRevoked},
		{name: "suspended and expired says suspended", o: keyOpts{status: apikey.Suspended, expiresAt: &past}, want: nexus.CodeAPIKeySuspended},
		{name: "publishable active", o: keyOpts{kind: credential.KindPublishableKey, scopes: "read:balances"}},
		{name: "publishable revoked", o: keyOpts{kind: credential.KindPublishableKey, scopes: "read:balances", status: apikey.Revoked}, want: nexus.CodeAPIKeyRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, auth.Config{})
			key, _ := e.store.addKey(t, "ptr_a", tt.o)
			for i := range 2 { // the miss path and the cached path agree
				_, err := e.a.Authenticate(context.Background(), bearer(key))
				wantCode(t, err, tt.want)
				if i == 1 && e.store.lookups.Load() != 1 {
					t.Fatalf("lookups = %d, want 1: the verdict was not cached", e.store.lookups.Load())
				}
			}
		})
	}
}

func TestCachedKeyExpires(t *testing.T) {
	clock := newClock()
	e := newEnv(t, auth.Config{Now: clock.Now})
	soon := clock.Now().Add(300 * time.Millisecond)
	key, _ := e.store.addKey(t, "ptr_a", keyOpts{expiresAt: &soon})
	_, err := e.a.Authenticate(context.Background(), bearer(key))
	wantCode(t, err, "")
	clock.Add(299 * time.Millisecond)
	_, err = e.a.Authenticate(context.Background(), bearer(key))
	wantCode(t, err, "")
	clock.Add(time.Millisecond)
	_, err = e.a.Authenticate(context.Background(), bearer(key))
	wantCode(t, err, nexus.CodeAPIKeyExpired)
	if n := e.store.lookups.Load(); n != 1 {
		t.Errorf("lookups = %d, want 1: expiry is decided from the cache", n)
	}
}

func TestEnvironmentNotServed(t *testing.T) {
	e := newEnv(t, auth.Config{Environments: []nexus.Environment{nexus.Test}})
	testKey, _ := e.store.addKey(t, "ptr_a", keyOpts{env: nexus.Test})
	_, err := e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, nexus.CodeEnvironmentNotServed)
	_, err = e.a.Authenticate(context.Background(), bearer(testKey))
	wantCode(t, err, "")
	if e.a.Serves(nexus.Live) || !e.a.Serves(nexus.Test) {
		t.Errorf("Serves(live) = %v, Serves(test) = %v", e.a.Serves(nexus.Live), e.a.Serves(nexus.Test))
	}

	live := newEnv(t, auth.Config{Environments: []nexus.Environment{nexus.Live}})
	testKey, _ = live.store.addKey(t, "ptr_a", keyOpts{env: nexus.Test})
	_, err = live.a.Authenticate(context.Background(), bearer(testKey))
	wantCode(t, err, nexus.CodeEnvironmentNotServed)
	_, err = live.a.Authenticate(context.Background(), bearer(live.key))
	wantCode(t, err, "")

	def := newEnv(t, auth.Config{})
	if !def.a.Serves(nexus.Live) || !def.a.Serves(nexus.Test) {
		t.Error("the default deployment must serve live and test")
	}
}

func TestPartnerNotApproved(t *testing.T) {
	tests := []struct {
		status     nexus.PartnerStatus
		live, test nexus.Code
	}{
		{nexus.PartnerApproved, "", ""},
		{nexus.PartnerPending, nexus.CodePartnerNotApproved, ""},
		{nexus.PartnerInactive, nexus.CodePartnerNotApproved, nexus.CodePartnerNotApproved},
		{nexus.PartnerRejected, nexus.CodePartnerNotApproved, nexus.CodePartnerNotApproved},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			fs := newFakeStore()
			fs.addPartner("ptr_x", tt.status)
			a := auth.New(auth.Config{Keys: fs})
			liveKey, _ := fs.addKey(t, "ptr_x", keyOpts{env: nexus.Live})
			testKey, _ := fs.addKey(t, "ptr_x", keyOpts{env: nexus.Test})
			_, err := a.Authenticate(context.Background(), bearer(liveKey))
			wantCode(t, err, tt.live)
			_, err = a.Authenticate(context.Background(), bearer(testKey))
			wantCode(t, err, tt.test)
		})
	}
}

// A partner's status change reaches cached keys once the partner topic is dropped.
func TestPartnerStatusChangeAfterDrop(t *testing.T) {
	e := newEnv(t, auth.Config{})
	_, err := e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	e.store.setPartnerStatus("ptr_a", nexus.PartnerInactive)
	e.a.Drop(store.TopicPartner("ptr_a"))
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, nexus.CodePartnerNotApproved)
}

type fakeVerifier struct {
	p   *nexus.Principal
	err error
	n   atomic.Int64
}

func (f *fakeVerifier) Verify(context.Context, string) (*nexus.Principal, error) {
	f.n.Add(1)
	return f.p, f.err
}

func TestTokenVerifiersShareTenantRules(t *testing.T) {
	access := credential.MustNew("test", credential.KindAccessToken)
	mk := func(status nexus.PartnerStatus, env nexus.Environment) *nexus.Principal {
		return &nexus.Principal{Partner: nexus.Partner{ID: "ptr_t", Status: status}, Environment: env, CredentialType: nexus.CredentialServiceToken}
	}
	tests := []struct {
		name string
		envs []nexus.Environment
		p    *nexus.Principal
		err  error
		want nexus.Code
	}{
		{name: "ok", p: mk(nexus.PartnerApproved, nexus.Live)},
		{name: "pending live", p: mk(nexus.PartnerPending, nexus.Live), want: nexus.CodePartnerNotApproved},
		{name: "pending test", p: mk(nexus.PartnerPending, nexus.Test)},
		{name: "rejected", p: mk(nexus.PartnerRejected, nexus.Test), want: nexus.CodePartnerNotApproved},
		{name: "not served", envs: []nexus.Environment{nexus.Test}, p: mk(nexus.PartnerApproved, nexus.Live), want: nexus.CodeEnvironmentNotServed},
		{name: "verifier error passes through", err: &nexus.Error{Code: nexus.CodeTokenExpired, Message: "expired"}, want: nexus.CodeTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwt := &fakeVerifier{p: tt.p, err: tt.err}
			oauth := &fakeVerifier{p: tt.p, err: tt.err}
			a := auth.New(auth.Config{Keys: newFakeStore(), Environments: tt.envs, JWT: jwt, OAuth: oauth})
			_, err := a.Authenticate(context.Background(), &auth.Request{Authorization: "Bearer " + jwtLike})
			wantCode(t, err, tt.want)
			_, err = a.Authenticate(context.Background(), &auth.Request{Authorization: "Bearer " + access})
			wantCode(t, err, tt.want)
			if jwt.n.Load() != 1 || oauth.n.Load() != 1 {
				t.Errorf("verifier calls jwt=%d oauth=%d, want 1 each", jwt.n.Load(), oauth.n.Load())
			}
		})
	}
}

func TestAllowedIPs(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	fs := newFakeStore()
	fs.addPartner("ptr_a", nexus.PartnerApproved)
	a := auth.New(auth.Config{Keys: fs, TrustedProxies: trusted})
	key, _ := fs.addKey(t, "ptr_a", keyOpts{ips: []string{"10.0.0.0/8", "203.0.113.7", "2001:db8:1::/64", "::ffff:198.18.0.1"}})
	open, _ := fs.addKey(t, "ptr_a", keyOpts{})
	ip := netip.MustParseAddr
	tests := []struct {
		name   string
		remote netip.Addr
		xff    string
		want   nexus.Code
	}{
		{name: "in cidr", remote: ip("10.1.2.3")},
		{name: "exact ip", remote: ip("203.0.113.7")},
		{name: "ipv6 in cidr", remote: ip("2001:db8:1::42")},
		{name: "ipv4-mapped peer", remote: ip("::ffff:10.1.2.3")},
		{name: "allowlist entry written ipv4-mapped", remote: ip("198.18.0.1")},
		{name: "not listed", remote: ip("198.51.100.1"), want: nexus.CodeIPNotAllowed},
		{name: "neighbour of exact ip", remote: ip("203.0.113.8"), want: nexus.CodeIPNotAllowed},
		{name: "ipv6 outside", remote: ip("2001:db8:2::1"), want: nexus.CodeIPNotAllowed},
		{name: "no peer address", remote: netip.Addr{}, want: nexus.CodeIPNotAllowed},
		{name: "untrusted peer's xff ignored", remote: ip("198.51.100.1"), xff: "10.1.2.3", want: nexus.CodeIPNotAllowed},
		{name: "untrusted peer in list, spoofed xff ignored", remote: ip("10.1.2.3"), xff: "198.51.100.1"},
		{name: "trusted proxy forwards allowed client", remote: ip("192.0.2.10"), xff: "10.9.9.9"},
		{name: "trusted proxy forwards other client", remote: ip("192.0.2.10"), xff: "198.51.100.1", want: nexus.CodeIPNotAllowed},
		{name: "client spoofs left of xff", remote: ip("192.0.2.10"), xff: "10.9.9.9, 198.51.100.1", want: nexus.CodeIPNotAllowed},
		{name: "proxy chain", remote: ip("192.0.2.10"), xff: "198.51.100.1, 10.9.9.9, 192.0.2.11"},
		{name: "trusted ipv6 proxy", remote: ip("2001:db8:ffff::1"), xff: "2001:db8:1::5"},
		{name: "trusted proxy itself not allowed", remote: ip("192.0.2.10"), want: nexus.CodeIPNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), &auth.Request{XAPIKey: key, RemoteIP: tt.remote, XForwardedFor: tt.xff})
			wantCode(t, err, tt.want)
			// A key without an allowlist takes any address.
			_, err = a.Authenticate(context.Background(), &auth.Request{XAPIKey: open, RemoteIP: tt.remote, XForwardedFor: tt.xff})
			wantCode(t, err, "")
		})
	}
}

// An allowlist CIDR written in IPv4-mapped IPv6 form is accepted when the
// key is created, so it must match the IPv4 clients it names (client
// addresses are unmapped before the check).
func TestAllowedIPsMappedCIDR(t *testing.T) {
	fs := newFakeStore()
	fs.addPartner("ptr_a", nexus.PartnerApproved)
	a := auth.New(auth.Config{Keys: fs})
	key, _ := fs.addKey(t, "ptr_a", keyOpts{ips: []string{"::ffff:198.18.0.0/112"}})
	for _, remote := range []string{"198.18.0.1", "::ffff:198.18.0.1"} {
		_, err := a.Authenticate(context.Background(), &auth.Request{XAPIKey: key, RemoteIP: netip.MustParseAddr(remote)})
		if nexus.CodeOf(err) == nexus.CodeIPNotAllowed {
			t.Fatal("regression: apikey.parsePrefix (apikey.go) unmaps single addresses but not CIDRs, so an allowlist entry " +
				"\"::ffff:198.18.0.0/112\" (accepted by checkIPs) never matches an (unmapped) IPv4 client; " +
				"fix: for p.Addr().Is4In6() && p.Bits() >= 96 use netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)")
		}
		wantCode(t, err, "")
	}
}

func TestAllowedOrigins(t *testing.T) {
	fs := newFakeStore()
	fs.addPartner("ptr_a", nexus.PartnerApproved)
	a := auth.New(auth.Config{Keys: fs})
	origins := []string{"https://shop.example", "http://localhost:3000"}
	pk, _ := fs.addKey(t, "ptr_a", keyOpts{kind: credential.KindPublishableKey, scopes: "read:balances", origins: origins})
	open, _ := fs.addKey(t, "ptr_a", keyOpts{kind: credential.KindPublishableKey, scopes: "read:balances"})
	tests := []struct {
		origin string
		want   nexus.Code
	}{
		{"https://shop.example", ""},
		{"HTTPS://SHOP.EXAMPLE", ""},
		{"http://localhost:3000", ""},
		// No Origin: not a browser, so not one of the key's pages.
		{"", nexus.CodeOriginNotAllowed},
		{"https://evil.example", nexus.CodeOriginNotAllowed},
		{"http://shop.example", nexus.CodeOriginNotAllowed},
		{"https://shop.example:8443", nexus.CodeOriginNotAllowed},
		{"https://shop.example.evil.example", nexus.CodeOriginNotAllowed},
		{"http://localhost:3001", nexus.CodeOriginNotAllowed},
		{"null", nexus.CodeOriginNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), &auth.Request{XAPIKey: pk, Origin: tt.origin})
			wantCode(t, err, tt.want)
			if err == nil && !p.OriginBound {
				t.Error("a publishable key with allowed_origins is not OriginBound: it would get no CORS grant")
			}
			p, err = a.Authenticate(context.Background(), &auth.Request{XAPIKey: open, Origin: tt.origin})
			wantCode(t, err, "")
			if err == nil && p.OriginBound {
				t.Error("a publishable key without allowed_origins is OriginBound")
			}
		})
	}
	// A secret key with allowed_origins is for servers: a request without
	// Origin passes, and it never gets a CORS grant.
	sk, _ := fs.addKey(t, "ptr_a", keyOpts{origins: origins})
	p, err := a.Authenticate(context.Background(), &auth.Request{XAPIKey: sk})
	wantCode(t, err, "")
	if err == nil && p.OriginBound {
		t.Error("a secret key is OriginBound")
	}
	_, err = a.Authenticate(context.Background(), &auth.Request{XAPIKey: sk, Origin: "https://evil.example"})
	wantCode(t, err, nexus.CodeOriginNotAllowed)
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	tests := []struct {
		name    string
		remote  string // "" for the zero Addr
		xff     string
		trusted []netip.Prefix
		want    string // "" for the zero Addr
	}{
		{name: "no xff", remote: "203.0.113.1", trusted: trusted, want: "203.0.113.1"},
		{name: "untrusted peer ignores xff", remote: "203.0.113.1", xff: "198.51.100.1", trusted: trusted, want: "203.0.113.1"},
		{name: "no trust list ignores xff", remote: "10.0.0.1", xff: "198.51.100.1", want: "10.0.0.1"},
		{name: "trusted peer takes xff", remote: "10.0.0.1", xff: "198.51.100.1", trusted: trusted, want: "198.51.100.1"},
		{name: "rightmost untrusted wins", remote: "10.0.0.1", xff: "1.1.1.1, 198.51.100.1", trusted: trusted, want: "198.51.100.1"},
		{name: "chain of trusted proxies", remote: "10.0.0.1", xff: "1.1.1.1, 198.51.100.1, 10.0.0.3, 10.0.0.2", trusted: trusted, want: "198.51.100.1"},
		{name: "no spaces", remote: "10.0.0.1", xff: "1.1.1.1,198.51.100.1,10.0.0.2", trusted: trusted, want: "198.51.100.1"},
		{name: "all trusted: leftmost", remote: "10.0.0.1", xff: "10.0.0.3, 10.0.0.2", trusted: trusted, want: "10.0.0.3"},
		{name: "garbage rightmost: last trusted hop", remote: "10.0.0.1", xff: "198.51.100.1, not-an-ip", trusted: trusted, want: "10.0.0.1"},
		{name: "garbage after trusted hop", remote: "10.0.0.1", xff: "garbage, 10.0.0.2", trusted: trusted, want: "10.0.0.2"},
		{name: "garbage left of client ignored", remote: "10.0.0.1", xff: "garbage, 198.51.100.1", trusted: trusted, want: "198.51.100.1"},
		{name: "port is garbage", remote: "10.0.0.1", xff: "198.51.100.1:4711", trusted: trusted, want: "10.0.0.1"},
		{name: "empty element", remote: "10.0.0.1", xff: "198.51.100.1, ", trusted: trusted, want: "10.0.0.1"},
		{name: "blank xff", remote: "10.0.0.1", xff: " ", trusted: trusted, want: "10.0.0.1"},
		{name: "ipv6 client", remote: "10.0.0.1", xff: "2001:db8::1", trusted: trusted, want: "2001:db8::1"},
		{name: "ipv6 proxy chain", remote: "fd00::1", xff: "2001:db8::1, fd00::2", trusted: trusted, want: "2001:db8::1"},
		{name: "bracketed ipv6 is garbage", remote: "fd00::1", xff: "[2001:db8::1]", trusted: trusted, want: "fd00::1"},
		{name: "ipv4-mapped peer is unmapped", remote: "::ffff:203.0.113.1", trusted: trusted, want: "203.0.113.1"},
		{name: "ipv4-mapped trusted peer", remote: "::ffff:10.0.0.1", xff: "198.51.100.1", trusted: trusted, want: "198.51.100.1"},
		{name: "ipv4-mapped xff entry", remote: "10.0.0.1", xff: "::ffff:198.51.100.1", trusted: trusted, want: "198.51.100.1"},
		{name: "ipv4-mapped trusted hop skipped", remote: "10.0.0.1", xff: "198.51.100.1, ::ffff:10.0.0.2", trusted: trusted, want: "198.51.100.1"},
		{name: "zero peer", remote: "", xff: "198.51.100.1", trusted: trusted, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var remote netip.Addr
			if tt.remote != "" {
				remote = netip.MustParseAddr(tt.remote)
			}
			got := auth.ClientIP(remote, tt.xff, tt.trusted)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP(%s, %q) = %s, want %s", tt.remote, tt.xff, got, want)
			}
			// The method agrees with the function.
			a := auth.New(auth.Config{Keys: newFakeStore(), TrustedProxies: tt.trusted})
			if m := a.ClientIP(&auth.Request{RemoteIP: remote, XForwardedFor: tt.xff}); m != got {
				t.Errorf("Authenticator.ClientIP = %s, ClientIP = %s", m, got)
			}
		})
	}
}

// ---- cache ----

func TestCacheHit(t *testing.T) {
	e := newEnv(t, auth.Config{})
	for range 50 {
		_, err := e.a.Authenticate(context.Background(), bearer(e.key))
		wantCode(t, err, "")
	}
	if l, p := e.store.lookups.Load(), e.store.partnerN.Load(); l != 1 || p != 1 {
		t.Fatalf("lookups=%d partner reads=%d, want 1 each", l, p)
	}
	// Every header form shares the cache entry.
	for _, r := range []*auth.Request{{XAPIKey: e.key}, {XPartnerAPIKey: e.key}, {Authorization: "ApiKey " + e.key}} {
		_, err := e.a.Authenticate(context.Background(), r)
		wantCode(t, err, "")
	}
	if l := e.store.lookups.Load(); l != 1 {
		t.Fatalf("lookups = %d, want 1", l)
	}
}

func TestCacheDropKey(t *testing.T) {
	e := newEnv(t, auth.Config{})
	other, otherRow := e.store.addKey(t, "ptr_a", keyOpts{})
	auth1 := func(k string, want nexus.Code) {
		t.Helper()
		_, err := e.a.Authenticate(context.Background(), bearer(k))
		wantCode(t, err, want)
	}
	auth1(e.key, "")
	auth1(other, "")
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d", n)
	}
	// Revoke in the store: the cached verdict stands until the drop.
	e.store.setKeyStatus(e.key, apikey.Revoked)
	auth1(e.key, "")
	e.a.Drop(store.TopicKey(e.row.ID))
	auth1(e.key, nexus.CodeAPIKeyRevoked)
	if n := e.store.lookups.Load(); n != 3 {
		t.Fatalf("lookups after drop = %d, want 3", n)
	}
	// The other key stayed cached.
	auth1(other, "")
	if n := e.store.lookups.Load(); n != 3 {
		t.Fatalf("lookups = %d, want 3: dropping one key dropped another", n)
	}
	// Dropping a key id nobody uses keeps both.
	e.a.Drop(store.TopicKey("key_nobody"))
	auth1(e.key, nexus.CodeAPIKeyRevoked)
	auth1(other, "")
	if n := e.store.lookups.Load(); n != 3 {
		t.Fatalf("lookups = %d, want 3", n)
	}
	e.a.Drop(store.TopicKey(otherRow.ID))
	auth1(other, "")
	if n := e.store.lookups.Load(); n != 4 {
		t.Fatalf("lookups = %d, want 4", n)
	}
}

// Another cache's topic (a balances change, published on every money
// movement) leaves cached credentials alone; TopicAll does not.
func TestCacheIgnoresOtherTopics(t *testing.T) {
	e := newEnv(t, auth.Config{})
	authOK := func() {
		t.Helper()
		_, err := e.a.Authenticate(context.Background(), bearer(e.key))
		wantCode(t, err, "")
	}
	authOK()
	e.a.Drop(store.TopicBalances(nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}))
	authOK()
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("lookups = %d after a balances topic, want 1", n)
	}
	e.a.Drop(store.TopicAll)
	authOK()
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d after TopicAll, want 2", n)
	}
}

func TestCacheDropPartner(t *testing.T) {
	fs := newFakeStore()
	fs.addPartner("ptr_a", nexus.PartnerApproved)
	fs.addPartner("ptr_b", nexus.PartnerApproved)
	a := auth.New(auth.Config{Keys: fs})
	a1, _ := fs.addKey(t, "ptr_a", keyOpts{})
	a2, _ := fs.addKey(t, "ptr_a", keyOpts{env: nexus.Test})
	b1, _ := fs.addKey(t, "ptr_b", keyOpts{})
	all := []string{a1, a2, b1}
	for _, k := range all {
		_, err := a.Authenticate(context.Background(), bearer(k))
		wantCode(t, err, "")
	}
	if n := fs.lookups.Load(); n != 3 {
		t.Fatalf("lookups = %d", n)
	}
	fs.setPartnerStatus("ptr_a", nexus.PartnerRejected)
	fs.setPartnerStatus("ptr_b", nexus.PartnerRejected)
	a.Drop(store.TopicPartner("ptr_a"))
	_, err := a.Authenticate(context.Background(), bearer(a1))
	wantCode(t, err, nexus.CodePartnerNotApproved)
	_, err = a.Authenticate(context.Background(), bearer(a2))
	wantCode(t, err, nexus.CodePartnerNotApproved)
	// ptr_b's key is still cached with the old status.
	_, err = a.Authenticate(context.Background(), bearer(b1))
	wantCode(t, err, "")
	if n := fs.lookups.Load(); n != 5 {
		t.Fatalf("lookups = %d, want 5 (only ptr_a's two keys reloaded)", n)
	}

	a.Drop(store.TopicAll)
	for _, k := range all {
		_, err := a.Authenticate(context.Background(), bearer(k))
		wantCode(t, err, nexus.CodePartnerNotApproved)
	}
	if n := fs.lookups.Load(); n != 8 {
		t.Fatalf("lookups after Drop(all) = %d, want 8", n)
	}
}

func TestCacheLoadRacingDropIsNotCached(t *testing.T) {
	e := newEnv(t, auth.Config{})
	var once sync.Once
	e.store.onLookup = func(string) {
		// A revocation lands while the row is being read: the row read
		// may predate it, so it must not be cached.
		once.Do(func() { e.a.Drop(store.TopicKey(e.row.ID)) })
	}
	_, err := e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d, want 2: a load that raced a drop was cached", n)
	}
	// The second load raced nothing, so now it is cached.
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d, want 2", n)
	}
}

func TestCacheNegativeLoadRacingDropIsNotCached(t *testing.T) {
	e := newEnv(t, auth.Config{})
	unknown := credential.MustNew("live", credential.KindSecretKey)
	var once sync.Once
	e.store.onLookup = func(string) { once.Do(func() { e.a.Drop(store.TopicAll) }) }
	_, err := e.a.Authenticate(context.Background(), bearer(unknown))
	wantCode(t, err, nexus.CodeInvalidAPIKey)
	_, err = e.a.Authenticate(context.Background(), bearer(unknown))
	wantCode(t, err, nexus.CodeInvalidAPIKey)
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d, want 2: a miss that raced a drop was cached", n)
	}
}

func TestCacheMaxAge(t *testing.T) {
	clock := newClock()
	e := newEnv(t, auth.Config{MaxAge: 300 * time.Millisecond, Now: clock.Now})
	_, err := e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("lookups = %d, want 1", n)
	}
	clock.Add(299 * time.Millisecond)
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("lookups within MaxAge = %d, want 1", n)
	}
	clock.Add(time.Millisecond)
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("lookups after MaxAge = %d, want 2", n)
	}
}

// Many goroutines authenticating while the cache is dropped: meant for -race.
func TestCacheConcurrent(t *testing.T) {
	fs := newFakeStore()
	fs.addPartner("ptr_a", nexus.PartnerApproved)
	a := auth.New(auth.Config{Keys: fs})
	keys := make([]string, 8)
	ids := make([]string, 8)
	for i := range keys {
		var row *apikey.Row
		keys[i], row = fs.addKey(t, "ptr_a", keyOpts{})
		ids[i] = row.ID
	}
	unknown := credential.MustNew("live", credential.KindSecretKey)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.Authenticate(context.Background(), bearer(keys[(g+i)%len(keys)])); err != nil {
					failures.Add(1)
				}
				if _, err := a.Authenticate(context.Background(), bearer(unknown)); nexus.CodeOf(err) != nexus.CodeInvalidAPIKey {
					failures.Add(1)
				}
			}
		}()
	}
	topics := []string{store.TopicAll, store.TopicPartner("ptr_a"), store.TopicKey(ids[0]), store.TopicKey(ids[3])}
	for i := range 2000 {
		a.Drop(topics[i%len(topics)])
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d authentications failed under concurrent drops", n)
	}
}

// ---- Run: invalidation across instances and last_used_at ----

// migrate migrates db and fails a test at its end if a query on a tenant
// table after that is neither scoped to its tenant nor marked as crossing
// tenants. Benchmarks time the store without the hook.
func migrate(tb testing.TB, db *store.DB) {
	tb.Helper()
	if _, err := db.MigrateUp(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if _, bench := tb.(*testing.B); !bench {
		storetest.CheckTenancy(tb, db)
	}
}

// subscribe wires db's invalidation bus to a's Drop, as the server does,
// and returns once it hears changes. The channel gets each topic once a
// has dropped it, so that a test waits for the drop instead of polling.
func subscribe(t *testing.T, ctx context.Context, db *store.DB, a *auth.Authenticator) <-chan string {
	t.Helper()
	ready, done := make(chan struct{}), make(chan struct{})
	dropped := make(chan string, 1024)
	drop := func(topic string) {
		a.Drop(topic)
		select {
		case dropped <- topic:
		default: // nobody is reading: the test waits for no more
		}
	}
	go func() {
		defer close(done)
		db.Subscribe(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), drop, func() { close(ready) })
	}()
	t.Cleanup(func() { <-done })
	select {
	case <-ready:
	case <-done:
		t.Fatal("the subscription ended before it heard anything")
	}
	return dropped
}

// refusedWithin authenticates with key after each topic a's subscription
// drops until the answer is code, and fails t unless that happens within d
// of start; it returns how long it took.
func refusedWithin(t *testing.T, a *auth.Authenticator, dropped <-chan string, key string, code nexus.Code, start time.Time, d time.Duration) time.Duration {
	t.Helper()
	deadline := time.NewTimer(d - time.Since(start))
	defer deadline.Stop()
	var err error
	for {
		select {
		case <-dropped:
		case <-deadline.C:
			t.Fatalf("still not %s %v after the change (last: %v)", code, time.Since(start), err)
		}
		_, err = a.Authenticate(context.Background(), bearer(key))
		if nexus.CodeOf(err) == code {
			return time.Since(start)
		}
	}
}

func TestRunDropsOnPublishAndTouches(t *testing.T) {
	storetest.ForEachDB(t, testRunDropsOnPublishAndTouches)
}

func testRunDropsOnPublishAndTouches(t *testing.T, db *store.DB) {
	migrate(t, db)
	// Another instance (here: another handle on the same database).
	other := storetest.OpenAgain(t, db)
	e := newEnv(t, auth.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	dropped := subscribe(t, ctx, db, e.a)

	// The subscriber listens (its start emptied the cache): the key is
	// cached now.
	_, err := e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "")
	e.store.setKeyStatus(e.key, apikey.Suspended)
	_, err = e.a.Authenticate(context.Background(), bearer(e.key))
	wantCode(t, err, "") // from the cache: the change is not announced yet

	// The other instance suspends the key; this one must stop accepting it
	// within a second.
	start := time.Now()
	if err := other.Tx(context.Background(), func(ctx context.Context, tx bun.Tx) error {
		return other.Publish(ctx, tx, store.TopicKey(e.row.ID))
	}); err != nil {
		t.Fatal(err)
	}
	took := refusedWithin(t, e.a, dropped, e.key, nexus.CodeAPIKeySuspended, start, time.Second)
	t.Logf("invalidation reached the cache in %v", took)

	// last_used_at writes are flushed when Run stops.
	cancel()
	<-done
	e.store.touchMu.Lock()
	defer e.store.touchMu.Unlock()
	if len(e.store.touched) == 0 || e.store.touched[0] != e.row.ID {
		t.Errorf("touched = %v, want [%s]", e.store.touched, e.row.ID)
	}
}

// clock is a settable Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := new(clock)
	c.ns.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// ---- fake key store ----

// fakeStore is an in-memory auth.KeyStore that counts its calls.
type fakeStore struct {
	mu       sync.Mutex
	rows     map[string]*apikey.Row // by digest hex
	partners map[string]nexus.Partner

	lookups  atomic.Int64
	partnerN atomic.Int64
	// onLookup, when set, runs inside Lookup before it answers.
	onLookup  func(digestHex string)
	lookupErr error

	touchMu sync.Mutex
	touched []string
}

func newFakeStore() *fakeStore {
	return &fakeStore{rows: map[string]*apikey.Row{}, partners: map[string]nexus.Partner{}}
}

func (f *fakeStore) Lookup(_ context.Context, digestHex string) (*apikey.Row, error) {
	f.lookups.Add(1)
	if f.onLookup != nil {
		f.onLookup(digestHex)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return nil, f.lookupErr
	}
	r, ok := f.rows[digestHex]
	if !ok {
		return nil, nil
	}
	cp := *r
	return &cp, nil
}

func (f *fakeStore) Partner(_ context.Context, id string) (nexus.Partner, error) {
	f.partnerN.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.partners[id]
	if !ok {
		return nexus.Partner{}, nexus.NotFound("partner", id)
	}
	return p, nil
}

func (f *fakeStore) TouchLastUsed(_ context.Context, _ time.Time, ids []string) error {
	f.touchMu.Lock()
	defer f.touchMu.Unlock()
	f.touched = append(f.touched, ids...)
	return nil
}

func (f *fakeStore) addPartner(id string, status nexus.PartnerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partners[id] = nexus.Partner{ID: id, Name: "Partner " + id, Status: status}
}

func (f *fakeStore) setPartnerStatus(id string, status nexus.PartnerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.partners[id]
	p.Status = status
	f.partners[id] = p
}

// keyOpts shapes a stored key.
type keyOpts struct {
	env       nexus.Environment // default live
	kind      credential.Kind   // default sk
	status    apikey.Status     // default active
	scopes    string            // default admin:all
	ips       []string
	origins   []string
	expiresAt *time.Time
}

// addKey stores a fresh key for partner pid and returns its plain secret
// and row.
func (f *fakeStore) addKey(t testing.TB, pid string, o keyOpts) (string, *apikey.Row) {
	t.Helper()
	if o.env == "" {
		o.env = nexus.Live
	}
	if o.kind == "" {
		o.kind = credential.KindSecretKey
	}
	if o.status == "" {
		o.status = apikey.Active
	}
	if o.scopes == "" {
		o.scopes = "admin:all"
	}
	plain := credential.MustNew(string(o.env), o.kind)
	typ := apikey.Secret
	if o.kind == credential.KindPublishableKey {
		typ = apikey.Publishable
	}
	now := time.Now().UTC()
	row := &apikey.Row{
		ID: nexus.NewID("key"), PartnerID: pid, Environment: o.env, Type: typ,
		KeyHash: credential.DigestHex(plain), Scopes: o.scopes, Status: o.status,
		AllowedIPs: o.ips, AllowedOrigins: o.origins, ExpiresAt: o.expiresAt,
		CreatedAt: now, UpdatedAt: now,
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows[row.KeyHash] = row
	return plain, row
}

func (f *fakeStore) setKeyStatus(plain string, st apikey.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows[credential.DigestHex(plain)].Status = st
}

// ---- against the real store ----

// TestRealStoreRevocation runs the real services on each database: a
// revocation through apikey.Service publishes its topic, and a running
// authenticator (standing in for another instance, which does not call Drop
// itself) refuses the key within the contract's second.
func TestRealStoreRevocation(t *testing.T) {
	storetest.ForEachDB(t, testRealStoreRevocation)
}

func testRealStoreRevocation(t *testing.T, db *store.DB) {
	e := newRealEnv(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// This instance hears the database through a handle of its own.
	dropped := subscribe(t, ctx, storetest.OpenAgain(t, e.db), e.a)

	req := bearer(e.key.Plain)
	p, err := e.a.Authenticate(context.Background(), req)
	wantCode(t, err, "")
	if p.Partner.ID != e.tenant.PartnerID || p.CredentialID != e.key.ID {
		t.Fatalf("principal = %+v", p)
	}
	start := time.Now()
	if _, err := e.keys.Revoke(context.Background(), e.tenant, e.key.ID); err != nil {
		t.Fatal(err)
	}
	took := refusedWithin(t, e.a, dropped, e.key.Plain, nexus.CodeAPIKeyRevoked, start, time.Second)
	t.Logf("revocation effective after %v", took)

	// last_used_at was queued by the first success and is written on stop.
	cancel()
	<-done
	row, err := auth.NewKeyStore(e.keys, nil).Lookup(context.Background(), credential.DigestHex(e.key.Plain))
	if err != nil || row == nil {
		t.Fatalf("lookup: %v %v", row, err)
	}
	if row.LastUsedAt == nil {
		t.Error("last_used_at not written when Run stopped")
	} else if d := time.Since(*row.LastUsedAt); d < 0 || d > 2*time.Minute {
		t.Errorf("last_used_at = %v", row.LastUsedAt)
	}
}

// The cache holds at most CacheSize keys: a key in steady use stays cached
// while keys used once are evicted, each counted.
func TestCacheBounded(t *testing.T) {
	const size = 10
	e := newEnv(t, auth.Config{CacheSize: size})
	ctx := context.Background()
	at := time.Now()
	hot := func() {
		t.Helper()
		at = at.Add(time.Second) // recency is kept to the second
		_, err := e.a.Authenticate(ctx, &auth.Request{Authorization: "Bearer " + e.key, At: at})
		wantCode(t, err, "")
	}
	hot()
	const others = 40
	for range others {
		k, _ := e.store.addKey(t, "ptr_a", keyOpts{})
		_, err := e.a.Authenticate(ctx, &auth.Request{Authorization: "Bearer " + k, At: at})
		wantCode(t, err, "")
		if n := e.a.CacheLen(); n > size {
			t.Fatalf("cache holds %d keys, want at most %d", n, size)
		}
		hot()
	}
	if got := e.store.lookups.Load(); got != 1+others {
		t.Errorf("lookups = %d, want %d: the key in use was evicted", got, 1+others)
	}
	if got, want := e.a.CacheEvictions(), uint64(1+others-size); got != want {
		t.Errorf("evictions = %d, want %d", got, want)
	}
	if hits, misses := e.a.CacheStats(); hits != others+1-1 || misses != 1+others {
		t.Errorf("hits, misses = %d, %d; want %d, %d", hits, misses, others, 1+others)
	}
}

// A burst of requests with one key the cache does not hold (after a
// restart, say) is one lookup and one lockout slot, not one per request:
// otherwise a partner's burst from one address fills the failed-auth gate.
func TestConcurrentMissesLoadOnce(t *testing.T) {
	e := newEnv(t, auth.Config{})
	const n = 32
	arrived := make(chan struct{}, n)
	e.store.onLookup = func(string) {
		// Hold the first lookup until every request could have made its
		// own (they all would without coalescing), or 2 s have passed.
		arrived <- struct{}{}
		deadline := time.After(2 * time.Second)
		for len(arrived) < n {
			select {
			case <-deadline:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	var admits atomic.Int64
	gate := gateFunc(func() { admits.Add(1) })
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bearer(e.key)
			r.Gate = gate
			if _, err := e.a.Authenticate(context.Background(), r); err != nil {
				t.Errorf("Authenticate: %v", err)
			}
		}()
	}
	wg.Wait()
	if l := e.store.lookups.Load(); l != 1 {
		t.Errorf("lookups = %d, want 1", l)
	}
	if a := admits.Load(); a != 1 {
		t.Errorf("gate admits = %d, want 1", a)
	}
}

// gateFunc is an auth.Gate that admits everything and calls f each time.
type gateFunc func()

func (g gateFunc) Admit(context.Context, *auth.Request) (func(bool), error) {
	g()
	return func(bool) {}, nil
}
