// Package httpapi is the HTTP adapter: the route table, authentication and
// scope middleware, strict decoding and the one error renderer. Capability
// packages never see Fiber; handlers translate HTTP to their calls.
package httpapi

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/etag"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/breaker"
	"github.com/nexus-fintech/nexus/internal/csrf"
	"github.com/nexus-fintech/nexus/internal/idempotency"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/ratelimit"
	"github.com/nexus-fintech/nexus/internal/secretscan"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Config wires the HTTP server.
type Config struct {
	DB            *store.DB           // Required: /readyz pings it.
	Auth          *auth.Authenticator // Required.
	Keys          *apikey.Service     // Required.
	Partners      *partner.Service    // Required.
	Ledger        *ledger.Service     // Required.
	Idempotency   *idempotency.Store
	ServiceTokens *servicetoken.Service
	OAuth         *oauth.Service // Required.
	// Issuer is the public base URL (RFC 9207 iss, metadata, cookie Secure).
	Issuer    string             // Required.
	Limiter   *ratelimit.Limiter // Required.
	AccessLog *audit.AccessLog   // Required.
	Audit     *audit.Reader      // Required.
	// IPLimit is requests per minute per IP on /oauth/*, /login and
	// /secret-scanning/*.
	// Optional. Default: 100.
	IPLimit int
	// FailedAuthLimit is failed authentications per minute per IP before
	// every credentialed request from it is refused. Optional. Default: 10.
	FailedAuthLimit int
	// AccountLimit is failed sign-ins per AccountWindow per email before
	// /login refuses that email from anywhere. Optional. Default: 10 per
	// 15 minutes.
	AccountLimit  int
	AccountWindow time.Duration
	// Lockout counts failed authentications and refuses locked addresses,
	// accounts and keys. Optional. Default: in memory.
	Lockout  *ratelimit.Lockout
	Logger   *slog.Logger         // Optional. Default: slog.Default().
	Registry *prometheus.Registry // Optional. Default: a new registry.
	OpenAPI  []byte               // Optional: served at /openapi.yaml.
	// OpenAPIJSON is the document as JSON, served at /openapi.json. Optional.
	OpenAPIJSON []byte
	// Docs is the documentation UI served at /docs. Optional.
	Docs fs.FS
	// BodyLimit in bytes. Optional. Default: 1 MiB.
	BodyLimit int
	// CSRFKey signs the CSRF tokens of the sign-in, consent and sign-out
	// forms; instances behind one load balancer need the same one.
	// Optional. Default: a random key of this process.
	CSRFKey []byte
	// SecretScanning verifies the signatures of secret-scanning reports
	// (POST /secret-scanning/github). Optional. Default: none, and every
	// report is refused as unsigned.
	SecretScanning *secretscan.Keys
	// CSRF makes and checks the tokens; it wins over CSRFKey, so that the
	// dashboard's forms and these share one signer. Optional.
	CSRF *csrf.Signer
	// Dashboard is mounted at /dashboard when set. Optional.
	Dashboard Mounter
	// HSTS sends Strict-Transport-Security on every answer: set it when
	// clients reach Nexus over TLS only (served over TLS, or behind a TLS
	// proxy: NEXUS_HSTS=1). Optional. Default: off.
	HSTS bool
	// LogRequests writes one line per request to Logger at info: method,
	// route pattern, status, duration, request id and credential id (never
	// the path, query, headers or body, which may hold secrets).
	// Optional. Default: off (serve turns it on; NEXUS_ACCESS_LOG=off).
	LogRequests bool
	// MetricsToken serves /metrics on the API's listener to requests that
	// carry "Authorization: Bearer <MetricsToken>". Optional. Default: no
	// /metrics on the API's listener (MetricsHandler serves it on one of
	// its own).
	MetricsToken string
	// Redis is the breaker of the Redis calls: /readyz reports Redis
	// degraded (and the instance still ready) while it skips Redis.
	// Optional: nil when there is no Redis.
	Redis *breaker.Breaker
}

// docsCSP is the policy of /docs (the vendored Redoc, see
// openapi/docs/redoc/VENDORED.md): nothing from another origin, scripts
// from this one only. Redoc's styled-components write <style> elements at
// run time (hence 'unsafe-inline' for styles, here only), its icons are
// data: images, and its search index runs in a blob: worker.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Mounter adds its routes under a prefix (the dashboard under /dashboard).
// clientIP tells a request's client address as the limits and the audit
// log see it.
type Mounter interface {
	Mount(r fiber.Router, clientIP func(*fiber.Ctx) string)
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	app     *fiber.App
	log     *slog.Logger
	metrics *metrics
	gate    *addrGate
	csrf    *csrf.Signer

	// fresh holds connections that have not started a request yet: at
	// shutdown they are closed at once instead of holding the server until
	// their read timeout (clients open spare connections they may never use).
	fresh sync.Map // net.Conn -> time.Time it opened
}

// New builds the Fiber app with every route of the table.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.IPLimit == 0 {
		cfg.IPLimit = 100
	}
	if cfg.FailedAuthLimit == 0 {
		cfg.FailedAuthLimit = 10
	}
	if cfg.AccountLimit == 0 {
		cfg.AccountLimit = 10
	}
	if cfg.AccountWindow == 0 {
		cfg.AccountWindow = 15 * time.Minute
	}
	if cfg.Lockout == nil {
		cfg.Lockout = ratelimit.NewLockout(ratelimit.LockoutConfig{})
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registry), csrf: cfg.CSRF}
	s.gate = &addrGate{s: s}
	if s.csrf == nil {
		s.csrf = csrf.New(cfg.CSRFKey)
	}
	onError := errorHandler(cfg.Logger)
	if cfg.HSTS {
		// Fiber's own refusals (an oversized body, say) reach the error
		// handler without passing requestMeta: they carry HSTS too.
		render := onError
		onError = func(c *fiber.Ctx, err error) error {
			c.Response().Header.SetCanonical(headerHSTS, valueHSTS)
			return render(c, err)
		}
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "nexus",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           15 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		ReadBufferSize:        16 << 10, // also the request header size limit
		DisableStartupMessage: true,
		CaseSensitive:         true,
		ErrorHandler:          onError,
	})
	s.app.Server().ConnState = s.trackConn
	s.app.Use(s.requestMeta)
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.readyz)
	if cfg.MetricsToken != "" {
		prom := adaptor.HTTPHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
		token := newMetricsToken(cfg.MetricsToken)
		s.app.Get("/metrics", func(c *fiber.Ctx) error {
			h := c.Get(fiber.HeaderAuthorization)
			if h == "" {
				return nexus.Errorf(nexus.CodeMissingCredentials, "/metrics needs Authorization: Bearer <NEXUS_METRICS_TOKEN>")
			}
			if !token.matches(h) {
				return nexus.Errorf(nexus.CodeInvalidToken, "invalid metrics token")
			}
			c.Response().Header.SetCanonical(headerCacheControl, valueNoStore)
			return prom(c)
		})
	}
	s.app.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(cfg.OpenAPI)
	})
	if cfg.OpenAPIJSON != nil {
		s.app.Get("/openapi.json", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(cfg.OpenAPIJSON)
		})
	}
	if cfg.Docs != nil {
		docs := filesystem.New(filesystem.Config{Root: http.FS(cfg.Docs), PathPrefix: "docs", Index: "index.html"})
		// The bundle is 1 MB; compressed it is a third of that.
		s.app.Use("/docs", compress.New(compress.Config{Level: compress.LevelBestSpeed}), etag.New(), func(c *fiber.Ctx) error {
			c.Set("Content-Security-Policy", docsCSP)
			c.Set("X-Frame-Options", "DENY")
			c.Set("Referrer-Policy", "no-referrer")
			c.Set(fiber.HeaderCacheControl, "no-cache")
			return docs(c)
		})
	}
	for _, r := range s.Routes() {
		handlers := []fiber.Handler{s.guard(r)}
		if r.Method == fiber.MethodPost && r.Access.kind != public {
			handlers = append(handlers, s.idempotent(r))
		}
		s.app.Add(r.Method, r.Path, append(handlers, s.recovering(r.Handler))...)
	}
	if cfg.Dashboard != nil {
		cfg.Dashboard.Mount(s.app.Group("/dashboard"), func(c *fiber.Ctx) string {
			return s.cfg.Auth.ClientIP(&auth.Request{RemoteIP: remoteIP(c), XForwardedFor: forwardedFor(&c.Request().Header)}).String()
		})
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return nexus.Errorf(nexus.CodeRouteNotFound, "no route for %s %s", c.Method(), c.Path())
	})
	s.metrics.indexRoutes(s.app)
	return s
}

// App is the Fiber application (for tests and for serving).
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on ln until Shutdown.
func (s *Server) Listen(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting, closes connections that carry no request and
// waits for in-flight requests to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.app.ShutdownWithContext(ctx) }()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		// Never Close a connection fasthttp is serving (it panics on the
		// next deadline it sets): expire its read deadline instead, which
		// fasthttp handles like a read timeout (408 and close). Repeated on
		// every tick because fasthttp may set its own deadline after ours.
		// A connection opened just now may be about to carry a request, so
		// it gets a moment first.
		now := time.Now()
		s.fresh.Range(func(c, since any) bool {
			if now.Sub(since.(time.Time)) > 200*time.Millisecond {
				_ = c.(net.Conn).SetReadDeadline(now)
			}
			return true
		})
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
	}
}

// trackConn marks a connection fresh when it opens; requestMeta unmarks it
// when a handler starts. (The first request's read is reported "active"
// before any byte arrives, so the state alone cannot tell an unused
// connection; idle keep-alive connections fasthttp closes by itself.)
func (s *Server) trackConn(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		s.fresh.Store(c, time.Now())
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.fresh.Delete(c)
	}
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.cfg.DB.PingContext(ctx); err != nil {
		s.log.Warn("readiness: database unreachable", "err", err)
		return nexus.Errorf(nexus.CodeServiceUnavailable, "database unreachable")
	}
	if s.cfg.Redis == nil {
		return c.JSON(fiber.Map{"status": "ready"})
	}
	// Without Redis, limits are counted per instance: degraded, not down.
	redis := "ok"
	if s.cfg.Redis.State() != breaker.Closed {
		redis = "degraded"
	}
	return c.JSON(fiber.Map{"status": "ready", "redis": redis})
}

// reqKey holds the request's *reqMeta in Fiber's Locals.
type reqKey struct{}

// reqMeta is what requestMeta knows of a request: the request value that
// permit attaches to the request's context, and what only this package
// reads. One allocation carries it all (a string or a time.Time in Locals
// would cost one each, and a context another).
type reqMeta struct {
	nexus.Request
	// cred is the credential's id once guard has identified it, for the
	// request log: a refused key's too, which is not the request's
	// principal.
	cred string
}

// Header names as fasthttp's normalization writes them, and values, set
// without normalizing or allocating on every request.
var (
	headerRequestID    = []byte("X-Request-Id")
	headerNoSniff      = []byte("X-Content-Type-Options")
	headerHSTS         = []byte("Strict-Transport-Security")
	headerCacheControl = []byte(fiber.HeaderCacheControl)
	valueNoSniff       = []byte("nosniff")
	valueHSTS          = []byte("max-age=63072000; includeSubDomains")
	valueNoStore       = []byte("no-store")
)

// answerHeaders writes the headers every answer carries.
func (s *Server) answerHeaders(c *fiber.Ctx, m *reqMeta) {
	h := &c.Response().Header
	h.SetCanonical(headerRequestID, utils.UnsafeBytes(m.ID))
	h.SetCanonical(headerNoSniff, valueNoSniff)
	if s.cfg.HSTS {
		h.SetCanonical(headerHSTS, valueHSTS)
	}
}

// requestMeta gives every answer a request id and the headers every answer
// carries, refuses input no route accepts, counts the request, and ends a
// panic in it with a 500.
func (s *Server) requestMeta(c *fiber.Ctx) error {
	// fasthttp reads the clock as a request starts; a handler driven
	// without its server (tests) reads it here.
	start := c.Context().Time()
	if start.IsZero() {
		start = time.Now()
	}
	s.fresh.Delete(c.Context().Conn())
	m := &reqMeta{Request: nexus.Request{ID: nexus.NewIDAt("req", start), Start: start}}
	c.Locals(reqKey{}, m)
	defer func() {
		if v := recover(); v != nil {
			if herr := s.app.ErrorHandler(c, s.panicked(c, v)); herr != nil {
				s.log.Error("rendering error failed", "err", herr)
			}
			s.finished(c, m, time.Since(start))
		}
	}()
	s.answerHeaders(c, m)
	var err error
	if e := s.refusedInput(c); e != nil {
		err = s.refuseInput(c, e)
	} else {
		err = c.Next()
	}
	if err != nil {
		// Render now so the metrics see the real status.
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			s.log.Error("rendering error failed", "err", herr)
		}
	}
	s.finished(c, m, time.Since(start))
	return nil
}

// finished counts and logs an answered request.
func (s *Server) finished(c *fiber.Ctx, m *reqMeta, d time.Duration) {
	s.metrics.observe(c, d)
	if !s.cfg.LogRequests || !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	// Written before the handler returns, so strings that alias fasthttp's
	// buffers are safe here. Only the route's pattern: a path or query
	// could carry what must not reach a log.
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", stableMethod(c.Method())),
		slog.String("route", routeLabel(c)),
		slog.Int("status", c.Response().StatusCode()),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("request_id", m.ID),
		slog.String("credential_id", m.cred),
	)
}

// routeLabel is the pattern of the route that answered, or "unmatched".
func routeLabel(c *fiber.Ctx) string {
	route := c.Route().Path
	if route == "/" && c.Path() != "/" {
		return "unmatched"
	}
	return route
}

func stableMethod(m string) string {
	switch m {
	case fiber.MethodGet:
		return fiber.MethodGet
	case fiber.MethodPost:
		return fiber.MethodPost
	case fiber.MethodDelete:
		return fiber.MethodDelete
	case fiber.MethodPut:
		return fiber.MethodPut
	case fiber.MethodPatch:
		return fiber.MethodPatch
	case fiber.MethodHead:
		return fiber.MethodHead
	case fiber.MethodOptions:
		return fiber.MethodOptions
	}
	return "OTHER"
}

// requestID returns the request's id, making one for errors raised before
// requestMeta ran (Fiber's own refusals, such as an oversized body).
func requestID(c *fiber.Ctx) string { return meta(c).ID }

// meta returns the request's reqMeta, making it for requests requestMeta
// did not see.
func meta(c *fiber.Ctx) *reqMeta {
	if m, ok := c.Locals(reqKey{}).(*reqMeta); ok {
		return m
	}
	now := time.Now()
	m := &reqMeta{Request: nexus.Request{ID: nexus.NewIDAt("req", now), Start: now}}
	c.Locals(reqKey{}, m)
	c.Response().Header.SetCanonical(headerRequestID, utils.UnsafeBytes(m.ID))
	return m
}

// guard authenticates, applies the limits and checks the route's scope
// decision, then logs the request for the access log.
func (s *Server) guard(r Route) fiber.Handler {
	ipLimited := strings.HasPrefix(r.Path, "/oauth/") || r.Path == "/login" || strings.HasPrefix(r.Path, "/secret-scanning/")
	// A person's browser shows these: refusals are pages, not JSON.
	page := r.Path == "/oauth/authorize" || r.Path == "/login"
	cors := strings.HasPrefix(r.Path, "/v1/")
	// The access log keeps the method and path after fasthttp reuses its
	// buffers: for a route without parameters the path is usually the
	// route's own pattern, which needs no copy.
	method := stableMethod(r.Method)
	return func(c *fiber.Ctx) error {
		h := &c.Request().Header
		m := meta(c)
		// The header values alias fasthttp's request buffer: they are valid
		// during this request, and nothing keeps them beyond it.
		ar := auth.Request{
			Origin:        utils.UnsafeString(h.Peek(fiber.HeaderOrigin)),
			XForwardedFor: forwardedFor(h),
			RemoteIP:      remoteIP(c),
			At:            m.Start,
		}
		ar.Authorization = credentialHeader(h, auth.HeaderAuthorization, &ar.Repeated)
		ar.XAPIKey = credentialHeader(h, auth.HeaderXAPIKey, &ar.Repeated)
		ar.XPartnerAPIKey = credentialHeader(h, auth.HeaderXPartnerAPIKey, &ar.Repeated)
		if cors && ar.Origin != "" {
			// Whether this answer grants the origin depends on it.
			c.Response().Header.SetCanonical(headerVary, varyOrigin)
		}
		ctx := c.UserContext()
		if r.Access.kind == public {
			if ipLimited {
				ip := s.cfg.Auth.ClientIP(&ar).String()
				if res := s.cfg.Limiter.Hit(ctx, "ip:"+ip, s.cfg.IPLimit); !res.Allowed {
					s.metrics.limited.WithLabelValues("ip").Inc()
					rateHeaders(c, res)
					if page {
						return s.render(c, fiber.StatusTooManyRequests, "error.html", pageData{Title: "Too many requests",
							Error: "Too many requests came from your network in the last minute.",
							Next:  "Wait " + strconv.Itoa(retryAfter(res)) + " seconds, then reload this page."})
					}
					return nexus.Errorf(nexus.CodeRateLimited, "too many requests from this address; retry after the window resets")
				}
			}
			return c.Next()
		}
		addr := s.cfg.Auth.ClientIP(&ar)
		credentialed := ar.Authorization != "" || ar.XAPIKey != "" || ar.XPartnerAPIKey != ""
		if credentialed {
			// Locked addresses are known locally (announced by the instance
			// that locked them): checking costs no round trip.
			if reset, locked := s.addrLocked(addr, m.Start); locked {
				s.metrics.limited.WithLabelValues("failed_auth").Inc()
				return tooManyFailed(c, reset, "address")
			}
			ar.Gate = s.gate
		}
		p, err := s.cfg.Auth.Authenticate(ctx, &ar)
		if p != nil {
			m.cred = p.CredentialID
		}
		if err != nil {
			var ref *ratelimit.Refusal
			if errors.As(err, &ref) {
				s.metrics.limited.WithLabelValues("failed_auth").Inc()
				return refused(c, ref, "address")
			}
			code := nexus.CodeOf(err)
			s.metrics.auth.WithLabelValues(credentialKind(p), string(code)).Inc()
			if credentialed && codeStatus[code] == fiber.StatusUnauthorized {
				if p != nil {
					// A known key refused for its status: the attempt counts
					// against the key itself, not against the address (many
					// tenants may share it behind one NAT), and its partner
					// sees the attempt.
					status := fiber.StatusUnauthorized
					keyKey := "key:" + p.CredentialID
					if reset, locked := s.cfg.Lockout.Locked(keyKey, m.Start); locked {
						err = tooManyFailed(c, reset, "API key")
						status = fiber.StatusTooManyRequests
					} else {
						s.cfg.Lockout.Fail(ctx, keyKey, s.cfg.FailedAuthLimit, time.Minute, m.Start)
					}
					s.logAccess(c, method, r.Path, p, addr.String(), status)
				} else if !ar.Gated {
					// Nothing was evaluated (malformed, known unknown, a token):
					// count it now. An evaluated one the gate has counted.
					s.cfg.Lockout.Fail(ctx, failKey(addr), s.cfg.FailedAuthLimit, time.Minute, m.Start)
				}
			}
			return err
		}
		s.metrics.authOKFor(string(p.CredentialType)).Inc()
		ip := p.AddrString(addr)
		if p.OriginBound && cors {
			// Authenticate matched ar.Origin against the key's origins.
			corsGrant(c, ar.Origin)
		}
		limit := p.Partner.RateLimit
		if limit <= 0 {
			limit = nexus.DefaultRateLimit
		}
		res := s.cfg.Limiter.HitAt(ctx, p.LimitKey(), limit, m.Start)
		rateHeaders(c, res)
		if !res.Allowed {
			s.metrics.limited.WithLabelValues("credential").Inc()
			// Authenticated, so recorded like every authenticated request.
			s.logAccess(c, method, r.Path, p, ip, fiber.StatusTooManyRequests)
			return nexus.Errorf(nexus.CodeRateLimited, "rate limit of %d requests per minute exceeded for this credential", limit)
		}
		err = s.permit(c, r, p, ip)
		if err != nil {
			// Render here so the access log records the real status.
			if herr := s.app.ErrorHandler(c, err); herr != nil {
				return herr
			}
		}
		s.logAccess(c, method, r.Path, p, ip, c.Response().StatusCode())
		return nil
	}
}

// permit checks the scope decision and runs the rest of the chain.
func (s *Server) permit(c *fiber.Ctx, r Route, p *nexus.Principal, ip string) error {
	if r.Access.kind == scoped && !p.Scopes.Has(r.Access.scope) {
		name := r.Access.scope.String()
		return &nexus.Error{Code: nexus.CodeInsufficientScope, Scope: name, Message: "credential missing required scope: " + name}
	}
	// The answer is the tenant's (and may hold a secret shown once): no
	// cache may keep it.
	c.Response().Header.SetCanonical(headerCacheControl, valueNoStore)
	if r.TestOnly && p.Environment != nexus.Test {
		return nexus.Errorf(nexus.CodeTestModeOnly, "test helpers work with test-environment credentials only")
	}
	m := meta(c)
	m.Principal = p
	m.Origin = nexus.Origin{CredentialID: p.CredentialID, Actor: p.Actor, IP: ip, RequestID: m.ID}
	c.SetUserContext(m.Attach(c.UserContext()))
	return c.Next()
}

// logAccess queues the access-log row. method is the route's (a constant);
// route is its pattern, kept instead of a copy of the path when they are
// equal.
func (s *Server) logAccess(c *fiber.Ctx, method, route string, p *nexus.Principal, ip string, status int) {
	path := route
	if c.Path() != route {
		// Fiber's strings point into buffers reused by later requests; the
		// row is written later, so it keeps a copy.
		path = strings.Clone(c.Path())
	}
	m := meta(c)
	s.cfg.AccessLog.Add(audit.Access{
		Tenant: p.Tenant(), CredentialID: p.CredentialID, Actor: p.Actor,
		Method: method, Path: path,
		Status: status, IP: ip, RequestID: m.ID, At: m.Start,
	})
}

func credentialKind(p *nexus.Principal) string {
	if p != nil {
		return string(p.CredentialType)
	}
	return "unknown"
}

// The RateLimit-* names as fasthttp's header normalization writes them
// (c.Set would normalize them again on every request).
var (
	headerRateLimit     = []byte("Ratelimit-Limit")
	headerRateRemaining = []byte("Ratelimit-Remaining")
	headerRateReset     = []byte("Ratelimit-Reset")
	headerRetryAfter    = []byte(fiber.HeaderRetryAfter)
)

// rateHeaders writes the RateLimit-* fields (and Retry-After when refused).
func rateHeaders(c *fiber.Ctx, r ratelimit.Result) {
	h := &c.Response().Header
	var buf [20]byte
	h.SetCanonical(headerRateLimit, strconv.AppendInt(buf[:0], int64(r.Limit), 10))
	h.SetCanonical(headerRateRemaining, strconv.AppendInt(buf[:0], int64(r.Remaining), 10))
	reset := strconv.AppendInt(buf[:0], int64(retryAfter(r)), 10)
	h.SetCanonical(headerRateReset, reset)
	if !r.Allowed {
		h.SetCanonical(headerRetryAfter, reset)
	}
}

func retryAfter(r ratelimit.Result) int {
	sec := int((r.Reset + time.Second - 1) / time.Second)
	if sec < 1 {
		sec = 1
	}
	return sec
}

func remoteIP(c *fiber.Ctx) netip.Addr {
	if a, ok := c.Context().RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
