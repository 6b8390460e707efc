package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
	"github.com/uptrace/bun/driver/pgdriver"
)

// The run's shared state, set once by TestMain before any test starts.
var (
	nexusBin   string     // the freshly built binary
	runDir     string     // temporary root of this run
	backends   []*Backend // sqlite always, postgres when available
	noPostgres string     // why there is no postgres backend
)

func TestMain(m *testing.M) { os.Exit(mainE2E(m)) }

func mainE2E(m *testing.M) int {
	flag.Parse()
	raiseParallelism(8)
	initSources()

	dir, err := os.MkdirTemp("", "nexus-e2e-")
	if err != nil {
		return fatalMain("temp dir: %v", err)
	}
	runDir = dir
	defer os.RemoveAll(dir)

	if nexusBin, err = buildBinary(dir); err != nil {
		return fatalMain("%v", err)
	}

	ctx := context.Background()
	svc, stopServices, err := findServices(ctx)
	defer stopServices()
	if err != nil {
		return fatalMain("%v", err)
	}

	sqliteDir := filepath.Join(dir, "sqlite")
	if err := os.MkdirAll(sqliteDir, 0o700); err != nil {
		return fatalMain("%v", err)
	}
	sqlitePath := filepath.Join(sqliteDir, "nexus.db")
	backends = append(backends, &Backend{Name: "sqlite", URL: "sqlite:" + sqlitePath, sqlitePath: sqlitePath, dir: sqliteDir})

	if svc.pgAdmin != "" {
		pgURL, drop, err := createDatabase(ctx, svc.pgAdmin)
		if err != nil {
			return fatalMain("postgres (%s): %v", svc.pgSource, err)
		}
		defer func() {
			if err := drop(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: dropping the test database: %v\n", err)
			}
		}()
		pgDir := filepath.Join(dir, "postgres")
		if err := os.MkdirAll(pgDir, 0o700); err != nil {
			return fatalMain("%v", err)
		}
		backends = append(backends, &Backend{Name: "postgres", URL: pgURL, RedisURL: svc.redis, pgAdmin: svc.pgAdmin, dir: pgDir})
	} else {
		noPostgres = svc.why
		if os.Getenv("NEXUS_TEST_REQUIRE_SERVICES") == "1" {
			return fatalMain("NEXUS_TEST_REQUIRE_SERVICES=1 but PostgreSQL is not available: %s", svc.why)
		}
		fmt.Fprintf(os.Stderr, "e2e: PostgreSQL not available (%s): the postgres subtests are skipped\n", svc.why)
	}

	code := m.Run()

	// Shared servers outlive the tests that started them: stop them here and
	// fail the run if one did not exit cleanly or logged a problem.
	for _, b := range backends {
		if problems := b.stopShared(); len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "e2e: shared %s server:\n  %s\n", b.Name, strings.Join(problems, "\n  "))
			code = 1
		}
	}
	return code
}

func fatalMain(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "e2e: FATAL: "+format+"\n", args...)
	return 1
}

// raiseParallelism lets more tests wait at once (most of their time is spent
// waiting for expiries and servers), unless -parallel was given.
func raiseParallelism(n int) {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			set = true
		}
	})
	if !set {
		_ = flag.Set("test.parallel", fmt.Sprint(n))
	}
}

// buildBinary builds ./cmd/nexus of this module into dir.
func buildBinary(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	bin := filepath.Join(dir, "nexus")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/nexus")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/nexus: %v\n%s", err, out)
	}
	return bin, nil
}

// services are the external backends found for this run.
type services struct {
	pgAdmin  string // admin URL: fresh databases are created through it
	pgSource string // where it came from, for messages
	redis    string
	why      string // why there is no PostgreSQL
}

// findServices picks PostgreSQL and Redis: from the environment, else from
// testcontainers when a Docker engine answers, else none (SQLite only). A
// service named explicitly in the environment that does not answer is an
// error, not a silent skip.
func findServices(ctx context.Context) (services, func(), error) {
	var s services
	nop := func() {}
	s.redis = os.Getenv("NEXUS_TEST_REDIS_URL")
	if s.redis != "" {
		if err := pingRedis(ctx, s.redis); err != nil {
			return s, nop, fmt.Errorf("NEXUS_TEST_REDIS_URL does not answer: %v", err)
		}
	}
	if u := os.Getenv("NEXUS_TEST_DATABASE_URL"); u != "" {
		if err := pingPostgres(ctx, u); err != nil {
			return s, nop, fmt.Errorf("NEXUS_TEST_DATABASE_URL does not answer: %v", err)
		}
		s.pgAdmin, s.pgSource = u, "NEXUS_TEST_DATABASE_URL"
		return s, nop, nil
	}
	if err := dockerHealthy(10 * time.Second); err != nil {
		s.why = "NEXUS_TEST_DATABASE_URL is not set and no Docker engine answers for testcontainers: " + firstLine(err.Error())
		return s, nop, nil
	}
	return startContainers(ctx, s)
}

// dockerHealthy asks testcontainers' provider whether a Docker engine
// answers, quietly, within timeout, surviving a panic in the probe.
func dockerHealthy(timeout time.Duration) error {
	tclog.SetDefault(tclog.NewNoopLogger())
	res := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				res <- fmt.Errorf("testcontainers panicked: %v", r)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		p, err := testcontainers.ProviderDefault.GetProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
		if err != nil {
			res <- err
			return
		}
		defer p.Close()
		res <- p.Health(ctx)
	}()
	select {
	case err := <-res:
		return err
	case <-time.After(timeout + time.Second):
		return fmt.Errorf("no answer within %s", timeout)
	}
}

func startContainers(ctx context.Context, s services) (services, func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	pgImage := envOr("NEXUS_TEST_POSTGRES_IMAGE", "postgres:16-alpine")
	pg, err := tcpostgres.Run(ctx, pgImage,
		tcpostgres.WithDatabase("postgres"), tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("nexus"),
		tcpostgres.BasicWaitStrategies())
	if pg != nil {
		stops = append(stops, func() { _ = testcontainers.TerminateContainer(pg) })
	}
	if err != nil {
		stop()
		return s, func() {}, fmt.Errorf("testcontainers postgres (%s): %w", pgImage, err)
	}
	if s.pgAdmin, err = pg.ConnectionString(ctx, "sslmode=disable"); err != nil {
		stop()
		return s, func() {}, fmt.Errorf("testcontainers postgres: %w", err)
	}
	s.pgSource = "testcontainers " + pgImage

	if s.redis == "" {
		redisImage := envOr("NEXUS_TEST_REDIS_IMAGE", "redis:7-alpine")
		rc, err := tcredis.Run(ctx, redisImage)
		if rc != nil {
			stops = append(stops, func() { _ = testcontainers.TerminateContainer(rc) })
		}
		if err != nil {
			stop()
			return s, func() {}, fmt.Errorf("testcontainers redis (%s): %w", redisImage, err)
		}
		if s.redis, err = rc.ConnectionString(ctx); err != nil {
			stop()
			return s, func() {}, fmt.Errorf("testcontainers redis: %w", err)
		}
	}
	return s, stop, nil
}

func pingPostgres(ctx context.Context, dsn string) error {
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

func pingRedis(ctx context.Context, rawURL string) error {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// createDatabase makes a fresh database through the admin URL and returns
// its URL and a function that drops it (disconnecting whoever still uses it).
func createDatabase(ctx context.Context, adminURL string) (string, func() error, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("admin url: %w", err)
	}
	name := "nexus_e2e_" + randomHex(6)
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(adminURL)))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(cctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("CREATE DATABASE %s: %w", name, err)
	}
	u.Path = "/" + name
	drop := func() error {
		defer admin.Close()
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	return u.String(), drop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
