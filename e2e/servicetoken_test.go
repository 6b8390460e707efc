package e2e

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// Service tokens (CONTRACT §2 "Service tokens (JWT)") and the internal API
// of platform services (§5 /internal/v1/*), end to end.

// stCred is a service credential as the API shows it; Secret only in the
// HS256 create answer.
type stCred struct {
	Object      string   `json:"object"`
	ID          string   `json:"id"`
	Environment string   `json:"environment"`
	Name        string   `json:"name"`
	Algorithm   string   `json:"algorithm"`
	PublicKey   *string  `json:"public_key"`
	Scopes      []string `json:"scopes"`
	Status      string   `json:"status"`
	CreatedAt   string   `json:"created_at"`
	RevokedAt   *string  `json:"revoked_at"`
	Secret      string   `json:"secret"`
}

// stPEM encodes a public key as PKIX PEM.
func stPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func stECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func stEdKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// stCreate is POST /v1/service_credentials expecting 201 and a well-formed
// credential.
func stCreate(t testing.TB, s *Server, adminKey string, body map[string]any) stCred {
	t.Helper()
	r := do(t, "POST", s.URL+"/v1/service_credentials", bearer(adminKey), body)
	wantStatus(t, r, 201)
	var c stCred
	r.Decode(t, &c)
	if c.Object != "service_credential" || !strings.HasPrefix(c.ID, "sc_") || c.Status != "active" ||
		c.Algorithm != body["algorithm"] || c.RevokedAt != nil || c.CreatedAt == "" {
		t.Fatalf("create answer is not an active service credential: %s", r)
	}
	return c
}

func stHS256(t testing.TB, s *Server, adminKey string, scopes ...string) stCred {
	t.Helper()
	body := map[string]any{"name": "hs " + randomHex(3), "algorithm": "HS256"}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	c := stCreate(t, s, adminKey, body)
	if !strings.HasPrefix(c.Secret, "nx_"+c.Environment+"_ss_") || len(c.Secret) != len("nx_test_ss_")+30+6 {
		t.Fatalf("HS256 create answer without a well-formed signing secret: %+v", c)
	}
	return c
}

func stES256(t testing.TB, s *Server, adminKey string, scopes ...string) (stCred, *ecdsa.PrivateKey) {
	t.Helper()
	k := stECKey(t)
	body := map[string]any{"name": "es " + randomHex(3), "algorithm": "ES256", "public_key": stPEM(t, &k.PublicKey)}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	return stCreate(t, s, adminKey, body), k
}

func stEdDSA(t testing.TB, s *Server, adminKey string, scopes ...string) (stCred, ed25519.PrivateKey) {
	t.Helper()
	k := stEdKey(t)
	body := map[string]any{"name": "ed " + randomHex(3), "algorithm": "EdDSA", "public_key": stPEM(t, k.Public())}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	return stCreate(t, s, adminKey, body), k
}

func stMint(t testing.TB, p sdk.ServiceTokenParams) string {
	t.Helper()
	tok, err := sdk.MintServiceToken(p)
	if err != nil {
		t.Fatalf("MintServiceToken: %v", err)
	}
	return tok
}

func stMintPlatform(t testing.TB, p sdk.PlatformTokenParams) string {
	t.Helper()
	tok, err := sdk.MintPlatformToken(p)
	if err != nil {
		t.Fatalf("MintPlatformToken: %v", err)
	}
	return tok
}

// stClaims are well-formed claims for iss and aud, valid for 5 minutes.
func stClaims(iss, aud string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": iss, "aud": aud, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

// stWith copies c with the kv pairs set (a nil value deletes the claim).
func stWith(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// stSign signs claims with m and key under kid ("" for no kid).
func stSign(t testing.TB, m jwt.SigningMethod, kid string, c jwt.MapClaims, key any) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, c)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stB64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// stEthAddress is a fresh all-lowercase ethereum address.
func stEthAddress() string { return "0x" + randomHex(20) }

type stAudit struct{ Type, Environment, CredentialID, Actor, RequestID string }

// stAuditOf reads the lifecycle audit rows of one object, oldest first.
func stAuditOf(t testing.TB, b *Backend, partnerID, objectID string) []stAudit {
	t.Helper()
	db := OpenDB(t, b.URL)
	rows, err := db.Query(b.SQL("SELECT type, environment, credential_id, actor, request_id FROM audit_events WHERE partner_id = ? AND object_id = ? ORDER BY id"), partnerID, objectID)
	if err != nil {
		t.Fatalf("query audit_events: %v", err)
	}
	defer rows.Close()
	var out []stAudit
	for rows.Next() {
		var a stAudit
		if err := rows.Scan(&a.Type, &a.Environment, &a.CredentialID, &a.Actor, &a.RequestID); err != nil {
			t.Fatalf("scan audit_events: %v", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stWantScope checks a 403 insufficient_scope answer names scope.
func stWantScope(t testing.TB, r *Response, scope string) {
	t.Helper()
	e := wantError(t, r, 403, "insufficient_scope")
	if msg, _ := e["message"].(string); msg != "credential missing required scope: "+scope {
		t.Errorf("%s: message %q, want it to name %s", r, msg, scope)
	}
	if wa := r.Header.Get("WWW-Authenticate"); !strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `scope="`+scope+`"`) {
		t.Errorf("%s: WWW-Authenticate %q, want insufficient_scope for %s", r, wa, scope)
	}
}

// stNoSecretField fails when an answer shows a signing secret.
func stNoSecretField(t testing.TB, r *Response, secret string) {
	t.Helper()
	if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), secret[11:41]) || strings.Contains(string(r.Body), `"secret"`) {
		t.Errorf("answer shows the signing secret: %s", r)
	}
}

// Creating, reading and revoking service credentials (§2, §5).
func TestServiceTokenCredentials(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		admin := bearer(tn.Admin.Key)
		base := s.URL + "/v1/service_credentials"

		hs := stHS256(t, s, tn.Admin.Key, "read:balances")
		if hs.PublicKey != nil || hs.Environment != "test" || !slices.Equal(hs.Scopes, []string{"read:balances"}) {
			t.Errorf("HS256 credential: %+v", hs)
		}
		esKey := stECKey(t)
		esPEM := stPEM(t, &esKey.PublicKey)
		es := stCreate(t, s, tn.Admin.Key, map[string]any{"name": "ledger-sync", "algorithm": "ES256", "public_key": esPEM})
		if es.Secret != "" || es.PublicKey == nil || strings.TrimSpace(*es.PublicKey) != strings.TrimSpace(esPEM) ||
			!slices.Equal(es.Scopes, []string{"admin:all"}) || es.Name != "ledger-sync" {
			t.Errorf("ES256 credential (no scopes: admin:all, the PEM shown back): %+v", es)
		}
		ed, edKey := stEdDSA(t, s, tn.Admin.Key, "read", "write:addresses")
		if ed.Secret != "" || ed.PublicKey == nil ||
			!sameSet(ed.Scopes, []string{"read:balances", "read:funding", "read:addresses", "read:requests", "read:usage", "write:addresses"}) {
			t.Errorf("EdDSA credential (aliases expanded to canonical scopes): %+v", ed)
		}

		t.Run("the secret is never shown again", func(t *testing.T) {
			for _, c := range []stCred{hs, es, ed} {
				r := do(t, "GET", base+"/"+c.ID, admin, nil)
				wantStatus(t, r, 200)
				stNoSecretField(t, r, hs.Secret)
				if r.Str("id") != c.ID || r.Str("algorithm") != c.Algorithm || r.Str("object") != "service_credential" {
					t.Errorf("GET %s: %s", c.ID, r)
				}
			}
			r := do(t, "GET", base+"?limit=100", admin, nil)
			wantStatus(t, r, 200)
			stNoSecretField(t, r, hs.Secret)
			var ids []string
			for _, d := range r.Data() {
				id, _ := d["id"].(string)
				ids = append(ids, id)
			}
			// Newest first.
			if r.Str("object") != "list" || !slices.Equal(ids, []string{ed.ID, es.ID, hs.ID}) {
				t.Errorf("list: ids %v, want %v: %s", ids, []string{ed.ID, es.ID, hs.ID}, r)
			}
		})

		t.Run("an idempotent replay of the create leaves the secret out", func(t *testing.T) {
			h := admin.with("Idempotency-Key", "st-"+randomHex(8))
			body := map[string]any{"name": "replayed", "algorithm": "HS256"}
			first := do(t, "POST", base, h, body)
			wantStatus(t, first, 201)
			if !strings.HasPrefix(first.Str("secret"), "nx_test_ss_") {
				t.Fatalf("first answer without the secret: %s", first)
			}
			again := do(t, "POST", base, h, body)
			wantStatus(t, again, 201)
			if again.Header.Get("Idempotent-Replayed") != "true" || again.Str("id") != first.Str("id") {
				t.Errorf("not a replay of %s: %s", first.Str("id"), again)
			}
			stNoSecretField(t, again, first.Str("secret"))
		})

		t.Run("bad input", func(t *testing.T) {
			ecPEM := stPEM(t, &stECKey(t).PublicKey)
			edPEM := stPEM(t, stEdKey(t).Public())
			p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			cases := []struct {
				name        string
				body        map[string]any
				code, param string
			}{
				{"ES256 with a PEM that is not a key", map[string]any{"algorithm": "ES256", "public_key": "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"}, "parameter_invalid", "public_key"},
				{"ES256 with no PEM at all", map[string]any{"algorithm": "ES256", "public_key": "hello"}, "parameter_invalid", "public_key"},
				{"EdDSA with a P-256 key", map[string]any{"algorithm": "EdDSA", "public_key": ecPEM}, "parameter_invalid", "public_key"},
				{"ES256 with an Ed25519 key", map[string]any{"algorithm": "ES256", "public_key": edPEM}, "parameter_invalid", "public_key"},
				{"ES256 with a P-384 key", map[string]any{"algorithm": "ES256", "public_key": stPEM(t, &p384.PublicKey)}, "parameter_invalid", "public_key"},
				{"HS256 with a public key", map[string]any{"algorithm": "HS256", "public_key": edPEM}, "parameter_invalid", "public_key"},
				{"ES256 without a public key", map[string]any{"algorithm": "ES256"}, "parameter_missing", "public_key"},
				{"EdDSA without a public key", map[string]any{"algorithm": "EdDSA"}, "parameter_missing", "public_key"},
				{"no algorithm", map[string]any{"name": "x"}, "parameter_missing", "algorithm"},
				{"alg none", map[string]any{"algorithm": "none"}, "parameter_invalid", "algorithm"},
				{"RS256 (platform services only)", map[string]any{"algorithm": "RS256", "public_key": edPEM}, "parameter_invalid", "algorithm"},
				{"internal scope", map[string]any{"algorithm": "HS256", "scopes": []string{"internal:funding"}}, "invalid_scopes", "scopes"},
				{"unknown scope", map[string]any{"algorithm": "HS256", "scopes": []string{"read:everything"}}, "invalid_scopes", "scopes"},
				{"unknown field", map[string]any{"algorithm": "HS256", "secret": "mine"}, "parameter_unknown", "secret"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := do(t, "POST", base, admin, c.body)
					wantParam(t, r, wantError(t, r, 400, c.code), c.param)
				})
			}
		})

		t.Run("admin:all only", func(t *testing.T) {
			k := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read", "write")
			stWantScope(t, do(t, "POST", base, bearer(k.Key), map[string]any{"algorithm": "HS256"}), "admin:all")
			stWantScope(t, do(t, "GET", base, bearer(k.Key), nil), "admin:all")
			// Nor with a service token whose credential lacks it.
			tok := stMint(t, sdk.ServiceTokenParams{CredentialID: ed.ID, PrivateKey: edKey})
			stWantScope(t, do(t, "POST", base, bearer(tok), map[string]any{"algorithm": "HS256"}), "admin:all")
		})

		t.Run("tenancy", func(t *testing.T) {
			other := b.NewTenant(t, "approved")
			live := b.CreateKey(t, tn.Partner.ID, "live", "secret")
			for name, key := range map[string]string{"another partner": other.Admin.Key, "the live environment": live.Key} {
				for _, r := range []*Response{
					do(t, "GET", base+"/"+hs.ID, bearer(key), nil),
					do(t, "POST", base+"/"+hs.ID+"/revoke", bearer(key), nil),
				} {
					if r.Status != 404 {
						t.Errorf("%s: %s", name, r)
						continue
					}
					wantError(t, r, 404, "resource_missing")
				}
				r := do(t, "GET", base, bearer(key), nil)
				wantStatus(t, r, 200)
				if strings.Contains(string(r.Body), hs.ID) {
					t.Errorf("%s lists %s: %s", name, hs.ID, r)
				}
			}
		})

		t.Run("revoke", func(t *testing.T) {
			c, _ := stEdDSA(t, s, tn.Admin.Key)
			r := do(t, "POST", base+"/"+c.ID+"/revoke", admin, nil)
			wantStatus(t, r, 200)
			if r.Str("status") != "revoked" || r.Str("revoked_at") == "" || r.Str("id") != c.ID {
				t.Errorf("revoke answer: %s", r)
			}
			wantError(t, do(t, "POST", base+"/"+c.ID+"/revoke", admin, nil), 409, "invalid_state")
			wantError(t, do(t, "POST", base+"/sc_unknown/revoke", admin, nil), 404, "resource_missing")
			r = do(t, "GET", base+"/"+c.ID, admin, nil)
			wantStatus(t, r, 200)
			if r.Str("status") != "revoked" {
				t.Errorf("GET after revoke: %s", r)
			}
		})
	})
}

// Tokens reach what their permissions allow, and the audit log names the
// `service` claim as the actor of a change made with one.
func TestServiceTokenAccess(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		hs := stHS256(t, s, tn.Admin.Key, "read:balances", "write:addresses")
		es, esKey := stES256(t, s, tn.Admin.Key, "write:addresses", "read:balances")
		ed, edKey := stEdDSA(t, s, tn.Admin.Key) // admin:all

		t.Run("permissions narrow the credential", func(t *testing.T) {
			tok := stMint(t, sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret, Service: "balance-reader", Permissions: []string{"read:balances"}})
			r := partnerAs(t, s, bearer(tok))
			wantStatus(t, r, 200)
			if r.Str("id") != tn.Partner.ID || r.Str("environment") != "test" || r.Str("credential.id") != hs.ID ||
				r.Str("credential.type") != "service_token" || !slices.Equal(r.Strs("credential.scopes"), []string{"read:balances"}) {
				t.Errorf("GET /v1/partner with a service token: %s", r)
			}
			r = do(t, "GET", s.URL+"/v1/balances", bearer(tok), nil)
			wantStatus(t, r, 200)
			if len(r.Data()) != 3 {
				t.Errorf("balances: %s", r)
			}
			wantStatus(t, do(t, "GET", s.URL+"/v1/balances/usdc", bearer(tok), nil), 200)
			stWantScope(t, do(t, "GET", s.URL+"/v1/funding", bearer(tok), nil), "read:funding")
			stWantScope(t, do(t, "POST", s.URL+"/v1/addresses", bearer(tok), map[string]any{"network": "ethereum", "address": stEthAddress()}), "write:addresses")
			stWantScope(t, do(t, "GET", s.URL+"/v1/api_keys", bearer(tok), nil), "admin:all")
			stWantScope(t, do(t, "POST", s.URL+"/internal/v1/funding", bearer(tok), map[string]any{"amount": 1, "currency": "usdc"}), "internal:funding")
		})

		t.Run("no permissions claim: the credential's scopes", func(t *testing.T) {
			tok := stMint(t, sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret})
			r := partnerAs(t, s, bearer(tok))
			wantStatus(t, r, 200)
			if !sameSet(r.Strs("credential.scopes"), []string{"read:balances", "write:addresses"}) {
				t.Errorf("scopes: %s", r)
			}
			wantStatus(t, do(t, "GET", s.URL+"/v1/addresses", bearer(tok), nil), 200) // write implies read
			stWantScope(t, do(t, "GET", s.URL+"/v1/requests", bearer(tok), nil), "read:requests")
		})

		t.Run("an admin credential", func(t *testing.T) {
			tok := stMint(t, sdk.ServiceTokenParams{CredentialID: ed.ID, PrivateKey: edKey, Service: "ops"})
			wantStatus(t, do(t, "GET", s.URL+"/v1/funding", bearer(tok), nil), 200)
			wantStatus(t, do(t, "GET", s.URL+"/v1/api_keys", bearer(tok), nil), 200)
			// admin:all is every partner scope, no internal one.
			stWantScope(t, do(t, "POST", s.URL+"/internal/v1/funding", bearer(tok), map[string]any{"amount": 1, "currency": "usdc", "status": "completed"}), "internal:funding")
		})

		t.Run("the audit log names the service", func(t *testing.T) {
			for _, c := range []struct {
				alg, cred, service, actor string
				tok                       string
			}{
				{"HS256", hs.ID, "address-book", "address-book", stMint(t, sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret, Service: "address-book", Permissions: []string{"write:addresses"}})},
				{"ES256", es.ID, "payout-svc", "payout-svc", stMint(t, sdk.ServiceTokenParams{CredentialID: es.ID, PrivateKey: esKey, Service: "payout-svc"})},
				{"EdDSA", ed.ID, "ops-console", "ops-console", stMint(t, sdk.ServiceTokenParams{CredentialID: ed.ID, PrivateKey: edKey, Service: "ops-console", Lifetime: time.Hour})},
				{"ES256 without service", es.ID, "", es.ID, stMint(t, sdk.ServiceTokenParams{CredentialID: es.ID, PrivateKey: esKey})},
			} {
				t.Run(c.alg, func(t *testing.T) {
					r := do(t, "POST", s.URL+"/v1/addresses", bearer(c.tok), map[string]any{"network": "ethereum", "address": stEthAddress(), "label": c.alg})
					wantStatus(t, r, 201)
					id := r.Str("id")
					rows := stAuditOf(t, b, tn.Partner.ID, id)
					want := []stAudit{{Type: "address.created", Environment: "test", CredentialID: c.cred, Actor: c.actor, RequestID: r.Header.Get("X-Request-Id")}}
					if !slices.Equal(rows, want) {
						t.Errorf("audit rows of %s:\n got %+v\nwant %+v", id, rows, want)
					}
					// Archived with the same token: a second row, same actor.
					r = do(t, "DELETE", s.URL+"/v1/addresses/"+id, bearer(c.tok), nil)
					wantStatus(t, r, 200)
					rows = stAuditOf(t, b, tn.Partner.ID, id)
					if len(rows) != 2 || rows[1].Type != "address.archived" || rows[1].Actor != c.actor || rows[1].CredentialID != c.cred {
						t.Errorf("audit rows after archiving %s: %+v", id, rows)
					}
				})
			}
		})

		t.Run("a live credential", func(t *testing.T) {
			liveKey := b.CreateKey(t, tn.Partner.ID, "live", "secret")
			lc := stHS256(t, s, liveKey.Key, "read:balances")
			if lc.Environment != "live" || !strings.HasPrefix(lc.Secret, "nx_live_ss_") {
				t.Fatalf("live credential: %+v", lc)
			}
			r := partnerAs(t, s, bearer(stMint(t, sdk.ServiceTokenParams{CredentialID: lc.ID, Secret: lc.Secret})))
			wantStatus(t, r, 200)
			if r.Str("environment") != "live" {
				t.Errorf("live token: %s", r)
			}
		})
	})
}

// Every refusal of the issue, over HTTP (401, CONTRACT §2 and §4), on a
// dedicated server (its log must stay free of errors; a revocation across
// instances is TestServiceTokenRevokedAcrossInstances). Each case is a subtest, so
// it has a client IP of its own and the failed-authentication lockout of
// §8 does not interfere.
func TestServiceTokenRefusals(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.NewServer(t)
		tn := b.NewTenant(t, "approved")
		hs := stHS256(t, s, tn.Admin.Key, "read:balances", "write:addresses")
		es, esKey := stES256(t, s, tn.Admin.Key, "read:balances")
		ed, edKey := stEdDSA(t, s, tn.Admin.Key, "read")
		liveKey := b.CreateKey(t, tn.Partner.ID, "live", "secret")
		live := stHS256(t, s, liveKey.Key, "read:balances")

		call := func(t *testing.T, tok string) *Response {
			t.Helper()
			return partnerAs(t, s, bearer(tok))
		}

		now := time.Now()
		hsKey := []byte(hs.Secret)
		good := stClaims(hs.ID, "nexus-api")
		valid := stSign(t, jwt.SigningMethodHS256, hs.ID, good, hsKey)
		wantStatus(t, call(t, valid), 200)
		parts := strings.Split(valid, ".")

		cases := []struct {
			name, tok, code string
		}{
			{"alg none", stB64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": hs.ID}) + "." + stB64JSON(t, good) + ".", "invalid_token"},
			{"alg none with the real signature kept", stB64JSON(t, map[string]any{"alg": "none", "kid": hs.ID}) + "." + parts[1] + "." + parts[2], "invalid_token"},
			{"HS256 keyed with the ES256 credential's public key", stSign(t, jwt.SigningMethodHS256, es.ID, stClaims(es.ID, "nexus-api"), []byte(*es.PublicKey)), "invalid_token"},
			{"HS256 keyed with the ES256 PEM as uploaded", stSign(t, jwt.SigningMethodHS256, es.ID, stClaims(es.ID, "nexus-api"), []byte(stPEM(t, &esKey.PublicKey))), "invalid_token"},
			{"HS256 keyed with the EdDSA credential's public key", stSign(t, jwt.SigningMethodHS256, ed.ID, stClaims(ed.ID, "nexus-api"), []byte(*ed.PublicKey)), "invalid_token"},
			{"tampered payload", parts[0] + "." + stB64JSON(t, stWith(good, "permissions", []string{"admin:all"})) + "." + parts[2], "invalid_token"},
			{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "invalid_token"},
			{"unknown kid", stSign(t, jwt.SigningMethodHS256, "sc_"+randomHex(12), stClaims("sc_x", "nexus-api"), hsKey), "invalid_token"},
			{"missing kid", stSign(t, jwt.SigningMethodHS256, "", good, hsKey), "invalid_token"},
			{"wrong aud", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "aud", "nexus-internal"), hsKey), "invalid_token"},
			{"wrong iss", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "iss", es.ID), hsKey), "invalid_token"},
			{"missing exp", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "exp", nil), hsKey), "invalid_token"},
			{"missing iat", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "iat", nil), hsKey), "invalid_token"},
			{"expired 2 minutes ago", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "iat", now.Add(-10*time.Minute).Unix(), "nbf", nil, "exp", now.Add(-2*time.Minute).Unix()), hsKey), "token_expired"},
			{"nbf 2 minutes ahead", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "nbf", now.Add(2*time.Minute).Unix()), hsKey), "invalid_token"},
			{"lifetime 3601 s", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "iat", now.Add(-time.Minute).Unix(), "exp", now.Add(59*time.Minute+time.Second).Unix()), hsKey), "invalid_token"},
			{"permissions beyond the credential's", stMint(t, sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret, Permissions: []string{"read:balances", "read:funding"}}), "invalid_token"},
			{"admin permission on a read credential", stMint(t, sdk.ServiceTokenParams{CredentialID: ed.ID, PrivateKey: edKey, Permissions: []string{"admin:all"}}), "invalid_token"},
			{"a test credential's token with env live", stSign(t, jwt.SigningMethodHS256, hs.ID, stWith(good, "env", "live"), hsKey), "invalid_token"},
			{"a live credential's token with env test", stSign(t, jwt.SigningMethodHS256, live.ID, stWith(stClaims(live.ID, "nexus-api"), "env", "test"), []byte(live.Secret)), "invalid_token"},
			{"signed with another credential's secret", stSign(t, jwt.SigningMethodHS256, live.ID, stClaims(live.ID, "nexus-api"), hsKey), "invalid_token"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantError(t, call(t, c.tok), 401, c.code)
			})
		}

		t.Run("the 30 s leeway", func(t *testing.T) {
			late := stSign(t, jwt.SigningMethodES256, es.ID, stWith(stClaims(es.ID, "nexus-api"), "iat", now.Add(-5*time.Minute).Unix(), "nbf", nil, "exp", now.Add(-10*time.Second).Unix()), esKey)
			wantStatus(t, call(t, late), 200)
			early := stSign(t, jwt.SigningMethodES256, es.ID, stWith(stClaims(es.ID, "nexus-api"), "nbf", now.Add(10*time.Second).Unix()), esKey)
			wantStatus(t, call(t, early), 200)
		})

	})
}

// A revoked service credential's token is refused at once by the instance
// that revoked it, and by another one that had it cached within 1 s
// (serial: it measures that second; the delay is logged).
func TestServiceTokenRevokedAcrossInstances(t *testing.T) {
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		s := b.NewServer(t)
		tn := b.NewTenant(t, "approved")
		call := func(t *testing.T, tok string) *Response {
			t.Helper()
			return partnerAs(t, s, bearer(tok))
		}
		doomed, key := stEdDSA(t, s, tn.Admin.Key)
		tok := stMint(t, sdk.ServiceTokenParams{CredentialID: doomed.ID, PrivateKey: key, Service: "soon-gone"})
		shared := b.Server(t)
		for i := 0; i < 2; i++ { // both instances verify and cache it
			wantStatus(t, call(t, tok), 200)
			wantStatus(t, partnerAs(t, shared, bearer(tok)), 200)
		}
		wantStatus(t, do(t, "POST", s.URL+"/v1/service_credentials/"+doomed.ID+"/revoke", bearer(tn.Admin.Key), nil), 200)
		wantError(t, call(t, tok), 401, "invalid_token")
		wantError(t, call(t, stMint(t, sdk.ServiceTokenParams{CredentialID: doomed.ID, PrivateKey: key})), 401, "invalid_token")

		// The other instance hears of it within a second.
		var last *Response
		took, ok := poll(3*time.Second, 50*time.Millisecond, func() bool {
			last = partnerAs(t, shared, bearer(tok))
			return last.Status != 200
		})
		if !ok {
			t.Fatalf("the other instance still accepts a revoked credential's token after %s: %s", took, last)
		}
		wantError(t, last, 401, "invalid_token")
		if took >= time.Second {
			t.Errorf("the other instance refused the revoked credential's token after %s, want < 1s", took)
		}
		t.Logf("%s: the other instance refused the revoked credential's token after %s", b.Name, took.Round(time.Millisecond))
	})
}

// stPlatform registers a platform service through the CLI with an Ed25519
// key and returns its id, name and private key.
func stPlatform(t *testing.T, b *Backend, perms string) (id, name string, key ed25519.PrivateKey) {
	t.Helper()
	key = stEdKey(t)
	file := filepath.Join(t.TempDir(), "svc.pem")
	if err := os.WriteFile(file, []byte(stPEM(t, key.Public())), 0o600); err != nil {
		t.Fatal(err)
	}
	name = "payments-" + randomHex(4)
	out := b.CLI(t, "admin", "service", "create", "--name", name, "--public-key", file, "--permissions", perms)
	var svc struct {
		Object, ID, Name, Algorithm, Status, PublicKey string
		Permissions                                    []string
	}
	decodeJSON(t, "admin service create", out, &svc)
	if !strings.HasPrefix(svc.ID, "svc_") || svc.Name != name || svc.Algorithm != "EdDSA" || svc.Status != "active" ||
		!sameSet(svc.Permissions, strings.Split(perms, ",")) {
		t.Fatalf("admin service create: %s", out)
	}
	return svc.ID, name, key
}

// Platform services drive /internal/v1/* for the partner named in `sub`
// (CONTRACT §2, §5), and nothing else reaches it.
func TestPlatformInternalAPI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		svcID, svcName, svcKey := stPlatform(t, b, "internal:funding,internal:requests")
		a := b.NewTenant(t, "approved")
		other := b.NewTenant(t, "approved")
		platform := func(partnerID, env string, perms ...string) H {
			return bearer(stMintPlatform(t, sdk.PlatformTokenParams{ServiceID: svcID, PrivateKey: svcKey, Partner: partnerID, Environment: env, Permissions: perms}))
		}
		balance := func(t *testing.T, currency string) (available, pending float64) {
			t.Helper()
			r := do(t, "GET", s.URL+"/v1/balances/"+currency, bearer(a.Admin.Key), nil)
			wantStatus(t, r, 200)
			available, _ = r.Get("available").(float64)
			pending, _ = r.Get("pending").(float64)
			return
		}

		// Credit A with a completed deposit.
		r := do(t, "POST", s.URL+"/internal/v1/funding", platform(a.Partner.ID, "test"), map[string]any{"amount": 1000, "currency": "usdc", "status": "completed"})
		wantStatus(t, r, 201)
		if r.Str("object") != "funding" || r.Str("status") != "completed" || r.Get("amount") != float64(1000) || r.Str("environment") != "test" {
			t.Fatalf("internal funding: %s", r)
		}
		fundingID := r.Str("id")
		if av, pe := balance(t, "usdc"); av != 1000 || pe != 0 {
			t.Fatalf("A's usdc after the internal funding: available %v pending %v, want 1000/0", av, pe)
		}
		rows := stAuditOf(t, b, a.Partner.ID, fundingID)
		if len(rows) != 2 || rows[0].Type != "funding.created" || rows[1].Type != "funding.completed" {
			t.Errorf("audit rows of %s: %+v", fundingID, rows)
		}
		for _, row := range rows {
			if row.Actor != svcName || row.CredentialID != svcID || row.Environment != "test" {
				t.Errorf("audit row %+v: want actor %s, credential %s", row, svcName, svcID)
			}
		}
		// The partner sees the deposit; the other partner does not.
		wantStatus(t, do(t, "GET", s.URL+"/v1/funding/"+fundingID, bearer(a.Admin.Key), nil), 200)
		wantError(t, do(t, "GET", s.URL+"/v1/funding/"+fundingID, bearer(other.Admin.Key), nil), 404, "resource_missing")

		t.Run("pending funding completed later", func(t *testing.T) {
			r := do(t, "POST", s.URL+"/internal/v1/funding", platform(a.Partner.ID, "test"), map[string]any{"amount": 250, "currency": "btc"})
			wantStatus(t, r, 201)
			if r.Str("status") != "pending" {
				t.Fatalf("funding without status: %s", r)
			}
			if av, _ := balance(t, "btc"); av != 0 {
				t.Errorf("a pending deposit credited %v", av)
			}
			wantError(t, do(t, "POST", s.URL+"/internal/v1/funding/"+r.Str("id")+"/complete", platform(other.Partner.ID, "test"), nil), 404, "resource_missing")
			c := do(t, "POST", s.URL+"/internal/v1/funding/"+r.Str("id")+"/complete", platform(a.Partner.ID, "test"), nil)
			wantStatus(t, c, 200)
			if c.Str("status") != "completed" {
				t.Errorf("complete: %s", c)
			}
			if av, _ := balance(t, "btc"); av != 250 {
				t.Errorf("btc after completion: %v, want 250", av)
			}
		})

		// A withdrawal made with the partner's key, driven by the platform.
		ad := do(t, "POST", s.URL+"/v1/addresses", bearer(a.Admin.Key), map[string]any{"network": "ethereum", "address": stEthAddress()})
		wantStatus(t, ad, 201)
		req := do(t, "POST", s.URL+"/v1/requests", bearer(a.Admin.Key), map[string]any{"type": "withdrawal", "amount": 400, "currency": "usdc", "address_id": ad.Str("id")})
		wantStatus(t, req, 201)
		reqID := req.Str("id")
		if req.Str("status") != "pending" {
			t.Fatalf("new request: %s", req)
		}
		if av, pe := balance(t, "usdc"); av != 600 || pe != 400 {
			t.Fatalf("after the withdrawal: available %v pending %v, want 600/400", av, pe)
		}
		reqStatus := func(t *testing.T) string {
			t.Helper()
			r := do(t, "GET", s.URL+"/v1/requests/"+reqID, bearer(a.Admin.Key), nil)
			wantStatus(t, r, 200)
			return r.Str("status")
		}

		t.Run("another partner's token cannot touch A's request", func(t *testing.T) {
			for _, action := range []string{"process", "complete", "fail"} {
				wantError(t, do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/"+action, platform(other.Partner.ID, "test"), nil), 404, "resource_missing")
				// A's own partner in the other environment neither.
				wantError(t, do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/"+action, platform(a.Partner.ID, "live"), nil), 404, "resource_missing")
			}
			if st := reqStatus(t); st != "pending" {
				t.Errorf("A's request is %s after the refused calls, want pending", st)
			}
			if av, pe := balance(t, "usdc"); av != 600 || pe != 400 {
				t.Errorf("A's balance changed: %v/%v", av, pe)
			}
		})

		t.Run("what does not reach /internal/v1", func(t *testing.T) {
			body := map[string]any{"amount": 1000, "currency": "usdc", "status": "completed"}
			stWantScope(t, do(t, "POST", s.URL+"/internal/v1/funding", bearer(a.Admin.Key), body), "internal:funding")
			stWantScope(t, do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/process", bearer(a.Admin.Key), nil), "internal:requests")
			sc, scKey := stEdDSA(t, s, a.Admin.Key) // admin:all
			tok := bearer(stMint(t, sdk.ServiceTokenParams{CredentialID: sc.ID, PrivateKey: scKey, Service: "sneaky"}))
			stWantScope(t, do(t, "POST", s.URL+"/internal/v1/funding", tok, body), "internal:funding")
			stWantScope(t, do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/complete", tok, nil), "internal:requests")
			// A partner token with the internal audience, sub and env.
			forged := stSign(t, jwt.SigningMethodEdDSA, sc.ID, stWith(stClaims(sc.ID, "nexus-internal"), "sub", a.Partner.ID, "env", "test"), scKey)
			wantError(t, do(t, "POST", s.URL+"/internal/v1/funding", bearer(forged), body), 401, "invalid_token")
			// A platform token narrowed to internal:funding cannot drive requests.
			stWantScope(t, do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/process", platform(a.Partner.ID, "test", "internal:funding"), nil), "internal:requests")
			if av, pe := balance(t, "usdc"); av != 600 || pe != 400 {
				t.Errorf("A's balance changed: %v/%v", av, pe)
			}
			if st := reqStatus(t); st != "pending" {
				t.Errorf("A's request is %s, want pending", st)
			}
		})

		t.Run("platform tokens do not reach the partner API", func(t *testing.T) {
			h := platform(a.Partner.ID, "test")
			stWantScope(t, do(t, "GET", s.URL+"/v1/balances", h, nil), "read:balances")
			stWantScope(t, do(t, "GET", s.URL+"/v1/api_keys", h, nil), "admin:all")
		})

		t.Run("platform token refusals", func(t *testing.T) {
			now := time.Now()
			good := stWith(stClaims(svcID, "nexus-internal"), "sub", a.Partner.ID, "env", "test")
			sign := func(c jwt.MapClaims) H { return bearer(stSign(t, jwt.SigningMethodEdDSA, svcID, c, svcKey)) }
			body := map[string]any{"amount": 1, "currency": "usdc", "status": "completed"}
			for _, c := range []struct {
				name string
				h    H
				code string
			}{
				{"missing sub", sign(stWith(good, "sub", nil)), "invalid_token"},
				{"unknown partner", sign(stWith(good, "sub", "ptr_"+randomHex(12))), "invalid_token"},
				{"bad env", sign(stWith(good, "env", "prod")), "invalid_token"},
				{"missing env", sign(stWith(good, "env", nil)), "invalid_token"},
				{"lifetime 901 s", sign(stWith(good, "iat", now.Add(-time.Minute).Unix(), "exp", now.Add(14*time.Minute+time.Second).Unix())), "invalid_token"},
				{"aud nexus-api", sign(stWith(good, "aud", "nexus-api")), "invalid_token"},
				{"SDK with aud nexus-api", bearer(stMintPlatform(t, sdk.PlatformTokenParams{ServiceID: svcID, PrivateKey: svcKey, Partner: a.Partner.ID, Environment: "test", Audience: "nexus-api"})), "invalid_token"},
				{"alg none", bearer(stB64JSON(t, map[string]any{"alg": "none", "kid": svcID}) + "." + stB64JSON(t, good) + "."), "invalid_token"},
				{"signed by another key", bearer(stSign(t, jwt.SigningMethodEdDSA, svcID, good, stEdKey(t))), "invalid_token"},
				{"expired", sign(stWith(good, "iat", now.Add(-10*time.Minute).Unix(), "nbf", nil, "exp", now.Add(-2*time.Minute).Unix())), "token_expired"},
			} {
				t.Run(c.name, func(t *testing.T) {
					wantError(t, do(t, "POST", s.URL+"/internal/v1/funding", c.h, body), 401, c.code)
				})
			}
			if av, _ := balance(t, "usdc"); av != 600 {
				t.Errorf("A's available usdc %v after refused fundings, want 600", av)
			}
		})

		// Process, then complete: pending goes back to 0.
		h := platform(a.Partner.ID, "test")
		r = do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/process", h, nil)
		wantStatus(t, r, 200)
		if r.Str("status") != "processing" || r.Str("id") != reqID {
			t.Fatalf("process: %s", r)
		}
		if av, pe := balance(t, "usdc"); av != 600 || pe != 400 {
			t.Errorf("processing: available %v pending %v, want 600/400", av, pe)
		}
		wantError(t, do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/process", h, nil), 409, "invalid_state")
		r = do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/complete", h, nil)
		wantStatus(t, r, 200)
		if r.Str("status") != "completed" {
			t.Fatalf("complete: %s", r)
		}
		if av, pe := balance(t, "usdc"); av != 600 || pe != 0 {
			t.Errorf("completed: available %v pending %v, want 600/0", av, pe)
		}
		wantError(t, do(t, "POST", s.URL+"/internal/v1/requests/"+reqID+"/fail", h, nil), 409, "invalid_state")
		rows = stAuditOf(t, b, a.Partner.ID, reqID)
		var types []string
		for _, row := range rows {
			types = append(types, row.Type+"/"+row.Actor)
		}
		want := []string{"request.created/" + a.Admin.ID, "request.processing/" + svcName, "request.completed/" + svcName}
		if !slices.Equal(types, want) {
			t.Errorf("audit rows of %s: %v, want %v", reqID, types, want)
		}
	})
}

// Platform services take Ed25519, P-256 or RSA ≥ 2048 public keys
// (CONTRACT §2); the CLI refuses anything else.
func TestPlatformServiceCLI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		write := func(t *testing.T, pemText string) string {
			f := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(f, []byte(pemText), 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
		t.Run("P-256", func(t *testing.T) {
			k := stECKey(t)
			out, errOut, err := b.RunCLI("admin", "service", "create", "--name", "p256-"+randomHex(4), "--public-key", write(t, stPEM(t, &k.PublicKey)), "--permissions", "internal:funding")
			if err != nil {
				t.Fatalf("admin service create with a P-256 key: %v\n%s%s", err, out, errOut)
			}
			var svc map[string]any
			decodeJSON(t, "admin service create", out, &svc)
			if svc["algorithm"] != "ES256" {
				t.Fatalf("P-256 service: %s", out)
			}
			// And its tokens work.
			s := b.Server(t)
			tn := b.NewTenant(t, "approved")
			tok := stMintPlatform(t, sdk.PlatformTokenParams{ServiceID: svc["id"].(string), PrivateKey: k, Partner: tn.Partner.ID, Environment: "test"})
			wantStatus(t, do(t, "POST", s.URL+"/internal/v1/funding", bearer(tok), map[string]any{"amount": 5, "currency": "usdt", "status": "completed"}), 201)
		})
		for _, c := range []struct{ name, pem, perms string }{
			{"P-384 key", func() string { k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader); return stPEM(t, &k.PublicKey) }(), "internal:funding"},
			{"not a key", "-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n", "internal:funding"},
			{"partner permission", stPEM(t, stEdKey(t).Public()), "read:balances"},
			{"no permission", stPEM(t, stEdKey(t).Public()), ""},
		} {
			t.Run("refuses "+c.name, func(t *testing.T) {
				out, errOut, err := b.RunCLI("admin", "service", "create", "--name", "bad-"+randomHex(4), "--public-key", write(t, c.pem), "--permissions", c.perms)
				if err == nil {
					t.Fatalf("accepted: %s", out)
				}
				if len(errOut) == 0 {
					t.Errorf("no message on stderr (stdout %s)", out)
				}
			})
		}
	})
}

// No HS256 signing secret is stored in clear (CONTRACT §2: encrypted with
// AES-256-GCM under NEXUS_MASTER_KEY), nor logged, even after idempotent
// creates (whose answers are stored for replay), use and revocation.
func TestServiceTokenNoSecretStored(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		liveKey := b.CreateKey(t, tn.Partner.ID, "live", "secret")
		var creds []stCred
		creds = append(creds, stHS256(t, s, tn.Admin.Key, "read:balances"), stHS256(t, s, liveKey.Key))
		r := do(t, "POST", s.URL+"/v1/service_credentials", bearer(tn.Admin.Key).with("Idempotency-Key", "st-"+randomHex(6)), map[string]any{"algorithm": "HS256", "name": "idem"})
		wantStatus(t, r, 201)
		var idem stCred
		r.Decode(t, &idem)
		creds = append(creds, idem)
		var served []string // request ids
		for _, c := range creds {
			tok := stMint(t, sdk.ServiceTokenParams{CredentialID: c.ID, Secret: c.Secret, Service: "scan"})
			r := partnerAs(t, s, bearer(tok))
			wantStatus(t, r, 200)
			served = append(served, r.Header.Get("X-Request-Id"))
			// and a failing one, signed with a corrupted secret
			bad := stMint(t, sdk.ServiceTokenParams{CredentialID: c.ID, Secret: c.Secret + "x"})
			wantError(t, partnerAs(t, s, bearer(bad)), 401, "invalid_token")
		}
		r = do(t, "POST", s.URL+"/v1/service_credentials/"+creds[0].ID+"/revoke", bearer(tn.Admin.Key), nil)
		wantStatus(t, r, 200)
		// Access records are written in batches: the scan waits for them.
		awaitAccessLogged(t, b, tn.Partner.ID, append(served, r.Header.Get("X-Request-Id"))...)

		db := OpenDB(t, b.URL)
		cells := dumpDatabase(t, b.Name, db)
		for _, c := range creds {
			random := c.Secret[11:41]
			forbidden := map[string]string{
				"the secret":           c.Secret,
				"its random part":      random,
				"the secret in hex":    hex.EncodeToString([]byte(c.Secret)),
				"the secret in base64": base64.StdEncoding.EncodeToString([]byte(c.Secret)),
				"the secret base64url": base64.RawURLEncoding.EncodeToString([]byte(c.Secret)),
			}
			seen := false
			for _, cell := range cells {
				seen = seen || strings.Contains(cell.text, c.ID)
				for what, needle := range forbidden {
					if strings.Contains(cell.text, needle) {
						t.Errorf("%s.%s holds %s of %s", cell.table, cell.column, what, c.ID)
					}
				}
			}
			if !seen {
				t.Errorf("%s appears nowhere in the database: the scan did not see the server's data", c.ID)
			}
			var enc string
			if err := db.QueryRow(b.SQL("SELECT secret_enc FROM service_credentials WHERE id = ?"), c.ID).Scan(&enc); err != nil {
				t.Fatalf("secret_enc of %s: %v", c.ID, err)
			}
			if !strings.HasPrefix(enc, "v1:") || len(enc) < 40 {
				t.Errorf("secret_enc of %s is not a sealed secret: %q", c.ID, enc)
			}
			if strings.Contains(s.Logs(), random) {
				t.Errorf("the server log holds the signing secret of %s", c.ID)
			}
		}
	})
}
