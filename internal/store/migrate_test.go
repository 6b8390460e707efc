package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nexus-fintech/nexus/internal/store"
)

func statusOf(t *testing.T, db *store.DB) (applied, pending []string) {
	t.Helper()
	st, err := db.MigrateStatus(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, m := range st {
		if m.Applied {
			applied = append(applied, m.Name)
		} else {
			pending = append(pending, m.Name)
		}
	}
	return applied, pending
}

// `migrate down` rolls back one migration, not the group a fresh database
// applied at once (which was the whole schema).
func TestMigrateDownOneStep(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		all, err := db.MigrateUp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) < 3 {
			t.Fatalf("want several migrations for this test, have %v", all)
		}
		for step := 1; step <= 2; step++ {
			down, err := db.MigrateDown(ctx)
			if err != nil {
				t.Fatalf("down #%d: %v", step, err)
			}
			want := all[len(all)-step]
			if !slices.Equal(down, []string{want}) {
				t.Fatalf("down #%d rolled back %v, want only %s", step, down, want)
			}
			applied, pending := statusOf(t, db)
			if !slices.Equal(pending, all[len(all)-step:]) || !slices.Equal(applied, all[:len(all)-step]) {
				t.Fatalf("after down #%d: applied %v, pending %v", step, applied, pending)
			}
		}
		s := schemaOf(t, db)
		for _, tbl := range []string{"partners", "api_keys", "audit_events"} {
			if s[tbl] == nil {
				t.Errorf("one step down dropped %s, a table of the first migration", tbl)
			}
		}
		again, err := db.MigrateUp(ctx)
		if err != nil || !slices.Equal(again, all[len(all)-2:]) {
			t.Fatalf("up after two downs applied %v (%v), want %v", again, err, all[len(all)-2:])
		}
		seedPartner(t, db, "ptr_after_steps")
	})
}

// `migrate down --all` is the way to drop everything.
func TestMigrateDownAll(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		all := migrateUpNames(t, db)
		if _, err := db.MigrateDown(ctx); err != nil { // a later group must not matter
			t.Fatal(err)
		}
		if _, err := db.MigrateUp(ctx); err != nil {
			t.Fatal(err)
		}
		down, err := db.MigrateDownAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(all)
		slices.Reverse(want)
		// The migration re-applied last goes first; the others newest first.
		if !slices.Equal(sorted(down), sorted(all)) || down[0] != all[len(all)-1] {
			t.Errorf("down --all rolled back %v, want all of %v, newest first", down, want)
		}
		if applied, _ := statusOf(t, db); len(applied) != 0 {
			t.Errorf("after down --all still applied: %v", applied)
		}
		s := schemaOf(t, db)
		for tbl := range s {
			if !bunTables[tbl] {
				t.Errorf("after down --all table %s still exists", tbl)
			}
		}
		if none, err := db.MigrateDown(ctx); err != nil || len(none) != 0 {
			t.Errorf("down on an empty schema: %v, %v; want nothing", none, err)
		}
	})
}

func migrateUpNames(t *testing.T, db *store.DB) []string {
	t.Helper()
	names, err := db.MigrateUp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Status only reads: on an empty database it lists every migration as
// pending and leaves the database empty.
func TestMigrateStatusOnlyReads(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		applied, pending := statusOf(t, db)
		if len(applied) != 0 || len(pending) == 0 {
			t.Fatalf("empty database: applied %v, pending %v", applied, pending)
		}
		if s := schemaOf(t, db); len(s) != 0 {
			t.Errorf("status created tables: %v", tableNames(s))
		}
	})
}

func TestRequireMigrated(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.RequireMigrated(ctx); !errors.Is(err, store.ErrNotMigrated) {
			t.Fatalf("empty database: %v, want ErrNotMigrated", err)
		}
		migrateUp(t, db)
		if err := db.RequireMigrated(ctx); err != nil {
			t.Fatalf("migrated database: %v", err)
		}
		if _, err := db.MigrateDown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.RequireMigrated(ctx); !errors.Is(err, store.ErrNotMigrated) {
			t.Fatalf("one migration pending: %v, want ErrNotMigrated", err)
		}
	})
}

// OpenExisting does not create an SQLite file (Open does).
func TestOpenExisting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "nexus.db")
	if _, err := store.OpenExisting(ctx, "sqlite:"+path); !errors.Is(err, store.ErrNoDatabase) {
		t.Fatalf("OpenExisting of a missing file: %v, want ErrNoDatabase", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenExisting created %s", filepath.Join(dir, "sub"))
	}
	db, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.OpenExisting(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatalf("OpenExisting of an existing file: %v", err)
	}
	db.Close()
}
