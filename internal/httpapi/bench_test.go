package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/idempotency"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/ratelimit"
	"github.com/nexus-fintech/nexus/internal/secretbox"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/openapi"
	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// benchAccessLog false drops every access row instead of writing it, so
// that ns/op measures the request path alone (the storage of the access log
// is measured in internal/audit).
var benchAccessLog = flag.Bool("bench.accesslog", true, "write access-log rows in the background during BenchmarkServe")

// benchRequestLog turns on the per-request log line (serve's default), in
// JSON, to io.Discard: ns/op then includes formatting it, not writing it.
var benchRequestLog = flag.Bool("bench.requestlog", false, "log a JSON line per request (to io.Discard) during BenchmarkServe")

// benchEnv is the server as cmd/nexus wires it (all three verifiers), on a
// temporary SQLite store, with the access log written in the background.
type benchEnv struct {
	srv   *Server
	key   string // test secret key, admin:all
	hs256 string // service JWT
	oauth string // nx_test_at_…
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if _, err := db.MigrateUp(ctx); err != nil {
		b.Fatal(err)
	}
	box, err := secretbox.New("dW5pdC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=")
	if err != nil {
		b.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	partners := partner.NewService(db)
	keys := apikey.NewService(db)
	tokens := servicetoken.NewService(db, box)
	oauthSvc := oauth.NewService(db)
	authn := auth.New(auth.Config{
		Keys: auth.NewKeyStore(keys, partners), Logger: discard,
		OAuth: oauth.NewVerifier(oauthSvc, partners),
		JWT:   servicetoken.NewVerifier(servicetoken.VerifierConfig{Service: tokens, Partners: partners}),
	})
	accessLog := audit.NewAccessLog(db, 1, discard)
	if *benchAccessLog {
		accessLog = audit.NewAccessLog(db, 100_000, discard)
		bg, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { accessLog.Run(bg, 100*time.Millisecond); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
	}
	srv := New(Config{
		DB: db, Auth: authn, Keys: keys, Partners: partners, Logger: discard,
		Ledger: ledger.NewService(db), Idempotency: idempotency.New(db), ServiceTokens: tokens,
		OAuth: oauthSvc, Issuer: "http://nexus.test",
		Limiter: ratelimit.New(ratelimit.Config{}), AccessLog: accessLog, Audit: audit.NewReader(db),
		OpenAPI: openapi.Document, LogRequests: *benchRequestLog,
	})
	if *benchRequestLog {
		srv.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}

	p, err := partners.Create(ctx, partner.CreateParams{Name: "Bench partner", Status: nexus.PartnerApproved, RateLimit: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	t := nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}
	k, err := keys.Create(ctx, t, apikey.CreateParams{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	hs, err := tokens.Create(ctx, t, servicetoken.CreateParams{Name: "bench-hs256", Algorithm: servicetoken.HS256})
	if err != nil {
		b.Fatal(err)
	}
	hsTok, err := sdk.MintServiceToken(sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret, Service: "bench", Lifetime: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{srv: srv, key: k.Plain, hs256: hsTok, oauth: benchOAuthToken(b, oauthSvc, p.ID)}
}

// benchOAuthToken takes the steps of the login, consent and token endpoints
// (as nexus bench does) to get an access token.
func benchOAuthToken(b *testing.B, svc *oauth.Service, partnerID string) string {
	b.Helper()
	ctx := context.Background()
	const redirect = "http://127.0.0.1/bench/callback"
	cv, err := svc.CreateClient(ctx, nexus.Tenant{PartnerID: partnerID, Environment: nexus.Test}, oauth.CreateClientParams{
		Name: "Bench app", Type: oauth.Confidential, RedirectURIs: []string{redirect}, Scopes: []string{"read:balances"},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateMember(ctx, partnerID, "bench@example.com", "correct horse battery"); err != nil {
		b.Fatal(err)
	}
	sessTok, err := svc.Login(ctx, "bench@example.com", "correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	sess, err := svc.Session(ctx, sessTok)
	if err != nil || sess == nil {
		b.Fatalf("no session: %v", err)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	verifier := base64.RawURLEncoding.EncodeToString([]byte(hex.EncodeToString(raw[:])))
	sum := sha256.Sum256([]byte(verifier))
	ar, err := svc.ValidateAuthorize(ctx, url.Values{
		"client_id": {cv.ClientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"s"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	})
	if err != nil {
		b.Fatal(err)
	}
	code, err := svc.Approve(ctx, sess, ar, nexus.PartnerApproved)
	if err != nil {
		b.Fatal(err)
	}
	client, err := svc.AuthenticateClient(ctx, oauth.ClientAuth{ID: cv.ClientID, Secret: cv.ClientSecret, Basic: true})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := svc.ExchangeCode(ctx, client, code, redirect, verifier)
	if err != nil {
		b.Fatal(err)
	}
	return tr.AccessToken
}

// benchRequest is a GET of path as a connection from 127.0.0.1 sends it.
func benchRequest(path, authorization string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI(path)
	req.Header.SetHost("nexus.test")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return ctx
}

// benchGet drives the Fiber handler directly with one reused RequestCtx:
// the server's own cost per request, without sockets or a load generator.
func benchGet(b *testing.B, srv *Server, path, authorization string) {
	b.Helper()
	h := srv.App().Handler()
	ctx := benchRequest(path, authorization)
	serve := func() {
		ctx.Response.Reset()
		h(ctx)
		if st := ctx.Response.StatusCode(); st != fasthttp.StatusOK {
			b.Fatalf("GET %s: status %d: %s", path, st, ctx.Response.Body())
		}
	}
	serve() // warm the caches
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve()
	}
}

// benchGetParallel is benchGet from GOMAXPROCS goroutines, each with its
// own RequestCtx (as each connection has): what is shared between requests
// (locks, counters) shows here.
func benchGetParallel(b *testing.B, srv *Server, path, authorization string) {
	b.Helper()
	h := srv.App().Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := benchRequest(path, authorization)
		for pb.Next() {
			ctx.Response.Reset()
			h(ctx)
			if st := ctx.Response.StatusCode(); st != fasthttp.StatusOK {
				b.Errorf("GET %s: status %d: %s", path, st, ctx.Response.Body())
				return
			}
		}
	})
}

func BenchmarkServeParallel(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("healthz", func(b *testing.B) { benchGetParallel(b, e.srv, "/healthz", "") })
	b.Run("partner_api_key", func(b *testing.B) { benchGetParallel(b, e.srv, "/v1/partner", "Bearer "+e.key) })
	b.Run("partner_jwt_hs256", func(b *testing.B) { benchGetParallel(b, e.srv, "/v1/partner", "Bearer "+e.hs256) })
	b.Run("partner_oauth", func(b *testing.B) { benchGetParallel(b, e.srv, "/v1/partner", "Bearer "+e.oauth) })
}

func BenchmarkServe(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("healthz", func(b *testing.B) { benchGet(b, e.srv, "/healthz", "") })
	b.Run("partner_api_key", func(b *testing.B) { benchGet(b, e.srv, "/v1/partner", "Bearer "+e.key) })
	b.Run("partner_jwt_hs256", func(b *testing.B) { benchGet(b, e.srv, "/v1/partner", "Bearer "+e.hs256) })
	b.Run("partner_oauth", func(b *testing.B) { benchGet(b, e.srv, "/v1/partner", "Bearer "+e.oauth) })
}
