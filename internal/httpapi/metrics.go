package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsToken checks the bearer token of a /metrics scrape.
type metricsToken struct{ digest [32]byte }

func newMetricsToken(token string) metricsToken {
	return metricsToken{sha256.Sum256([]byte(token))}
}

// matches tells whether an Authorization header carries the token. Digests
// are compared, in constant time, so neither the content nor the length of
// the token leaks through timing.
func (t metricsToken) matches(authorization string) bool {
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	d := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1
}

// MetricsHandler serves reg's metrics at /metrics, for a listener of their
// own (NEXUS_METRICS_LISTEN), asking for token when it is not empty.
func MetricsHandler(reg *prometheus.Registry, token string) http.Handler {
	prom := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	want := newMetricsToken(token)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && !want.matches(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nexus-metrics"`)
			http.Error(w, "401 unauthorized: /metrics needs Authorization: Bearer <NEXUS_METRICS_TOKEN>", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		prom.ServeHTTP(w, r)
	})
	return mux
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	auth     *prometheus.CounterVec
	limited  *prometheus.CounterVec
	panics   prometheus.Counter
	// passwords counts password checks evaluated on /login (the lockout
	// bounds them).
	passwords prometheus.Counter

	// routes holds each registered route's children, resolved on first use:
	// WithLabelValues hashes and checks its label values on every call.
	// Read-only once New returns.
	routes map[*fiber.Route]*routeMetrics
	// authOK holds nexus_auth_results_total{outcome="ok"} by credential kind.
	authOK children[string, prometheus.Counter]
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
			Name: "nexus_auth_results_total", Help: "Authentication results by credential kind and outcome (ok or the error code).",
		}, []string{"kind", "outcome"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_rate_limited_total", Help: "Requests refused by a limit, by limit (credential, ip, failed_auth).",
		}, []string{"limit"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nexus_http_panics_total", Help: "Requests whose handling panicked (answered 500 internal_error; the log has the stack).",
		}),
		passwords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nexus_login_password_checks_total", Help: "Sign-in passwords evaluated (attempts refused by a lockout are not).",
		}),
		routes: make(map[*fiber.Route]*routeMetrics),
	}
	reg.MustRegister(m.requests, m.duration, m.auth, m.limited, m.panics, m.passwords)
	return m
}

// indexRoutes keeps a routeMetrics for every route of app, once every route
// is registered. Middleware mounted with Use (method "USE") is left out: its
// requests take the general path.
func (m *metrics) indexRoutes(app *fiber.App) {
	methods := app.Config().RequestMethods
	for i, routes := range app.Stack() {
		for _, r := range routes {
			if i < len(methods) && r.Method == methods[i] && r.Path != "/" {
				m.routes[r] = &routeMetrics{vecs: m, method: stableMethod(r.Method), route: r.Path}
			}
		}
	}
}

// observe counts a finished request.
func (m *metrics) observe(c *fiber.Ctx, d time.Duration) {
	status := c.Response().StatusCode()
	if rm := m.routes[c.Route()]; rm != nil {
		rm.observe(status, d)
		return
	}
	// Label values must not alias Fiber's reused request buffers (the
	// registry keeps them): the method is mapped to a constant and the
	// route is the registered pattern.
	method := stableMethod(c.Method())
	route := routeLabel(c)
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

func (m *metrics) authOKFor(kind string) prometheus.Counter {
	return m.authOK.get(kind, func() prometheus.Counter { return m.auth.WithLabelValues(kind, "ok") })
}

// routeMetrics are one route's children. They are made when first needed,
// as WithLabelValues would, so /metrics lists only what has happened.
type routeMetrics struct {
	vecs          *metrics
	method, route string
	duration      atomic.Pointer[prometheus.Observer]
	statuses      children[int, prometheus.Counter]
}

func (rm *routeMetrics) observe(status int, d time.Duration) {
	rm.statuses.get(status, func() prometheus.Counter {
		return rm.vecs.requests.WithLabelValues(rm.method, rm.route, strconv.Itoa(status))
	}).Inc()
	o := rm.duration.Load()
	if o == nil {
		obs := rm.vecs.duration.WithLabelValues(rm.method, rm.route)
		o = &obs
		rm.duration.Store(o)
	}
	(*o).Observe(d.Seconds())
}

// children is a small copy-on-write list of a vector's children by label
// value: a lookup is a few comparisons, without locks or allocation. It
// suits label values with few distinct values (statuses of one route,
// credential kinds).
type children[K comparable, V any] struct {
	mu   sync.Mutex
	list atomic.Pointer[[]child[K, V]]
}

type child[K comparable, V any] struct {
	key K
	val V
}

func (c *children[K, V]) get(key K, mk func() V) V {
	if l := c.list.Load(); l != nil {
		for _, e := range *l {
			if e.key == key {
				return e.val
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old []child[K, V]
	if l := c.list.Load(); l != nil {
		old = *l
	}
	for _, e := range old {
		if e.key == key {
			return e.val
		}
	}
	v := mk()
	l := append(old[:len(old):len(old)], child[K, V]{key, v})
	c.list.Store(&l)
	return v
}
