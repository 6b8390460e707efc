package servicetoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/secretbox"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// testMasterKey is a fixed 32-byte key, base64.
const testMasterKey = "dW5pdC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="

// countingPartners counts the partner lookups a verification makes.
type countingPartners struct {
	inner PartnerLookup
	n     atomic.Int64
}

func (c *countingPartners) Get(ctx context.Context, id string) (nexus.Partner, error) {
	c.n.Add(1)
	return c.inner.Get(ctx, id)
}

// env is a verifier on a migrated SQLite database with an approved partner,
// test credentials of the three algorithms, a live ES256 credential and two
// platform services (Ed25519, P-256).
type env struct {
	ctx      context.Context
	db       *store.DB
	svc      *Service
	partners *countingPartners
	v        *Verifier
	partner  nexus.Partner
	tenant   nexus.Tenant // test environment

	hs       *View
	hsSecret string
	es       *View
	esKey    *ecdsa.PrivateKey
	ed       *View
	edKey    ed25519.PrivateKey
	live     *View // ES256, live environment
	liveKey  *ecdsa.PrivateKey

	plEd    *Platform
	plEdKey ed25519.PrivateKey
	plEC    *Platform
	plECKey *ecdsa.PrivateKey
}

func pemOf(tb testing.TB, pub any) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// migrate migrates db and fails a test (or fuzz target) if a query on a
// tenant table after that is neither scoped to its tenant nor marked as
// crossing tenants. Benchmarks time the verifier without the hook.
func migrate(tb testing.TB, db *store.DB) {
	tb.Helper()
	if _, err := db.MigrateUp(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if _, bench := tb.(*testing.B); !bench {
		storetest.CheckTenancy(tb, db)
	}
}

// newEnv is newEnvOn a fresh SQLite database, for the fuzz targets and
// benchmarks.
func newEnv(tb testing.TB) *env { return newEnvOn(tb, storetest.OpenSQLite(tb)) }

// forEachEnv runs fn on an env on each database (storetest.ForEachDB).
func forEachEnv(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) { fn(t, newEnvOn(t, db)) })
}

// newEnvOn is an env on db, which it migrates.
func newEnvOn(tb testing.TB, db *store.DB) *env {
	tb.Helper()
	ctx := context.Background()
	migrate(tb, db)
	box, err := secretbox.New(testMasterKey)
	if err != nil {
		tb.Fatal(err)
	}
	ps := partner.NewService(db)
	p, err := ps.Create(ctx, partner.CreateParams{Name: "Unit Partner", Status: nexus.PartnerApproved})
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{ctx: ctx, db: db, svc: NewService(db, box), partners: &countingPartners{inner: ps}, partner: p,
		tenant: nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}}
	e.v = NewVerifier(VerifierConfig{Service: e.svc, Partners: e.partners})

	create := func(t nexus.Tenant, alg, pub string, scopes ...string) *View {
		tb.Helper()
		v, err := e.svc.Create(ctx, t, CreateParams{Name: "unit " + alg, Algorithm: alg, PublicKey: pub, Scopes: scopes})
		if err != nil {
			tb.Fatalf("create %s credential: %v", alg, err)
		}
		return v
	}
	e.hs = create(e.tenant, HS256, "", "read:balances", "write:addresses")
	e.hsSecret = e.hs.Secret
	if !strings.HasPrefix(e.hsSecret, "nx_test_ss_") {
		tb.Fatalf("HS256 secret %q is not nx_test_ss_…", e.hsSecret)
	}
	if e.esKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	e.es = create(e.tenant, ES256, pemOf(tb, &e.esKey.PublicKey), "read")
	var edPub ed25519.PublicKey
	if edPub, e.edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		tb.Fatal(err)
	}
	e.ed = create(e.tenant, EdDSA, pemOf(tb, edPub)) // admin:all
	if e.liveKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	e.live = create(nexus.Tenant{PartnerID: p.ID, Environment: nexus.Live}, ES256, pemOf(tb, &e.liveKey.PublicKey), "read:balances")

	var plPub ed25519.PublicKey
	if plPub, e.plEdKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if e.plEd, err = e.svc.CreatePlatform(ctx, "payments-core", pemOf(tb, plPub), []string{"internal:funding", "internal:requests"}); err != nil {
		tb.Fatal(err)
	}
	if e.plECKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if e.plEC, err = e.svc.CreatePlatform(ctx, "treasury", pemOf(tb, &e.plECKey.PublicKey), []string{"internal:funding"}); err != nil {
		tb.Fatal(err)
	}
	if e.plEd.Algorithm != EdDSA || e.plEC.Algorithm != ES256 {
		tb.Fatalf("platform algorithms: %s, %s", e.plEd.Algorithm, e.plEC.Algorithm)
	}
	return e
}

func b64(v []byte) string { return base64.RawURLEncoding.EncodeToString(v) }

func b64JSON(tb testing.TB, v any) string {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(data)
}

// claims are the claims of a well-formed partner token for credential id,
// valid now for 5 minutes.
func claims(id string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": id, "aud": "nexus-api", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

// platformClaims are a well-formed internal token's claims.
func platformClaims(id, sub, environment string) jwt.MapClaims {
	c := claims(id)
	c["aud"], c["sub"], c["env"] = "nexus-internal", sub, environment
	return c
}

// signed signs c with m and key, with kid (none when kid is "").
func signed(tb testing.TB, m jwt.SigningMethod, kid string, c jwt.MapClaims, key any) string {
	tb.Helper()
	t := jwt.NewWithClaims(m, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// with returns a copy of c changed by kv pairs; a nil value deletes.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

func mint(tb testing.TB, p sdk.ServiceTokenParams) string {
	tb.Helper()
	tok, err := sdk.MintServiceToken(p)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func mintPlatform(tb testing.TB, p sdk.PlatformTokenParams) string {
	tb.Helper()
	tok, err := sdk.MintPlatformToken(p)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestVerifyAccepts(t *testing.T) { forEachEnv(t, testVerifyAccepts) }

func testVerifyAccepts(t *testing.T, e *env) {
	cases := []struct {
		name       string
		tok        string
		cred       *View
		env        nexus.Environment
		wantScopes []string
		wantActor  string
	}{
		{
			name: "HS256 with service and narrowed permissions",
			tok:  mint(t, sdk.ServiceTokenParams{CredentialID: e.hs.ID, Secret: e.hsSecret, Service: "billing-worker", Permissions: []string{"read:balances"}}),
			cred: e.hs, env: nexus.Test, wantScopes: []string{"read:balances"}, wantActor: "billing-worker",
		},
		{
			name: "HS256 without permissions has the credential's scopes",
			tok:  mint(t, sdk.ServiceTokenParams{CredentialID: e.hs.ID, Secret: e.hsSecret, Service: "billing-worker"}),
			cred: e.hs, env: nexus.Test, wantScopes: []string{"read:balances", "write:addresses"}, wantActor: "billing-worker",
		},
		{
			name: "HS256 permission implied by the credential (write:addresses implies read:addresses)",
			tok:  mint(t, sdk.ServiceTokenParams{CredentialID: e.hs.ID, Secret: e.hsSecret, Permissions: []string{"read:addresses"}}),
			cred: e.hs, env: nexus.Test, wantScopes: []string{"read:addresses"}, wantActor: e.hs.ID,
		},
		{
			name: "ES256 without service: the actor is the credential id",
			tok:  mint(t, sdk.ServiceTokenParams{CredentialID: e.es.ID, PrivateKey: e.esKey}),
			cred: e.es, env: nexus.Test, wantScopes: []string{"read:addresses", "read:balances", "read:funding", "read:requests", "read:usage"}, wantActor: e.es.ID,
		},
		{
			name: "EdDSA admin credential with narrowed permissions",
			tok:  mint(t, sdk.ServiceTokenParams{CredentialID: e.ed.ID, PrivateKey: e.edKey, Service: "ops", Permissions: []string{"write:requests", "read:funding"}}),
			cred: e.ed, env: nexus.Test, wantScopes: []string{"read:funding", "write:requests"}, wantActor: "ops",
		},
		{
			name: "live ES256 credential",
			tok:  mint(t, sdk.ServiceTokenParams{CredentialID: e.live.ID, PrivateKey: e.liveKey, Service: "live-svc", Lifetime: time.Hour}),
			cred: e.live, env: nexus.Live, wantScopes: []string{"read:balances"}, wantActor: "live-svc",
		},
		{
			name: "env claim equal to the credential's environment",
			tok:  signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "env", "test"), []byte(e.hsSecret)),
			cred: e.hs, env: nexus.Test, wantScopes: []string{"read:balances", "write:addresses"}, wantActor: e.hs.ID,
		},
		{
			name: "exp 10 s ago is inside the 30 s leeway",
			tok: signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID),
				"iat", time.Now().Add(-5*time.Minute).Unix(), "nbf", nil, "exp", time.Now().Add(-10*time.Second).Unix()), []byte(e.hsSecret)),
			cred: e.hs, env: nexus.Test, wantScopes: []string{"read:balances", "write:addresses"}, wantActor: e.hs.ID,
		},
		{
			name: "nbf 10 s ahead is inside the 30 s leeway",
			tok:  signed(t, jwt.SigningMethodES256, e.es.ID, with(claims(e.es.ID), "nbf", time.Now().Add(10*time.Second).Unix()), e.esKey),
			cred: e.es, env: nexus.Test, wantScopes: []string{"read:addresses", "read:balances", "read:funding", "read:requests", "read:usage"}, wantActor: e.es.ID,
		},
		{
			name: "lifetime of exactly 3600 s",
			tok: signed(t, jwt.SigningMethodEdDSA, e.ed.ID, with(claims(e.ed.ID),
				"exp", time.Now().Add(59*time.Minute).Unix(), "iat", time.Now().Add(-time.Minute).Unix()), e.edKey),
			cred: e.ed, env: nexus.Test, wantScopes: []string{"admin:all"}, wantActor: e.ed.ID,
		},
		{
			name: "aud as an array holding nexus-api",
			tok:  signed(t, jwt.SigningMethodEdDSA, e.ed.ID, with(claims(e.ed.ID), "aud", []string{"other", "nexus-api"}), e.edKey),
			cred: e.ed, env: nexus.Test, wantScopes: []string{"admin:all"}, wantActor: e.ed.ID,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.v.Verify(e.ctx, tc.tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Partner.ID != e.partner.ID || p.Partner.Status != nexus.PartnerApproved {
				t.Errorf("partner %+v, want %s approved", p.Partner, e.partner.ID)
			}
			if p.Environment != tc.env {
				t.Errorf("environment %s, want %s", p.Environment, tc.env)
			}
			if got := p.Scopes.Names(); !slices.Equal(got, tc.wantScopes) {
				t.Errorf("scopes %v, want %v", got, tc.wantScopes)
			}
			if p.Actor != tc.wantActor {
				t.Errorf("actor %q, want %q", p.Actor, tc.wantActor)
			}
			if p.CredentialID != tc.cred.ID || p.CredentialType != nexus.CredentialServiceToken {
				t.Errorf("credential %s %s, want %s service_token", p.CredentialID, p.CredentialType, tc.cred.ID)
			}
			if p.Scopes&nexus.InternalScopes != 0 {
				t.Errorf("a partner token holds internal scopes: %v", p.Scopes.Names())
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) { forEachEnv(t, testVerifyRefuses) }

func testVerifyRefuses(t *testing.T, e *env) {
	now := time.Now()
	hsKey := []byte(e.hsSecret)

	// alg none, crafted by hand: no library signs it.
	algNone := b64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": e.hs.ID}) + "." + b64JSON(t, claims(e.hs.ID)) + "."
	// The same with the "none" header but the HS256 credential's real
	// signature left on: still refused.
	valid := signed(t, jwt.SigningMethodHS256, e.hs.ID, claims(e.hs.ID), hsKey)
	parts := strings.Split(valid, ".")
	algNoneSigned := b64JSON(t, map[string]any{"alg": "none", "kid": e.hs.ID}) + "." + parts[1] + "." + parts[2]
	// Payload swapped for one with more permissions, signature kept.
	tampered := parts[0] + "." + b64JSON(t, with(claims(e.hs.ID), "permissions", []string{"admin:all"})) + "." + parts[2]
	// Header swapped (kid of another credential), signature kept.
	headerSwap := b64JSON(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": e.ed.ID}) + "." + parts[1] + "." + parts[2]

	// Key confusion: HS256 with the ES256 credential's public key (the PEM
	// exactly as stored, and as uploaded) as the HMAC secret.
	confusionStored := signed(t, jwt.SigningMethodHS256, e.es.ID, claims(e.es.ID), []byte(*e.es.PublicKey))
	confusionUploaded := signed(t, jwt.SigningMethodHS256, e.es.ID, claims(e.es.ID), []byte(pemOf(t, &e.esKey.PublicKey)))
	// ES256 credential, token signed EdDSA by the EdDSA credential's key.
	wrongAlg := signed(t, jwt.SigningMethodEdDSA, e.es.ID, claims(e.es.ID), e.edKey)
	// ES256 credential, ES256 token signed by another P-256 key.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrongKey := signed(t, jwt.SigningMethodES256, e.es.ID, claims(e.es.ID), other)

	expired := with(claims(e.hs.ID), "iat", now.Add(-10*time.Minute).Unix(), "nbf", nil, "exp", now.Add(-2*time.Minute).Unix())

	cases := []struct {
		name string
		tok  string
		code nexus.Code
	}{
		{"alg none", algNone, nexus.CodeInvalidToken},
		{"alg none header with a real signature", algNoneSigned, nexus.CodeInvalidToken},
		{"HS256 keyed with the ES256 credential's stored public key", confusionStored, nexus.CodeInvalidToken},
		{"HS256 keyed with the ES256 credential's uploaded PEM", confusionUploaded, nexus.CodeInvalidToken},
		{"EdDSA token for an ES256 credential", wrongAlg, nexus.CodeInvalidToken},
		{"ES256 signed by another key", wrongKey, nexus.CodeInvalidToken},
		{"tampered payload", tampered, nexus.CodeInvalidToken},
		{"header swapped to another kid", headerSwap, nexus.CodeInvalidToken},
		{"unknown sc_ kid", signed(t, jwt.SigningMethodHS256, "sc_0000000000000000000000000", claims("sc_0000000000000000000000000"), hsKey), nexus.CodeInvalidToken},
		{"unknown svc_ kid", signed(t, jwt.SigningMethodEdDSA, "svc_0000000000000000000000000", platformClaims("svc_0000000000000000000000000", e.partner.ID, "test"), e.plEdKey), nexus.CodeInvalidToken},
		{"kid of no known kind", signed(t, jwt.SigningMethodHS256, "key_123", claims("key_123"), hsKey), nexus.CodeInvalidToken},
		{"missing kid", signed(t, jwt.SigningMethodHS256, "", claims(e.hs.ID), hsKey), nexus.CodeInvalidToken},
		{"kid not a string", func() string {
			tk := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(e.hs.ID))
			tk.Header["kid"] = 42
			s, _ := tk.SignedString(hsKey)
			return s
		}(), nexus.CodeInvalidToken},
		{"wrong aud", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "aud", "nexus-internal"), hsKey), nexus.CodeInvalidToken},
		{"missing aud", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "aud", nil), hsKey), nexus.CodeInvalidToken},
		{"wrong iss", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "iss", e.es.ID), hsKey), nexus.CodeInvalidToken},
		{"missing iss", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "iss", nil), hsKey), nexus.CodeInvalidToken},
		{"missing exp", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "exp", nil), hsKey), nexus.CodeInvalidToken},
		{"missing iat", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "iat", nil), hsKey), nexus.CodeInvalidToken},
		{"iat in the future", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "iat", now.Add(2*time.Minute).Unix()), hsKey), nexus.CodeInvalidToken},
		{"nbf 2 minutes ahead", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "nbf", now.Add(2*time.Minute).Unix()), hsKey), nexus.CodeInvalidToken},
		{"lifetime 3601 s", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "iat", now.Add(-time.Minute).Unix(), "exp", now.Add(59*time.Minute+time.Second).Unix()), hsKey), nexus.CodeInvalidToken},
		{"lifetime 24 h", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "exp", now.Add(24*time.Hour).Unix()), hsKey), nexus.CodeInvalidToken},
		{"permissions beyond the credential's", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "permissions", []string{"read:balances", "write:requests"}), hsKey), nexus.CodeInvalidToken},
		{"admin permission on a restricted credential", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "permissions", []string{"admin"}), hsKey), nexus.CodeInvalidToken},
		{"internal permission on an admin credential", signed(t, jwt.SigningMethodEdDSA, e.ed.ID, with(claims(e.ed.ID), "permissions", []string{"internal:funding"}), e.edKey), nexus.CodeInvalidToken},
		{"unknown permission", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "permissions", []string{"read:everything"}), hsKey), nexus.CodeInvalidToken},
		{"env live on a test credential", signed(t, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "env", "live"), hsKey), nexus.CodeInvalidToken},
		{"env test on a live credential", signed(t, jwt.SigningMethodES256, e.live.ID, with(claims(e.live.ID), "env", "test"), e.liveKey), nexus.CodeInvalidToken},
		{"exp 2 minutes ago", signed(t, jwt.SigningMethodHS256, e.hs.ID, expired, hsKey), nexus.CodeTokenExpired},
		{"exp 2 minutes ago (SDK, ES256)", signed(t, jwt.SigningMethodES256, e.es.ID, with(claims(e.es.ID), "iat", now.Add(-10*time.Minute).Unix(), "nbf", nil, "exp", now.Add(-2*time.Minute).Unix()), e.esKey), nexus.CodeTokenExpired},
		{"two segments", parts[0] + "." + parts[1], nexus.CodeInvalidToken},
		{"garbage", "a.b.c", nexus.CodeInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.v.Verify(e.ctx, tc.tok)
			if err == nil {
				t.Fatalf("accepted: principal %+v", p)
			}
			if got := nexus.CodeOf(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
		})
	}
	// The well-formed token the tampered ones were made from is accepted:
	// the refusals above are for what was changed.
	if _, err := e.v.Verify(e.ctx, valid); err != nil {
		t.Fatalf("the untampered token: %v", err)
	}
}

// A revoked credential's tokens are refused once the verifier hears of the
// revocation, including a token it had verified (and cached) before.
func TestVerifyRevoked(t *testing.T) { forEachEnv(t, testVerifyRevoked) }

func testVerifyRevoked(t *testing.T, e *env) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := e.svc.Create(e.ctx, e.tenant, CreateParams{Name: "doomed", Algorithm: ES256, PublicKey: pemOf(t, &key.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, sdk.ServiceTokenParams{CredentialID: c.ID, PrivateKey: key})
	if _, err := e.v.Verify(e.ctx, tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if _, err := e.svc.Revoke(e.ctx, e.tenant, c.ID); err != nil {
		t.Fatal(err)
	}
	e.v.Drop(store.TopicKey(c.ID))
	for name, tk := range map[string]string{
		"the cached token": tok,
		"a fresh token":    mint(t, sdk.ServiceTokenParams{CredentialID: c.ID, PrivateKey: key, Service: "x"}),
	} {
		if _, err := e.v.Verify(e.ctx, tk); nexus.CodeOf(err) != nexus.CodeInvalidToken {
			t.Errorf("%s after revocation: %v, want invalid_token", name, err)
		}
	}
	// A cold verifier (another instance) refuses it too.
	cold := NewVerifier(VerifierConfig{Service: e.svc, Partners: e.partners})
	if _, err := cold.Verify(e.ctx, tok); nexus.CodeOf(err) != nexus.CodeInvalidToken {
		t.Errorf("cold verifier after revocation: %v, want invalid_token", err)
	}
	// Other credentials are unaffected.
	if _, err := e.v.Verify(e.ctx, mint(t, sdk.ServiceTokenParams{CredentialID: e.hs.ID, Secret: e.hsSecret})); err != nil {
		t.Errorf("another credential after the revocation: %v", err)
	}
}

// A verified token is served from the cache: no partner lookup and no
// storage read (a change written behind the verifier's back is not seen)
// until Drop, after which the same token is checked again and refused.
func TestVerifyCache(t *testing.T) { forEachEnv(t, testVerifyCache) }

func testVerifyCache(t *testing.T, e *env) {
	tok := mint(t, sdk.ServiceTokenParams{CredentialID: e.hs.ID, Secret: e.hsSecret, Service: "cached"})
	p1, err := e.v.Verify(e.ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	lookups := e.partners.n.Load()
	// Revoke directly in storage, with no invalidation.
	if _, err := e.db.For(e.tenant).Update((*Credential)(nil)).Set("status = 'revoked'").Where("?TableAlias.id = ?", e.hs.ID).Exec(e.ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		p, err := e.v.Verify(e.ctx, tok)
		if err != nil {
			t.Fatalf("cached verification %d: %v", i, err)
		}
		if p != p1 {
			t.Errorf("cached verification %d returned another principal", i)
		}
	}
	if n := e.partners.n.Load(); n != lookups {
		t.Errorf("cached verifications looked the partner up %d times", n-lookups)
	}
	// A new token of the same credential uses the cached key (still seen
	// as active) and the cached partner: its claims are checked in full
	// without a query.
	if _, err := e.v.Verify(e.ctx, mint(t, sdk.ServiceTokenParams{CredentialID: e.hs.ID, Secret: e.hsSecret, Service: "other"})); err != nil {
		t.Errorf("new token with the cached key: %v", err)
	}
	if n := e.partners.n.Load(); n != lookups {
		t.Errorf("a new token made %d partner lookups, want 0 (partner cached)", n-lookups)
	}

	e.v.Drop(store.TopicKey(e.hs.ID))
	if _, err := e.v.Verify(e.ctx, tok); nexus.CodeOf(err) != nexus.CodeInvalidToken {
		t.Fatalf("after Drop: %v, want invalid_token", err)
	}

	// Drop(partner:…) and Drop(all) also forget verified tokens.
	tokES := mint(t, sdk.ServiceTokenParams{CredentialID: e.es.ID, PrivateKey: e.esKey})
	for _, topic := range []string{store.TopicPartner(e.partner.ID), store.TopicAll} {
		if _, err := e.v.Verify(e.ctx, tokES); err != nil {
			t.Fatal(err)
		}
		before := e.partners.n.Load()
		e.v.Drop(topic)
		if _, err := e.v.Verify(e.ctx, tokES); err != nil {
			t.Fatal(err)
		}
		if e.partners.n.Load() == before {
			t.Errorf("after Drop(%q) the token was still served from the cache", topic)
		}
	}

	// Refused tokens are not cached: the same bad token is refused again.
	bad := signed(t, jwt.SigningMethodES256, e.es.ID, with(claims(e.es.ID), "aud", "x"), e.esKey)
	for i := 0; i < 2; i++ {
		if _, err := e.v.Verify(e.ctx, bad); nexus.CodeOf(err) != nexus.CodeInvalidToken {
			t.Fatalf("bad token, try %d: %v", i, err)
		}
	}
}

// The cache never outlives a token: an accepted token stops working once
// exp (plus leeway) has passed, even when cached. The verifier's clock is
// stepped past the expiry rather than waited for.
func TestVerifyCacheHonoursExpiry(t *testing.T) { forEachEnv(t, testVerifyCacheHonoursExpiry) }

func testVerifyCacheHonoursExpiry(t *testing.T, e *env) {
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	v := NewVerifier(VerifierConfig{Service: e.svc, Partners: e.partners, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	// exp 29 s ago: accepted now (leeway), expired 1 s later.
	c := with(claims(e.hs.ID), "iat", now.Add(-time.Minute).Unix(), "nbf", nil, "exp", now.Add(-Leeway+time.Second).Unix())
	tok := signed(t, jwt.SigningMethodHS256, e.hs.ID, c, []byte(e.hsSecret))
	if _, err := v.Verify(e.ctx, tok); err != nil {
		t.Fatalf("inside the leeway: %v", err)
	}
	before := e.partners.n.Load()
	if _, err := v.Verify(e.ctx, tok); err != nil || e.partners.n.Load() != before {
		t.Fatalf("inside the leeway, again: %v (%d partner reads: not from the cache)", err, e.partners.n.Load()-before)
	}
	clock.Store(now.Add(2 * time.Second).UnixNano())
	if _, err := v.Verify(e.ctx, tok); nexus.CodeOf(err) != nexus.CodeTokenExpired {
		t.Fatalf("after exp + leeway: %v, want token_expired", err)
	}
}

func TestVerifyPlatform(t *testing.T) { forEachEnv(t, testVerifyPlatform) }

func testVerifyPlatform(t *testing.T, e *env) {
	other, err := partner.NewService(e.db).Create(e.ctx, partner.CreateParams{Name: "Other", Status: nexus.PartnerPending})
	if err != nil {
		t.Fatal(err)
	}
	accepts := []struct {
		name     string
		needEC   bool
		tok      func() string
		partner  string
		env      nexus.Environment
		scopes   []string
		actor, _ string
	}{
		{"EdDSA, test", false, func() string {
			return mintPlatform(t, sdk.PlatformTokenParams{ServiceID: e.plEd.ID, PrivateKey: e.plEdKey, Partner: e.partner.ID, Environment: "test"})
		}, e.partner.ID, nexus.Test, []string{"internal:funding", "internal:requests"}, "payments-core", "ed"},
		{"EdDSA, live, narrowed", false, func() string {
			return mintPlatform(t, sdk.PlatformTokenParams{ServiceID: e.plEd.ID, PrivateKey: e.plEdKey, Partner: e.partner.ID, Environment: "live", Permissions: []string{"internal:requests"}})
		}, e.partner.ID, nexus.Live, []string{"internal:requests"}, "payments-core", "ed"},
		{"P-256, another partner", true, func() string {
			return mintPlatform(t, sdk.PlatformTokenParams{ServiceID: e.plEC.ID, PrivateKey: e.plECKey, Partner: other.ID, Environment: "test", Lifetime: 15 * time.Minute})
		}, other.ID, nexus.Test, []string{"internal:funding"}, "treasury", "ec"},
	}
	for _, tc := range accepts {
		t.Run(tc.name, func(t *testing.T) {
			id := e.plEd.ID
			if tc.needEC {
				id = e.plEC.ID
			}
			p, err := e.v.Verify(e.ctx, tc.tok())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Partner.ID != tc.partner || p.Environment != tc.env || p.CredentialType != nexus.CredentialInternalService ||
				p.CredentialID != id || p.Actor != tc.actor || !slices.Equal(p.Scopes.Names(), tc.scopes) {
				t.Errorf("principal %+v (scopes %v), want partner %s env %s internal_service %s actor %s scopes %v",
					p, p.Scopes.Names(), tc.partner, tc.env, id, tc.actor, tc.scopes)
			}
			if p.Scopes.Effective()&nexus.PartnerScopes != 0 {
				t.Errorf("a platform token holds partner scopes: %v", p.Scopes.Names())
			}
		})
	}

	now := time.Now()
	good := platformClaims(e.plEd.ID, e.partner.ID, "test")
	sign := func(c jwt.MapClaims) string { return signed(t, jwt.SigningMethodEdDSA, e.plEd.ID, c, e.plEdKey) }
	refuses := []struct {
		name string
		tok  string
		code nexus.Code
	}{
		{"missing sub", sign(with(good, "sub", nil)), nexus.CodeInvalidToken},
		{"missing env", sign(with(good, "env", nil)), nexus.CodeInvalidToken},
		{"bad env", sign(with(good, "env", "prod")), nexus.CodeInvalidToken},
		{"unknown partner", sign(with(good, "sub", "ptr_0000000000000000000000000")), nexus.CodeInvalidToken},
		{"lifetime 901 s", sign(with(good, "iat", now.Add(-time.Minute).Unix(), "exp", now.Add(14*time.Minute+time.Second).Unix())), nexus.CodeInvalidToken},
		{"lifetime 1 h (fine for partners)", sign(with(good, "exp", now.Add(time.Hour).Unix())), nexus.CodeInvalidToken},
		{"aud nexus-api", sign(with(good, "aud", "nexus-api")), nexus.CodeInvalidToken},
		{"wrong iss", sign(with(good, "iss", "svc_other")), nexus.CodeInvalidToken},
		{"missing iat", sign(with(good, "iat", nil)), nexus.CodeInvalidToken},
		{"missing exp", sign(with(good, "exp", nil)), nexus.CodeInvalidToken},
		{"partner permission", sign(with(good, "permissions", []string{"read:balances"})), nexus.CodeInvalidToken},
		{"HS256 keyed with the service's public key", signed(t, jwt.SigningMethodHS256, e.plEd.ID, good, []byte(e.plEd.PublicKey)), nexus.CodeInvalidToken},
		{"ES256 signature for an Ed25519 service", signed(t, jwt.SigningMethodES256, e.plEd.ID, good, e.plECKey), nexus.CodeInvalidToken},
		{"partner credential with the internal audience", signed(t, jwt.SigningMethodEdDSA, e.ed.ID, with(claims(e.ed.ID), "aud", "nexus-internal", "sub", e.partner.ID, "env", "test"), e.edKey), nexus.CodeInvalidToken},
		{"expired", sign(with(good, "iat", now.Add(-10*time.Minute).Unix(), "nbf", nil, "exp", now.Add(-2*time.Minute).Unix())), nexus.CodeTokenExpired},
	}
	for _, tc := range refuses {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			p, err := e.v.Verify(e.ctx, tc.tok)
			if err == nil {
				t.Fatalf("accepted: principal %+v", p)
			}
			if got := nexus.CodeOf(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
		})
	}

	t.Run("refuses permission the service lacks", func(t *testing.T) {
		tok := signed(t, jwt.SigningMethodES256, e.plEC.ID, with(platformClaims(e.plEC.ID, e.partner.ID, "test"), "permissions", []string{"internal:requests"}), e.plECKey)
		if _, err := e.v.Verify(e.ctx, tok); nexus.CodeOf(err) != nexus.CodeInvalidToken {
			t.Fatalf("%v, want invalid_token", err)
		}
	})

	// A disabled service's tokens are refused once the verifier hears of it.
	t.Run("refuses a disabled service", func(t *testing.T) {
		tok := mintPlatform(t, sdk.PlatformTokenParams{ServiceID: e.plEd.ID, PrivateKey: e.plEdKey, Partner: e.partner.ID, Environment: "test"})
		if _, err := e.v.Verify(e.ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.NewUpdate().Model((*Platform)(nil)).Set("status = 'disabled'").Where("id = ?", e.plEd.ID).Exec(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.v.Drop(store.TopicKey(e.plEd.ID))
		if _, err := e.v.Verify(e.ctx, tok); nexus.CodeOf(err) != nexus.CodeInvalidToken {
			t.Errorf("disabled platform service: %v, want invalid_token", err)
		}
	})
}

// Credential creation rules the verifier relies on.
func TestCreateRules(t *testing.T) { forEachEnv(t, testCreateRules) }

func testCreateRules(t *testing.T, e *env) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	cases := []struct {
		name  string
		p     CreateParams
		code  nexus.Code
		param string
	}{
		{"HS256 with a public key", CreateParams{Algorithm: HS256, PublicKey: pemOf(t, edPub)}, nexus.CodeParameterInvalid, "public_key"},
		{"ES256 without a public key", CreateParams{Algorithm: ES256}, nexus.CodeParameterMissing, "public_key"},
		{"ES256 with garbage", CreateParams{Algorithm: ES256, PublicKey: "not a pem"}, nexus.CodeParameterInvalid, "public_key"},
		{"ES256 with an Ed25519 key", CreateParams{Algorithm: ES256, PublicKey: pemOf(t, edPub)}, nexus.CodeParameterInvalid, "public_key"},
		{"ES256 with a P-384 key", CreateParams{Algorithm: ES256, PublicKey: pemOf(t, &p384.PublicKey)}, nexus.CodeParameterInvalid, "public_key"},
		{"EdDSA with a P-256 key", CreateParams{Algorithm: EdDSA, PublicKey: pemOf(t, &ecKey.PublicKey)}, nexus.CodeParameterInvalid, "public_key"},
		{"internal scope", CreateParams{Algorithm: HS256, Scopes: []string{"internal:funding"}}, nexus.CodeInvalidScopes, "scopes"},
		{"unknown scope", CreateParams{Algorithm: HS256, Scopes: []string{"read:all"}}, nexus.CodeInvalidScopes, "scopes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Create(e.ctx, e.tenant, tc.p)
			var ne *nexus.Error
			if nexus.CodeOf(err) != tc.code || !errors.As(err, &ne) || ne.Param != tc.param {
				t.Fatalf("got %v, want %s on %s", err, tc.code, tc.param)
			}
		})
	}
	// The HS256 secret is stored sealed, never in clear.
	c, err := store.Get[Credential](e.ctx, e.db.For(e.tenant), "service_credential", e.hs.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretEnc == nil || strings.Contains(*c.SecretEnc, e.hsSecret) || strings.Contains(*c.SecretEnc, e.hsSecret[11:41]) {
		t.Fatalf("secret_enc %v holds the secret or is missing", c.SecretEnc)
	}
	// Get and List never show it.
	if v, err := e.svc.Get(e.ctx, e.tenant, e.hs.ID); err != nil || v.Secret != "" {
		t.Errorf("Get: %+v, %v", v, err)
	}
}

// Platform services take Ed25519, P-256 or RSA ≥ 2048 keys (CONTRACT §2)
// and nothing else.
func TestCreatePlatformKeys(t *testing.T) { forEachEnv(t, testCreatePlatformKeys) }

func testCreatePlatformKeys(t *testing.T, e *env) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	perms := []string{"internal:funding"}
	for i, tc := range []struct {
		name, pem, alg string
	}{
		{"Ed25519", pemOf(t, edPub), EdDSA},
		{"P-256", pemOf(t, &p256.PublicKey), ES256},
		{"RSA 2048", pemOf(t, &rsa2048.PublicKey), RS256},
	} {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			p, err := e.svc.CreatePlatform(e.ctx, fmt.Sprintf("svc-%d", i), tc.pem, perms)
			if err != nil {
				t.Fatalf("CreatePlatform: %v", err)
			}
			if p.Algorithm != tc.alg || !strings.HasPrefix(p.ID, "svc_") || p.Object != "platform_service" || !slices.Equal(p.Perms, perms) {
				t.Fatalf("got %+v", p)
			}
		})
	}
	for i, tc := range []struct {
		name, pem string
		perms     []string
		code      nexus.Code
	}{
		{"P-384", pemOf(t, &p384.PublicKey), perms, nexus.CodeParameterInvalid},
		{"RSA 1024", pemOf(t, &rsa1024.PublicKey), perms, nexus.CodeParameterInvalid},
		{"garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", perms, nexus.CodeParameterInvalid},
		{"partner permission", pemOf(t, edPub), []string{"read:balances"}, nexus.CodeInvalidScopes},
		{"no permission", pemOf(t, edPub), nil, nexus.CodeInvalidScopes},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := e.svc.CreatePlatform(e.ctx, fmt.Sprintf("bad-%d", i), tc.pem, tc.perms)
			if nexus.CodeOf(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}

// The token cache answers only the very token it verified: a token that
// differs from a cached one anywhere (or only in length) is verified anew,
// and refused, as its signature no longer matches.
func TestTokenCacheAnswersOnlyTheSameToken(t *testing.T) {
	forEachEnv(t, testTokenCacheAnswersOnlyTheSameToken)
}

func testTokenCacheAnswersOnlyTheSameToken(t *testing.T, e *env) {
	tok := signed(t, jwt.SigningMethodHS256, e.hs.ID, claims(e.hs.ID), []byte(e.hsSecret))
	if _, err := e.v.Verify(e.ctx, tok); err != nil {
		t.Fatal(err)
	}
	mid := len(tok) / 2
	for name, other := range map[string]string{
		"last byte":     tok[:len(tok)-1] + string(tok[len(tok)-1]^1),
		"a middle byte": tok[:mid] + string(tok[mid]^1) + tok[mid+1:],
		"first byte":    string(tok[0]^1) + tok[1:],
		"truncated":     tok[:len(tok)-1],
		"extended":      tok + "A",
	} {
		if _, err := e.v.Verify(e.ctx, other); err == nil {
			t.Errorf("%s changed: accepted", name)
		}
	}
	if _, err := e.v.Verify(e.ctx, strings.Clone(tok)); err != nil {
		t.Errorf("the same token, another string: %v", err)
	}
}
