// Package app wires a Nexus server: it opens the database and every
// service on it, listens, runs the background work and shuts down in order.
// The nexus command's serve, the benchmark and tests start a server the
// same way: Open, then Run, then Close.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/breaker"
	"github.com/nexus-fintech/nexus/internal/csrf"
	"github.com/nexus-fintech/nexus/internal/dashboard"
	"github.com/nexus-fintech/nexus/internal/httpapi"
	"github.com/nexus-fintech/nexus/internal/idempotency"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/ratelimit"
	"github.com/nexus-fintech/nexus/internal/redisbus"
	"github.com/nexus-fintech/nexus/internal/secretscan"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/tlscert"
	"github.com/nexus-fintech/nexus/openapi"
)

// App is one server: open (listening, not yet answering) after Open,
// answering during Run, released by Close.
type App struct {
	cfg Config
	log *slog.Logger

	db    *store.DB
	bus   store.Bus
	rdb   *redis.Client
	certs *tlscert.Reloader

	keys      *apikey.Service
	idem      *idempotency.Store
	authn     *auth.Authenticator
	ledger    *ledger.Service
	lockout   *ratelimit.Lockout
	accessLog *audit.AccessLog
	srv       *httpapi.Server

	ln, mln    net.Listener
	metricsSrv *http.Server

	ready     chan struct{} // closed once the server answers and hears invalidations
	readyOnce sync.Once
	closeOnce sync.Once
}

// Open checks the configuration's files, opens the database (applying
// pending migrations unless NoMigrate), checks the master key, builds every
// service and listens on cfg.Listen (and cfg.MetricsListen). Whatever fails
// stops the start before the server answers anything. On error everything
// opened is closed again.
func Open(ctx context.Context, cfg Config) (_ *App, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &App{cfg: cfg, log: log, ready: make(chan struct{})}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	// Before anything changes (migrations): a bad pair fails the start.
	if cfg.TLSCert != "" {
		if a.certs, err = tlscert.New(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return nil, err
		}
	}

	store.RouteDriverLogs(log)
	db, err := store.OpenPool(ctx, cfg.DatabaseURL, cfg.Pool)
	if err != nil {
		return nil, err
	}
	a.db, a.bus = db, db // the deployment's one invalidation bus: the database's channel
	if !cfg.NoMigrate {
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			return nil, err
		}
		if len(applied) > 0 {
			log.Info("migrations applied", "migrations", applied)
		}
	}
	checkTenancy(db, log) // only in binaries built with -tags nexus_tenancycheck (e2e)

	box, err := masterKey(ctx, cfg, db, log)
	if err != nil {
		return nil, err
	}
	var scanKeys *secretscan.Keys
	if cfg.ScanKeysFile != "" {
		if scanKeys, err = secretscan.LoadKeys(cfg.ScanKeysFile, log); err != nil {
			return nil, err
		}
	}
	partners := partner.NewService(db)
	a.keys = apikey.NewService(db)
	a.idem = idempotency.New(db)
	a.idem.Abandoned = cfg.IdemAbandoned
	tokens := servicetoken.NewService(db, box)
	if n, err := tokens.BackfillSecretHashes(ctx); err != nil {
		return nil, fmt.Errorf("recording the digests of signing secrets: %w", err)
	} else if n > 0 {
		log.Info("signing secrets: digests recorded for secret scanning", "credentials", n)
	}
	oauthSvc := oauth.New(db, oauth.Config{Environments: cfg.Environments,
		PasswordSlots: oauth.NewPasswordSlots(cfg.PasswordChecks, oauth.DefaultPasswordWait)})
	a.authn = auth.New(auth.Config{
		Keys: auth.NewKeyStore(a.keys, partners), Environments: cfg.Environments,
		TrustedProxies: cfg.TrustedProxies, Logger: log, CacheSize: cfg.KeyCacheSize,
		OAuth: oauth.NewVerifier(oauthSvc, partners),
		JWT: servicetoken.NewVerifier(servicetoken.VerifierConfig{
			Service: tokens, Partners: partners, Audience: cfg.JWTAudience, InternalAudience: cfg.InternalAudience,
		}),
	})
	// This instance's own changes reach its caches at commit; the bus
	// (Run) brings the others', once each.
	db.OnLocalPublish(a.authn.Drop)
	a.ledger = ledger.NewService(db) // forgets a tenant's balances after its own commits

	var shared ratelimit.LeaseStore
	reg := prometheus.NewRegistry()
	redisErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nexus_redis_errors_total", Help: "Redis calls that failed or timed out.",
	})
	// One breaker for every Redis call on a request's path: while Redis
	// stalls, limits are counted locally and lockout announcements skipped.
	redisBreaker := breaker.New(breaker.Config{
		Name: "redis", Logger: log, OnError: redisErrors.Inc,
		OpenMessage:  "redis unavailable: shared store unavailable; rate limits counted locally and publishes skipped until it recovers",
		CloseMessage: "redis: shared store is back; counts are shared again",
	})
	if cfg.RedisURL != "" {
		if a.rdb, err = redisbus.NewClient(cfg.RedisURL); err != nil {
			return nil, fmt.Errorf("NEXUS_REDIS_URL: %w", err)
		}
		redis.SetLogger(redisbus.Logger{Log: log})
		shared = ratelimit.NewRedis(a.rdb)
		reg.MustRegister(redisErrors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nexus_redis_breaker_state", Help: "The Redis circuit breaker: 0 closed (Redis used), 1 half-open (probing), 2 open (Redis skipped, local limits).",
		}, func() float64 { return float64(redisBreaker.State()) }))
	} else {
		redisBreaker = nil
	}
	limiter := ratelimit.New(ratelimit.Config{Store: shared, Logger: log, Breaker: redisBreaker})
	lockCfg := ratelimit.LockoutConfig{Breaker: redisBreaker}
	if a.rdb != nil {
		lockCfg.Store = ratelimit.NewRedis(a.rdb)
		// Every instance learns a lock at once, so that checking one never
		// waits on Redis.
		rdb := a.rdb
		lockCfg.OnLock = func(key string, until time.Time) {
			redisbus.Publish(context.Background(), rdb, redisBreaker, log, redisbus.LockTopic(key, until))
		}
	}
	a.lockout = ratelimit.NewLockout(lockCfg)
	if err := a.lockout.Load(ctx); err != nil {
		log.Warn("lockouts: could not read the locked addresses from redis", "err", err)
	}
	accessLog := audit.NewAccessLog(db, 100_000, log)
	a.accessLog = accessLog
	accessDrops := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nexus_audit_access_dropped_total", Help: "Access-log rows dropped because the queue was full.",
	})
	accessLog.OnDrop = accessDrops.Inc
	authn := a.authn
	reg.MustRegister(accessDrops,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "nexus_audit_queue_depth", Help: "Access-log rows waiting to be written."},
			func() float64 { return float64(accessLog.Depth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "nexus_auth_cache_hits_total", Help: "API-key verifications served from the cache."},
			func() float64 { h, _ := authn.CacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "nexus_auth_cache_misses_total", Help: "API-key verifications that read the database."},
			func() float64 { _, m := authn.CacheStats(); return float64(m) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "nexus_auth_cache_evictions_total", Help: "API keys dropped from the full cache to make room (NEXUS_KEY_CACHE_SIZE)."},
			func() float64 { return float64(authn.CacheEvictions()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "nexus_auth_cache_entries", Help: "API keys in the verification cache."},
			func() float64 { return float64(authn.CacheLen()) }),
	)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	oasJSON, err := openapi.JSON()
	if err != nil {
		return nil, err
	}
	apiMetricsToken := cfg.MetricsToken
	if cfg.MetricsListen != "" {
		apiMetricsToken = "" // with a listener of its own, /metrics leaves the API's
	}
	csrfSigner := csrf.New(box.Derive("csrf"))
	auditReader := audit.NewReader(db)
	dash := dashboard.New(dashboard.Config{
		Keys: a.keys, OAuth: oauthSvc, Partners: partners, Ledger: a.ledger, Audit: auditReader, CSRF: csrfSigner,
		Services: tokens, Drop: authn.Drop, Issuer: cfg.Issuer, Environments: cfg.Environments, Logger: log,
	})
	a.srv = httpapi.New(httpapi.Config{
		OpenAPIJSON: oasJSON, Docs: openapi.Docs,
		DB: db, Auth: authn, Keys: a.keys, Partners: partners, Logger: log, Registry: reg, OpenAPI: openapi.Document,
		Ledger: a.ledger, Idempotency: a.idem, ServiceTokens: tokens,
		OAuth: oauthSvc, Issuer: cfg.Issuer,
		Limiter: limiter, AccessLog: accessLog, Audit: auditReader,
		IPLimit: cfg.IPLimit, FailedAuthLimit: cfg.FailedAuthLimit, HSTS: cfg.HSTS,
		LogRequests:    cfg.AccessLog == "on",
		MetricsToken:   apiMetricsToken,
		SecretScanning: scanKeys,
		Redis:          redisBreaker,
		Lockout:        a.lockout,
		CSRF:           csrfSigner,
		Dashboard:      dash,
	})

	if a.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, err
	}
	if a.certs != nil {
		a.ln = tls.NewListener(a.ln, a.certs.Config())
	}
	switch {
	case cfg.MetricsListen != "":
		if a.mln, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("NEXUS_METRICS_LISTEN: %w", err)
		}
		a.metricsSrv = &http.Server{Handler: httpapi.MetricsHandler(reg, cfg.MetricsToken), ReadHeaderTimeout: 10 * time.Second}
		log.Info("metrics listening", "addr", a.mln.Addr().String(), "token", cfg.MetricsToken != "")
	case cfg.MetricsToken != "":
		log.Info("metrics served on the API's listener to NEXUS_METRICS_TOKEN")
	default:
		log.Info("metrics not served: set NEXUS_METRICS_LISTEN or NEXUS_METRICS_TOKEN")
	}
	if cfg.Demo != nil {
		if err := printDemo(ctx, cfg.Demo, partners, a.keys, cfg.Scheme()+"://"+a.ln.Addr().String()); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Addr is the address the API listens on (useful with port 0).
func (a *App) Addr() string { return a.ln.Addr().String() }

// Ready is closed once Run serves requests and the instance hears the
// other instances' changes (its caches are then kept fresh).
func (a *App) Ready() <-chan struct{} { return a.ready }

// Run answers requests and runs the background work until ctx ends, then
// shuts down in order: in-flight requests finish (30 s at most), then the
// background writers flush (the access log) and stop. It returns the
// listener's error if serving fails. Call Close afterwards.
func (a *App) Run(ctx context.Context) error {
	cfg, log, db := a.cfg, a.log, a.db
	if a.metricsSrv != nil {
		go func() {
			if err := a.metricsSrv.Serve(a.mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener stopped", "err", err)
			}
		}()
	}
	bg, cancelBG := context.WithCancel(context.Background())
	defer cancelBG()
	var wg sync.WaitGroup
	heard := make(chan struct{})
	wg.Add(6)
	go func() { defer wg.Done(); a.authn.Run(bg) }()
	go func() {
		defer wg.Done()
		// The one subscription of this instance: every cache hears the
		// other instances' changes once (its own reached them at commit).
		a.bus.Subscribe(bg, log, func(topic string) {
			a.authn.Drop(topic)
			a.ledger.Drop(topic)
		}, func() { close(heard) })
	}()
	go func() {
		defer wg.Done()
		a.keys.RunExpiryWarnings(bg, cfg.ExpiryWarningInterval, time.Now, func(err error) {
			log.Warn("writing api_key.expiring events failed", "err", err)
		})
	}()
	go func() { defer wg.Done(); a.accessLog.Run(bg, time.Second) }()
	if a.certs != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		wg.Add(1)
		go func() { defer wg.Done(); a.certs.Watch(bg, hup, 2*time.Second) }()
	}
	if cfg.AuditRetention > 0 {
		wg.Add(1)
		pruner := &audit.Pruner{DB: db.DB, Retention: cfg.AuditRetention, Logger: log}
		go func() { defer wg.Done(); pruner.Run(bg, 10*time.Minute) }()
	}
	go func() {
		defer wg.Done()
		if a.rdb == nil {
			return
		}
		// Redis carries lockouts, which every instance learns at once;
		// cache invalidations travel on the bus above.
		redisbus.Subscribe(bg, a.rdb, log, func(topic string) {
			if key, until, ok := redisbus.ParseLockTopic(topic); ok {
				a.lockout.Learn(key, until)
				return
			}
			if topic == redisbus.TopicResubscribed {
				// Announcements may have been missed.
				_ = a.lockout.Load(bg)
			}
		})
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if err := db.PruneInvalidations(bg); err != nil {
					log.Warn("pruning cache invalidations failed", "err", err)
				}
				if err := a.idem.Prune(bg); err != nil {
					log.Warn("pruning idempotency keys failed", "err", err)
				}
			}
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- a.srv.Listen(a.ln) }()
	log.Info("nexus listening", "addr", a.Addr(), "tls", a.certs != nil, "database", string(db.Dialect), "environments", cfg.Environments)
	go func() {
		select {
		case <-heard:
			a.readyOnce.Do(func() { close(a.ready) })
		case <-bg.Done():
		}
	}()

	select {
	case err := <-errc:
		cancelBG()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if a.metricsSrv != nil {
		if err := a.metricsSrv.Shutdown(sctx); err != nil {
			log.Warn("metrics shutdown", "err", err)
		}
	}
	log.Info("requests finished; flushing background writers")
	cancelBG() // background writers flush on the way out
	wg.Wait()
	log.Info("stopped")
	return nil
}

// Close releases what Open opened: the listeners (if Run never served
// them), Redis and, last, the database. It is safe to call more than once.
func (a *App) Close() error {
	var err error
	a.closeOnce.Do(func() {
		if a.ln != nil {
			_ = a.ln.Close() // already closed by Run's shutdown: harmless
		}
		if a.mln != nil {
			_ = a.mln.Close()
		}
		if a.rdb != nil {
			_ = a.rdb.Close()
		}
		if a.db != nil {
			err = a.db.Close()
		}
	})
	return err
}
