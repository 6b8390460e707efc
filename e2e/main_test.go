package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/testsvc"
)

// The run's shared state, set once by TestMain before any test starts.
var (
	nexusBin   string     // the freshly built binary
	runDir     string     // temporary root of this run
	backends   []*Backend // sqlite always, postgres when available
	noPostgres string     // why there is no postgres backend
	testRedis  string     // the run's Redis ("" for none), for every backend's Redis scenarios
	noRedis    string     // why there is none
)

func TestMain(m *testing.M) { os.Exit(mainE2E(m)) }

func mainE2E(m *testing.M) int {
	flag.Parse()
	raiseParallelism(8)
	initSources()
	// The harness's own PostgreSQL connections log through slog, as the
	// server's do, not as bare lines on stderr.
	store.RouteDriverLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("source", "e2e"))

	dir, err := os.MkdirTemp("", "nexus-e2e-")
	if err != nil {
		return fatalMain("temp dir: %v", err)
	}
	runDir = dir
	defer os.RemoveAll(dir)

	if nexusBin, err = buildBinary(dir); err != nil {
		return fatalMain("%v", err)
	}

	// The environment, else testcontainers, else none (testsvc); a
	// container that does not start leaves its service out with the reason.
	svc, err := testsvc.Get()
	code := 1
	defer func() { testsvc.Finish(code) }()
	if err != nil {
		return fatalMain("%v", err)
	}
	testRedis, noRedis = svc.RedisURL, svc.NoRedis

	sqliteDir := filepath.Join(dir, "sqlite")
	if err := os.MkdirAll(sqliteDir, 0o700); err != nil {
		return fatalMain("%v", err)
	}
	sqlitePath := filepath.Join(sqliteDir, "nexus.db")
	backends = append(backends, &Backend{Name: "sqlite", URL: "sqlite:" + sqlitePath, sqlitePath: sqlitePath, dir: sqliteDir})

	if svc.PostgresURL != "" {
		pgURL, drop, err := createDatabase(context.Background(), svc.PostgresURL)
		if err != nil {
			return fatalMain("postgres (%s): %v", svc.PostgresFrom, err)
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
		backends = append(backends, &Backend{Name: "postgres", URL: pgURL, RedisURL: svc.RedisURL, pgAdmin: svc.PostgresURL, dir: pgDir})
	} else {
		noPostgres = svc.NoPostgres
		if testsvc.Required() {
			return fatalMain("NEXUS_TEST_REQUIRE_SERVICES=1 but PostgreSQL is not available: %s", svc.NoPostgres)
		}
		testsvc.Announce("e2e: postgres backend skipped: %s", svc.NoPostgres)
	}
	if testRedis == "" {
		if testsvc.Required() {
			return fatalMain("NEXUS_TEST_REQUIRE_SERVICES=1 but Redis is not available: %s", svc.NoRedis)
		}
		testsvc.Announce("e2e: Redis scenarios skipped: %s", svc.NoRedis)
	}

	code = m.Run()

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
	// The tag installs the tenancy check in the server: a query on a tenant
	// table not built by store.For (nor store.CrossTenant) logs an ERROR,
	// which fails the test whose server wrote it (stopAndCheck).
	cmd := exec.Command("go", "build", "-tags", "nexus_tenancycheck", "-o", bin, "./cmd/nexus")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/nexus: %v\n%s", err, out)
	}
	return bin, nil
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
