// Package httpapi is the HTTP adapter: the route table, authentication and
// scope middleware, strict decoding and the one error renderer. Capability
// packages never see Fiber; handlers translate HTTP to their calls.
package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/idempotency"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
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
	Issuer   string               // Required.
	Logger   *slog.Logger         // Optional. Default: slog.Default().
	Registry *prometheus.Registry // Optional. Default: a new registry.
	OpenAPI  []byte               // Optional: served at /openapi.yaml.
	// BodyLimit in bytes. Optional. Default: 1 MiB.
	BodyLimit int
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	app     *fiber.App
	log     *slog.Logger
	metrics *metrics
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
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registry)}
	s.app = fiber.New(fiber.Config{
		AppName:               "nexus",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           15 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		ReadBufferSize:        16 << 10, // also the request header size limit
		DisableStartupMessage: true,
		CaseSensitive:         true,
		ErrorHandler:          errorHandler(cfg.Logger),
	})
	s.app.Use(s.requestMeta)
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	s.app.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(cfg.OpenAPI)
	})
	for _, r := range s.Routes() {
		handlers := []fiber.Handler{s.guard(r)}
		if r.Method == fiber.MethodPost && r.Access.kind != public {
			handlers = append(handlers, s.idempotent(r))
		}
		s.app.Add(r.Method, r.Path, append(handlers, r.Handler)...)
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return nexus.Errorf(nexus.CodeRouteNotFound, "no route for %s %s", c.Method(), c.Path())
	})
	return s
}

// App is the Fiber application (for tests and for serving).
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on ln until Shutdown.
func (s *Server) Listen(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.cfg.DB.PingContext(ctx); err != nil {
		s.log.Warn("readiness: database unreachable", "err", err)
		return nexus.Errorf(nexus.CodeServiceUnavailable, "database unreachable")
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

type ridKey struct{}

// requestMeta gives every response a request id and counts it.
func (s *Server) requestMeta(c *fiber.Ctx) error {
	start := time.Now()
	rid := nexus.NewID("req")
	c.Locals(ridKey{}, rid)
	c.Set("X-Request-Id", rid)
	err := c.Next()
	if err != nil {
		// Render now so the metrics see the real status.
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			s.log.Error("rendering error failed", "err", herr)
		}
	}
	route := c.Route().Path
	if c.Route().Path == "/" && c.Path() != "/" {
		route = "unmatched"
	}
	s.metrics.requests.WithLabelValues(c.Method(), route, strconv.Itoa(c.Response().StatusCode())).Inc()
	s.metrics.duration.WithLabelValues(c.Method(), route).Observe(time.Since(start).Seconds())
	return nil
}

// requestID returns the request's id, making one for errors raised before
// requestMeta ran (Fiber's own refusals, such as an oversized body).
func requestID(c *fiber.Ctx) string {
	if rid, ok := c.Locals(ridKey{}).(string); ok {
		return rid
	}
	rid := nexus.NewID("req")
	c.Locals(ridKey{}, rid)
	c.Set("X-Request-Id", rid)
	return rid
}

// guard authenticates and checks the route's scope decision.
func (s *Server) guard(r Route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if r.Access.kind == public {
			return c.Next()
		}
		h := &c.Request().Header
		ar := auth.Request{
			Authorization:  string(h.Peek(fiber.HeaderAuthorization)),
			XAPIKey:        string(h.Peek("X-API-Key")),
			XPartnerAPIKey: string(h.Peek("X-Partner-API-Key")),
			Origin:         string(h.Peek(fiber.HeaderOrigin)),
			XForwardedFor:  string(h.Peek(fiber.HeaderXForwardedFor)),
			RemoteIP:       remoteIP(c),
		}
		p, err := s.cfg.Auth.Authenticate(c.UserContext(), &ar)
		if err != nil {
			s.metrics.auth.WithLabelValues(string(nexus.CodeOf(err))).Inc()
			return err
		}
		s.metrics.auth.WithLabelValues("ok").Inc()
		if r.Access.kind == scoped && !p.Scopes.Has(r.Access.scope) {
			name := r.Access.scope.String()
			return &nexus.Error{Code: nexus.CodeInsufficientScope, Scope: name, Message: "credential missing required scope: " + name}
		}
		if r.Secret {
			// The answer holds a secret shown once: no cache may keep it.
			c.Set(fiber.HeaderCacheControl, "no-store")
		}
		if r.TestOnly && p.Environment != nexus.Test {
			return nexus.Errorf(nexus.CodeTestModeOnly, "test helpers work with test-environment credentials only")
		}
		ctx := nexus.WithPrincipal(c.UserContext(), p)
		ctx = audit.WithOrigin(ctx, audit.Origin{
			CredentialID: p.CredentialID, Actor: p.Actor,
			IP: s.cfg.Auth.ClientIP(&ar).String(), RequestID: requestID(c),
		})
		c.SetUserContext(ctx)
		return c.Next()
	}
}

func remoteIP(c *fiber.Ctx) netip.Addr {
	if a, ok := c.Context().RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	auth     *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nexus_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_auth_results_total", Help: "Authentication results by outcome (ok or the error code).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.duration, m.auth)
	return m
}
