// Package storetest opens fresh databases for tests: always an embedded
// SQLite file, and a PostgreSQL database of its own when
// NEXUS_TEST_DATABASE_URL names a server.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/store"
)

// ForEachDB runs fn (a test or a benchmark) on a fresh, empty SQLite database always, and on a fresh
// PostgreSQL database when NEXUS_TEST_DATABASE_URL names a server (an admin
// URL: a database nexus_store_<random> is created and dropped around fn).
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
	return db
}

var pgAdmin struct {
	once sync.Once
	db   *store.DB
	err  error
}

// AdminDB connects once per test binary to the server of
// NEXUS_TEST_DATABASE_URL; it skips (or, with NEXUS_TEST_REQUIRE_SERVICES=1,
// fails) the test when there is none.
func AdminDB(t testing.TB) *store.DB {
	t.Helper()
	raw := os.Getenv("NEXUS_TEST_DATABASE_URL")
	required := os.Getenv("NEXUS_TEST_REQUIRE_SERVICES") == "1"
	if raw == "" {
		if required {
			t.Fatal("NEXUS_TEST_REQUIRE_SERVICES=1 but NEXUS_TEST_DATABASE_URL is not set")
		}
		t.Skip("PostgreSQL: NEXUS_TEST_DATABASE_URL not set")
	}
	pgAdmin.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pgAdmin.db, pgAdmin.err = store.Open(ctx, raw)
	})
	if pgAdmin.err != nil {
		if required {
			t.Fatalf("PostgreSQL at %s does not answer: %v", store.RedactURL(raw), pgAdmin.err)
		}
		t.Skipf("PostgreSQL at %s does not answer: %v", store.RedactURL(raw), pgAdmin.err)
	}
	return pgAdmin.db
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
	return db
}

// CheckTenancy fails t at its end if any query on db after this call broke
// the tenancy rule (store.TenancyViolation). Install it after migrating:
// migrations copy rows between tenant tables by hand.
func CheckTenancy(t testing.TB, db *store.DB) *store.TenancyCheck {
	t.Helper()
	c := new(store.TenancyCheck)
	db.AddQueryHook(c)
	t.Cleanup(func() {
		for _, v := range c.Violations() {
			t.Errorf("tenancy: %s", v)
		}
	})
	return c
}
