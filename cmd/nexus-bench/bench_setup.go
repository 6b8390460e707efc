package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// benchCreds are the credentials and objects the scenarios use.
type benchCreds struct {
	PartnerID  string
	APIKey     string // test secret key (admin:all)
	OAuthToken string // nx_test_at_…
	// OAuthClientID and OAuthClientSecret authenticate the confidential
	// client the token was issued to (introspection).
	OAuthClientID, OAuthClientSecret string
	HS256Token                       string   // service JWT, 1 h
	EdDSAToken                       string   // service JWT, 1 h
	AddressID                        string   // ethereum address for withdrawals
	FundedMinor                      int64    // usdc credited for POST /v1/requests
	ManyKeys                         []string // more test secret keys of the partner, for the scenarios of many keys
}

// benchRateLimit is the partner's per-credential limit: far above what two
// cores can serve, so the limiter is exercised but never refuses.
const benchRateLimit = 100_000_000

// setupDatabase prepares a fresh database before the server starts: the
// schema, the partner and its key through the services (as the admin CLI
// does), and an OAuth access token through the OAuth service (the same
// steps as the login, consent and token endpoints, without driving HTML
// forms).
func setupDatabase(ctx context.Context, dbURL string, manyKeys int) (*benchCreds, error) {
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.MigrateUp(ctx); err != nil {
		return nil, fmt.Errorf("migrate up: %w", err)
	}
	p, err := partner.NewService(db).Create(ctx, partner.CreateParams{Name: "Bench partner", Status: nexus.PartnerApproved, RateLimit: benchRateLimit})
	if err != nil {
		return nil, fmt.Errorf("creating the partner: %w", err)
	}
	k, err := apikey.NewService(db).Create(ctx, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}, apikey.CreateParams{Type: apikey.Secret, Name: "bench"})
	if err != nil {
		return nil, fmt.Errorf("creating the API key: %w", err)
	}
	oc, err := oauthToken(ctx, db, p.ID)
	if err != nil {
		return nil, fmt.Errorf("oauth token: %w", err)
	}
	many, err := createKeys(ctx, db, p.ID, manyKeys)
	if err != nil {
		return nil, fmt.Errorf("creating %d keys: %w", manyKeys, err)
	}
	return &benchCreds{PartnerID: p.ID, APIKey: k.Plain, OAuthToken: oc.token, OAuthClientID: oc.clientID, OAuthClientSecret: oc.secret, ManyKeys: many}, nil
}

// createKeys makes n test secret keys for the partner, through the key
// service (the admin CLI would open the database n times).
func createKeys(ctx context.Context, db *store.DB, partnerID string, n int) ([]string, error) {
	if n == 0 {
		return nil, nil
	}
	keys := apikey.NewService(db)
	out := make([]string, n)
	// A few at a time: PostgreSQL commits them in parallel, SQLite in turn.
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				k, err := keys.Create(ctx, nexus.Tenant{PartnerID: partnerID, Environment: nexus.Test}, apikey.CreateParams{Name: fmt.Sprintf("bench-%d", i)})
				if err != nil {
					errs <- err
					return
				}
				out[i] = k.Plain
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return out, first
}

// oauthToken registers a confidential client for the partner's test
// environment, has a member of the partner consent, and exchanges the code
// (with PKCE) for an access token.
// oauthClient is the bench's OAuth client and the access token issued to it.
type oauthClient struct{ token, clientID, secret string }

func oauthToken(ctx context.Context, db *store.DB, partnerID string) (oauthClient, error) {
	var none oauthClient
	svc := oauth.NewService(db)
	const redirect = "http://127.0.0.1/bench/callback"
	cv, err := svc.CreateClient(ctx, nexus.Tenant{PartnerID: partnerID, Environment: nexus.Test}, oauth.CreateClientParams{
		Name: "Bench app", Type: oauth.Confidential, RedirectURIs: []string{redirect},
		Scopes: []string{"read:balances", "read:funding", "read:addresses", "write:addresses", "read:requests", "write:requests"},
	})
	if err != nil {
		return none, err
	}
	password := randomHex(16)
	email := "bench-" + randomHex(4) + "@example.com"
	if _, err := svc.CreateMember(ctx, partnerID, email, password); err != nil {
		return none, err
	}
	sessTok, err := svc.Login(ctx, email, password)
	if err != nil {
		return none, err
	}
	sess, err := svc.Session(ctx, sessTok)
	if err != nil || sess == nil {
		return none, fmt.Errorf("no session after login: %v", err)
	}
	verifier := base64.RawURLEncoding.EncodeToString([]byte(randomHex(32)))
	sum := sha256.Sum256([]byte(verifier))
	ar, err := svc.ValidateAuthorize(ctx, url.Values{
		"client_id": {cv.ClientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {randomHex(8)},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	})
	if err != nil {
		return none, err
	}
	code, err := svc.Approve(ctx, sess, ar, nexus.PartnerApproved)
	if err != nil {
		return none, err
	}
	client, err := svc.AuthenticateClient(ctx, oauth.ClientAuth{ID: cv.ClientID, Secret: cv.ClientSecret, Basic: true})
	if err != nil {
		return none, err
	}
	tr, err := svc.ExchangeCode(ctx, client, code, redirect, verifier)
	if err != nil {
		return none, err
	}
	return oauthClient{token: tr.AccessToken, clientID: cv.ClientID, secret: cv.ClientSecret}, nil
}

// setupAPI makes, through the running server's API, what a partner's
// services would: HS256 and EdDSA service credentials (and a token of each,
// minted with the SDK for an hour and then reused, as services do), a
// completed test deposit and a payout address.
func setupAPI(ctx context.Context, addr string, c *benchCreds) error {
	api := &benchAPI{base: "http://" + addr, key: c.APIKey, client: &http.Client{Timeout: 30 * time.Second}}

	var hs struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := api.post(ctx, "/v1/service_credentials", map[string]any{"name": "bench-hs256", "algorithm": "HS256"}, &hs); err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	var ed struct {
		ID string `json:"id"`
	}
	if err := api.post(ctx, "/v1/service_credentials", map[string]any{"name": "bench-eddsa", "algorithm": "EdDSA", "public_key": pemText}, &ed); err != nil {
		return err
	}
	if c.HS256Token, err = sdk.MintServiceToken(sdk.ServiceTokenParams{
		CredentialID: hs.ID, Secret: hs.Secret, Service: "bench", Lifetime: time.Hour,
	}); err != nil {
		return err
	}
	if c.EdDSAToken, err = sdk.MintServiceToken(sdk.ServiceTokenParams{
		CredentialID: ed.ID, PrivateKey: priv, Service: "bench", Lifetime: time.Hour,
	}); err != nil {
		return err
	}

	c.FundedMinor = 1_000_000_000_000_000 // the most one deposit may be
	if err := api.post(ctx, "/v1/test_helpers/funding", map[string]any{
		"amount": c.FundedMinor, "currency": "usdc", "status": "completed", "reference": "bench",
	}, nil); err != nil {
		return err
	}
	var adr struct {
		ID string `json:"id"`
	}
	if err := api.post(ctx, "/v1/addresses", map[string]any{
		"network": "ethereum", "address": "0x" + randomHex(20), "label": "bench",
	}, &adr); err != nil {
		return err
	}
	c.AddressID = adr.ID
	return nil
}

// checkScenario sends a scenario's request once, so that a setup mistake
// shows as one clear error instead of a table of failures.
func checkScenario(ctx context.Context, addr string, sc scenario) error {
	var body io.Reader
	if sc.Body != nil {
		body = bytes.NewReader(sc.Body)
	}
	req, err := http.NewRequestWithContext(ctx, sc.Method, "http://"+addr+sc.Path, body)
	if err != nil {
		return err
	}
	switch {
	case len(sc.Auths) > 0:
		req.Header.Set("Authorization", sc.Auths[0])
	case sc.Auth != "":
		req.Header.Set("Authorization", sc.Auth)
	}
	if sc.Body != nil {
		req.Header.Set("Content-Type", sc.contentType())
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: status %d: %s", sc.Method, sc.Path, resp.StatusCode, b)
	}
	if sc.Want != "" && !strings.Contains(string(b), sc.Want) {
		return fmt.Errorf("%s %s: answer lacks %s: %s", sc.Method, sc.Path, sc.Want, b)
	}
	return nil
}

type benchAPI struct {
	base, key string
	client    *http.Client
}

func (a *benchAPI) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", a.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// benchScenarios are the requests measured, baseline first; the write
// scenario goes last since it grows the database.
func benchScenarios(c *benchCreds) []scenario {
	reqBody, _ := json.Marshal(map[string]any{"type": "withdrawal", "amount": 1, "currency": "usdc", "address_id": c.AddressID})
	return []scenario{
		{Name: "baseline", Label: "GET /healthz (baseline, no credential)", Method: "GET", Path: "/healthz"},
		{Name: "partner_api_key", Label: "GET /v1/partner · API key", Method: "GET", Path: "/v1/partner", Auth: "Bearer " + c.APIKey},
		{Name: "partner_jwt_hs256", Label: "GET /v1/partner · service JWT HS256", Method: "GET", Path: "/v1/partner", Auth: "Bearer " + c.HS256Token},
		{Name: "partner_jwt_eddsa", Label: "GET /v1/partner · service JWT EdDSA", Method: "GET", Path: "/v1/partner", Auth: "Bearer " + c.EdDSAToken},
		{Name: "partner_oauth", Label: "GET /v1/partner · OAuth token", Method: "GET", Path: "/v1/partner", Auth: "Bearer " + c.OAuthToken},
		// RFC 7662: the client the token was issued to asks about it
		// (client_secret_basic, form-encoded id and secret).
		{Name: "oauth_introspect", Label: "POST /oauth/introspect · OAuth client", Method: "POST", Path: "/oauth/introspect",
			Auth:        "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.OAuthClientID)+":"+url.QueryEscape(c.OAuthClientSecret))),
			Body:        []byte(url.Values{"token": {c.OAuthToken}}.Encode()),
			ContentType: "application/x-www-form-urlencoded", Want: `"active":true`},
		{Name: "partner_keys_1000", Label: "GET /v1/partner · 1,000 API keys in turn", Method: "GET", Path: "/v1/partner", Auths: bearers(c.ManyKeys, 1000), Turn: new(atomic.Uint64)},
		{Name: "partner_keys_10000", Label: "GET /v1/partner · 10,000 API keys in turn", Method: "GET", Path: "/v1/partner", Auths: bearers(c.ManyKeys, 10_000), Turn: new(atomic.Uint64)},
		{Name: "balances", Label: "GET /v1/balances · API key", Method: "GET", Path: "/v1/balances", Auth: "Bearer " + c.APIKey},
		{Name: "requests", Label: "POST /v1/requests · API key", Method: "POST", Path: "/v1/requests", Auth: "Bearer " + c.APIKey, Body: reqBody},
	}
}

// manyKeysFor is how many keys the chosen scenarios need (only nil: all).
func manyKeysFor(only map[string]bool) int {
	switch {
	case only == nil || only["partner_keys_10000"]:
		return 10_000
	case only["partner_keys_1000"]:
		return 1000
	}
	return 0
}

// bearers is the Authorization values of the first n keys.
func bearers(keys []string, n int) []string {
	if len(keys) < n {
		return nil // not created: the scenario is not run
	}
	out := make([]string, n)
	for i, k := range keys[:n] {
		out[i] = "Bearer " + k
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// accessDrops reads nexus_audit_access_dropped_total from /metrics: access
// rows the server dropped because its queue was full. A server that drops
// them does less work than the contract asks, so the report shows it.
func accessDrops(ctx context.Context, addr string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	req.Header.Set("Authorization", "Bearer "+benchMetricsToken)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, false
	}
	return metricValue(string(b), "nexus_audit_access_dropped_total")
}

// metricValue finds an unlabelled sample in Prometheus text format.
func metricValue(text, name string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}
