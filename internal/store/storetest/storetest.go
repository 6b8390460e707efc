// Package storetest opens fresh databases for tests: always an embedded
// SQLite file, and a PostgreSQL database of its own on the server testsvc
// finds (NEXUS_TEST_DATABASE_URL, else a testcontainers container when a
// Docker engine answers, else skipped with the reason).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/testsvc"
)

// ForEachDB runs fn (a test or a benchmark) on a fresh, empty SQLite
// database always, and on a fresh PostgreSQL database when there is a
// server (see AdminDB: a database nexus_store_<random> is created and
// dropped around fn).
func ForEachDB[T interface {
	testing.TB
	Run(string, func(T)) bool
}](t T, fn func(t T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t T) { fn(t, OpenSQLite(t)) })
	t.Run("postgres", func(t T) { fn(t, OpenPostgres(t)) })
}

func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "nexus.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	checkTests(t, db)
	return db
}

var pgAdmin struct {
	once sync.Once
	db   *store.DB
	err  error
}

// wanted records that a test of this binary asked for a service, so that
// Main reports a missing one only where it mattered.
var wanted struct{ postgres, redis atomic.Bool }

// found fails t when the environment names a server that does not answer.
func found(t testing.TB, s testsvc.Services, err error) testsvc.Services {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// AdminDB connects once per test binary to the PostgreSQL server of
// testsvc (NEXUS_TEST_DATABASE_URL, else a container); it skips (or, with
// NEXUS_TEST_REQUIRE_SERVICES=1, fails) the test when there is none.
func AdminDB(t testing.TB) *store.DB {
	t.Helper()
	wanted.postgres.Store(true)
	s, err := testsvc.GetPostgres()
	s = found(t, s, err)
	if s.PostgresURL == "" {
		if testsvc.Required() {
			t.Fatalf("NEXUS_TEST_REQUIRE_SERVICES=1 but no PostgreSQL: %s", s.NoPostgres)
		}
		t.Skipf("no PostgreSQL: %s", s.NoPostgres)
	}
	pgAdmin.once.Do(func() {
		routeDriverLogs()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pgAdmin.db, pgAdmin.err = store.Open(ctx, s.PostgresURL)
	})
	if pgAdmin.err != nil {
		t.Fatalf("PostgreSQL (%s) at %s does not answer: %v", s.PostgresFrom, store.RedactURL(s.PostgresURL), pgAdmin.err)
	}
	return pgAdmin.db
}

// RedisURL is the Redis of testsvc (NEXUS_TEST_REDIS_URL, else a
// container); it skips (or, with NEXUS_TEST_REQUIRE_SERVICES=1, fails) the
// test when there is none. Tests share it: use keys of their own.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := MaybeRedisURL(t)
	if u == "" {
		s, _ := testsvc.GetRedis()
		t.Skipf("no Redis: %s", s.NoRedis)
	}
	return u
}

// MaybeRedisURL is RedisURL for a test that also has cases without Redis:
// "" when there is none (a failure under NEXUS_TEST_REQUIRE_SERVICES=1).
func MaybeRedisURL(t testing.TB) string {
	t.Helper()
	wanted.redis.Store(true)
	s, err := testsvc.GetRedis()
	s = found(t, s, err)
	if s.RedisURL == "" && testsvc.Required() {
		t.Fatalf("NEXUS_TEST_REQUIRE_SERVICES=1 but no Redis: %s", s.NoRedis)
	}
	return s.RedisURL
}

var routeOnce sync.Once

// routeDriverLogs sends the PostgreSQL driver's own lines (a broken
// connection discarded, …) through slog as the server does, instead of
// the driver's bare log.Printf to stderr.
func routeDriverLogs() {
	routeOnce.Do(func() {
		store.RouteDriverLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("source", "test"))
	})
}

// Main runs a package's tests (call it from TestMain: os.Exit(storetest.Main(m)))
// and then prints one line per backend its tests asked for and did not
// have, with the reason, so that plain `go test ./...` shows what was not
// run; it removes the containers it started.
func Main(m *testing.M) int {
	pkg := "tests"
	if pc, _, _, ok := runtime.Caller(1); ok {
		// github.com/…/internal/store_test.TestMain → internal/store
		name := runtime.FuncForPC(pc).Name()
		name = name[:strings.LastIndex(name, ".")]
		name = strings.TrimSuffix(name, "_test")
		if i := strings.Index(name, "/internal/"); i >= 0 {
			name = name[i+1:]
		}
		pkg = name
	}
	code := m.Run()
	if !testsvc.Required() { // when required, a missing one failed the tests
		announceSkipped(pkg)
	}
	if pgAdmin.db != nil {
		pgAdmin.db.Close() // before its container goes
	}
	testsvc.Finish(code)
	return code
}

// announceSkipped prints a line per service a test asked for and did not
// have. Only asked ones: Get must not start containers for a package whose
// tests needed no server.
func announceSkipped(pkg string) {
	if wanted.postgres.Load() {
		if s, err := testsvc.GetPostgres(); err == nil && s.PostgresURL == "" {
			testsvc.Announce("%s: postgres backend skipped: %s", pkg, s.NoPostgres)
		}
	}
	if wanted.redis.Load() {
		if s, err := testsvc.GetRedis(); err == nil && s.RedisURL == "" {
			testsvc.Announce("%s: redis tests skipped: %s", pkg, s.NoRedis)
		}
	}
}

func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	admin := AdminDB(t)
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "nexus_store_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { db.Close() })
	checkTests(t, db)
	return db
}

// OpenAgain opens a second handle on the database db is open on (the
// same SQLite file, the same PostgreSQL database), closed at t's end: two
// handles on one database stand for two servers sharing it, each with its
// own pool, write lock and invalidation listener.
func OpenAgain(t testing.TB, db *store.DB) *store.DB {
	t.Helper()
	ctx := context.Background()
	u := db.URL
	if db.Dialect == store.SQLite {
		// The SQLite handle keeps no URL: ask the database for its file.
		var path string
		if err := db.NewRaw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(ctx, &path); err != nil || path == "" {
			t.Fatalf("sqlite file of the first handle: %q, %v", path, err)
		}
		u = "sqlite:" + path
	}
	again, err := store.Open(ctx, u)
	if err != nil {
		t.Fatalf("open a second handle: %v", err)
	}
	t.Cleanup(func() { again.Close() })
	return again
}

// CheckTenancy fails t at its end if any query on db after this call broke
// the tenancy rule (store.TenancyViolation; migrations are exempt). Every
// database OpenSQLite and OpenPostgres open for a test has it already;
// installing it twice on one database checks once.
func CheckTenancy(t testing.TB, db *store.DB) *store.TenancyCheck {
	t.Helper()
	c := new(store.TenancyCheck)
	if prev, loaded := checks.LoadOrStore(db, c); loaded {
		return prev.(*store.TenancyCheck)
	}
	db.AddQueryHook(c)
	t.Cleanup(func() {
		checks.Delete(db)
		for _, v := range c.Violations() {
			t.Errorf("tenancy: %s", v)
		}
	})
	return c
}

var checks sync.Map // *store.DB → its *store.TenancyCheck

// checkTests installs CheckTenancy on a test's database; a benchmark's
// figures would include the hook's scan of every query, so it has none.
func checkTests(t testing.TB, db *store.DB) {
	if _, bench := t.(*testing.B); !bench {
		CheckTenancy(t, db)
	}
}
