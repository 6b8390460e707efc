package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
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
	"github.com/nexus-fintech/nexus/internal/nexus"
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

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := checkEnv(serveEnv); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	bindCommon(fs, &c)
	proxies, envs := bindServe(fs, &c)
	noMigrate := fs.Bool("no-migrate", false, "do not apply pending migrations at start")
	demo := fs.Bool("demo", false, "create a demo partner and print a fresh test secret key (for trying Nexus locally)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := c.finishServe(*proxies, *envs); err != nil {
		return err
	}
	log := c.logger()
	// Before anything changes (migrations): a bad pair fails the start.
	var certs *tlscert.Reloader
	if c.TLSCert != "" {
		var err error
		if certs, err = tlscert.New(c.TLSCert, c.TLSKey, log); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	store.RouteDriverLogs(log)
	db, err := store.OpenPool(ctx, c.DatabaseURL, c.Pool)
	if err != nil {
		return err
	}
	defer db.Close()
	if !*noMigrate {
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			log.Info("migrations applied", "migrations", applied)
		}
	}

	box, err := masterKey(ctx, c, db, log)
	if err != nil {
		return err
	}
	var scanKeys *secretscan.Keys
	if c.ScanKeysFile != "" {
		if scanKeys, err = secretscan.LoadKeys(c.ScanKeysFile, log); err != nil {
			return err
		}
	}
	partners := partner.NewService(db)
	keys := apikey.NewService(db)
	idem := idempotency.New(db)
	idem.Abandoned = c.IdemAbandoned
	tokens := servicetoken.NewService(db, box)
	if n, err := tokens.BackfillSecretHashes(ctx); err != nil {
		return fmt.Errorf("recording the digests of signing secrets: %w", err)
	} else if n > 0 {
		log.Info("signing secrets: digests recorded for secret scanning", "credentials", n)
	}
	oauthSvc := oauth.New(db, oauth.Config{Environments: c.Environments,
		PasswordSlots: oauth.NewPasswordSlots(c.PasswordChecks, oauth.DefaultPasswordWait)})
	authn := auth.New(auth.Config{
		Keys: auth.NewKeyStore(keys, partners), Environments: c.Environments,
		TrustedProxies: c.TrustedProxies, Logger: log, CacheSize: c.KeyCacheSize,
		OAuth: oauth.NewVerifier(oauthSvc, partners),
		JWT: servicetoken.NewVerifier(servicetoken.VerifierConfig{
			Service: tokens, Partners: partners, Audience: c.JWTAudience, InternalAudience: c.InternalAudience,
		}),
	})
	db.OnLocalPublish(authn.Drop)
	ledgerSvc := ledger.NewService(db) // forgets a tenant's balances after its own commits

	var rdb *redis.Client
	var shared ratelimit.LeaseStore
	reg := prometheus.NewRegistry()
	redisErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nexus_redis_errors_total", Help: "Redis calls that failed or timed out.",
	})
	// One breaker for every Redis call on a request's path: while Redis
	// stalls, limits are counted locally and publishes skipped.
	redisBreaker := breaker.New(breaker.Config{
		Name: "redis", Logger: log, OnError: redisErrors.Inc,
		OpenMessage:  "redis unavailable: shared store unavailable; rate limits counted locally and publishes skipped until it recovers",
		CloseMessage: "redis: shared store is back; counts are shared again",
	})
	if c.RedisURL != "" {
		rdb, err = redisbus.NewClient(c.RedisURL)
		if err != nil {
			return fmt.Errorf("NEXUS_REDIS_URL: %w", err)
		}
		redis.SetLogger(redisbus.Logger{Log: log})
		defer rdb.Close()
		shared = ratelimit.NewRedis(rdb)
		db.OnLocalPublish(func(topic string) { redisbus.Publish(context.Background(), rdb, redisBreaker, log, topic) })
		reg.MustRegister(redisErrors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nexus_redis_breaker_state", Help: "The Redis circuit breaker: 0 closed (Redis used), 1 half-open (probing), 2 open (Redis skipped, local limits).",
		}, func() float64 { return float64(redisBreaker.State()) }))
	} else {
		redisBreaker = nil
	}
	limiter := ratelimit.New(ratelimit.Config{Store: shared, Logger: log, Breaker: redisBreaker})
	lockCfg := ratelimit.LockoutConfig{Breaker: redisBreaker}
	if rdb != nil {
		lockCfg.Store = ratelimit.NewRedis(rdb)
		// Every instance learns a lock at once, so that checking one never
		// waits on Redis.
		lockCfg.OnLock = func(key string, until time.Time) {
			redisbus.Publish(context.Background(), rdb, redisBreaker, log, redisbus.LockTopic(key, until))
		}
	}
	lockout := ratelimit.NewLockout(lockCfg)
	if err := lockout.Load(ctx); err != nil {
		log.Warn("lockouts: could not read the locked addresses from redis", "err", err)
	}
	accessLog := audit.NewAccessLog(db, 100_000, log)
	accessDrops := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nexus_audit_access_dropped_total", Help: "Access-log rows dropped because the queue was full.",
	})
	accessLog.OnDrop = accessDrops.Inc
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
		return err
	}
	apiMetricsToken := c.MetricsToken
	if c.MetricsListen != "" {
		apiMetricsToken = "" // with a listener of its own, /metrics leaves the API's
	}
	csrfSigner := csrf.New(box.Derive("csrf"))
	auditReader := audit.NewReader(db)
	dash := dashboard.New(dashboard.Config{
		Keys: keys, OAuth: oauthSvc, Partners: partners, Ledger: ledgerSvc, Audit: auditReader, CSRF: csrfSigner,
		Services: tokens, Drop: authn.Drop, Issuer: c.Issuer, Environments: c.Environments, Logger: log,
	})
	srv := httpapi.New(httpapi.Config{
		OpenAPIJSON: oasJSON, Docs: openapi.Docs,
		DB: db, Auth: authn, Keys: keys, Partners: partners, Logger: log, Registry: reg, OpenAPI: openapi.Document,
		Ledger: ledgerSvc, Idempotency: idem, ServiceTokens: tokens,
		OAuth: oauthSvc, Issuer: c.Issuer,
		Limiter: limiter, AccessLog: accessLog, Audit: auditReader,
		IPLimit: c.IPLimit, FailedAuthLimit: c.FailedAuthLimit, HSTS: c.HSTS,
		LogRequests:    c.AccessLog == "on",
		MetricsToken:   apiMetricsToken,
		SecretScanning: scanKeys,
		Redis:          redisBreaker,
		Lockout:        lockout,
		CSRF:           csrfSigner,
		Dashboard:      dash,
	})

	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	if certs != nil {
		ln = tls.NewListener(ln, certs.Config())
	}
	var metricsSrv *http.Server
	switch {
	case c.MetricsListen != "":
		mln, err := net.Listen("tcp", c.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("NEXUS_METRICS_LISTEN: %w", err)
		}
		metricsSrv = &http.Server{Handler: httpapi.MetricsHandler(reg, c.MetricsToken), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := metricsSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener stopped", "err", err)
			}
		}()
		log.Info("metrics listening", "addr", mln.Addr().String(), "token", c.MetricsToken != "")
	case c.MetricsToken != "":
		log.Info("metrics served on the API's listener to NEXUS_METRICS_TOKEN")
	default:
		log.Info("metrics not served: set NEXUS_METRICS_LISTEN or NEXUS_METRICS_TOKEN")
	}
	if *demo {
		if err := printDemo(ctx, stdout, partners, keys, c.scheme()+"://"+ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
	}

	bg, cancelBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); authn.Run(bg, db) }()
	go func() {
		defer wg.Done()
		keys.RunExpiryWarnings(bg, c.ExpiryWarningInterval, time.Now, func(err error) {
			log.Warn("writing api_key.expiring events failed", "err", err)
		})
	}()
	go func() { defer wg.Done(); ledgerSvc.Run(bg, log) }()
	go func() { defer wg.Done(); accessLog.Run(bg, time.Second) }()
	if certs != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		wg.Add(1)
		go func() { defer wg.Done(); certs.Watch(bg, hup, 2*time.Second) }()
	}
	if c.AuditRetention > 0 {
		wg.Add(1)
		pruner := &audit.Pruner{DB: db.DB, Retention: c.AuditRetention, Logger: log}
		go func() { defer wg.Done(); pruner.Run(bg, 10*time.Minute) }()
	}
	if rdb != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			redisbus.Subscribe(bg, rdb, log, func(topic string) {
				if key, until, ok := redisbus.ParseLockTopic(topic); ok {
					lockout.Learn(key, until)
					return
				}
				if topic == "all" {
					// (Re)subscribed: announcements may have been missed.
					_ = lockout.Load(bg)
				}
				authn.Drop(topic)
				ledgerSvc.Drop(topic)
			})
		}()
	}
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
				if err := idem.Prune(bg); err != nil {
					log.Warn("pruning idempotency keys failed", "err", err)
				}
			}
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- srv.Listen(ln) }()
	log.Info("nexus listening", "addr", ln.Addr().String(), "tls", certs != nil, "database", string(db.Dialect), "environments", c.Environments)

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
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(sctx); err != nil {
			log.Warn("metrics shutdown", "err", err)
		}
	}
	log.Info("requests finished; flushing background writers")
	cancelBG() // background writers flush on the way out
	wg.Wait()
	log.Info("stopped")
	return nil
}

// demoPartnerName marks the partner --demo creates and reuses.
const demoPartnerName = "Demo partner (nexus serve --demo)"

// printDemo makes sure an approved demo partner exists and prints a fresh
// test secret key with a request to try. The key goes to stdout, never to
// the log.
func printDemo(ctx context.Context, w io.Writer, partners *partner.Service, keys *apikey.Service, base string) error {
	all, err := partners.List(ctx)
	if err != nil {
		return err
	}
	var p nexus.Partner
	for _, x := range all {
		if x.Name == demoPartnerName {
			p = x
			break
		}
	}
	if p.ID == "" {
		if p, err = partners.Create(ctx, partner.CreateParams{Name: demoPartnerName, Status: nexus.PartnerApproved}); err != nil {
			return err
		}
	}
	k, err := keys.Create(ctx, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}, apikey.CreateParams{Name: "demo"})
	if err != nil {
		return err
	}
	base = strings.Replace(base, "127.0.0.1", "localhost", 1)
	_, err = fmt.Fprintf(w, `
Nexus is running at %[1]s with a demo partner (%[2]s).
A test secret key, shown only now:

    %[3]s

Try it:

    curl -s %[1]s/v1/partner -H "Authorization: Bearer %[3]s"

`, base, p.ID, k.Plain)
	return err
}
