package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/uptrace/bun/migrate"

	"github.com/nexus-fintech/nexus/migrations"
)

func (db *DB) migrations() (*migrate.Migrations, error) {
	var fsys fs.FS
	if db.Dialect == Postgres {
		fsys = migrations.Postgres()
	} else {
		fsys = migrations.SQLite()
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return nil, fmt.Errorf("discover migrations: %w", err)
	}
	return ms, nil
}

func (db *DB) migrator() (*migrate.Migrator, error) {
	ms, err := db.migrations()
	if err != nil {
		return nil, err
	}
	return migrate.NewMigrator(db.DB, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// MigrateUp applies every pending migration and returns their names.
func (db *DB) MigrateUp(ctx context.Context) ([]string, error) {
	ctx = migrating(ctx)
	unlock, err := db.advisoryLock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("init migrations: %w", err)
	}
	// Instances starting together must not fail on each other's lock: with
	// nothing pending there is nothing to lock for, and otherwise wait.
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	if len(ms.Unapplied()) == 0 {
		return nil, nil
	}
	if err := lockWait(ctx, m); err != nil {
		return nil, err
	}
	defer m.Unlock(ctx) //nolint:errcheck // best effort; the lock row is removed on success
	group, err := m.Migrate(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return names(group.Migrations), nil
}

// MigrateDown rolls back one step: the migration applied last. A fresh
// database applies every migration in one group, so rolling back a group
// would drop the whole schema.
func (db *DB) MigrateDown(ctx context.Context) ([]string, error) {
	return db.rollback(ctx, false)
}

// MigrateDownAll rolls back every applied migration, newest first: it drops
// the whole schema and its data.
func (db *DB) MigrateDownAll(ctx context.Context) ([]string, error) {
	return db.rollback(ctx, true)
}

func (db *DB) rollback(ctx context.Context, all bool) ([]string, error) {
	ctx = migrating(ctx)
	unlock, err := db.advisoryLock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, err
	}
	if err := lockWait(ctx, m); err != nil {
		return nil, err
	}
	defer m.Unlock(ctx) //nolint:errcheck
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, err
	}
	// Newest first by the order they were applied in (their row ids): a
	// migration merged late may be older by name than one applied before it.
	applied := ms.Applied()
	slices.SortFunc(applied, func(a, b migrate.Migration) int { return cmp.Compare(b.ID, a.ID) })
	if !all && len(applied) > 1 {
		applied = applied[:1]
	}
	for i := range applied {
		mg := &applied[i]
		if mg.Down != nil {
			if err := mg.Down(ctx, m, mg); err != nil {
				return names(applied[:i]), fmt.Errorf("rollback %s: %w", mg.Name, err)
			}
		}
		if err := m.MarkUnapplied(ctx, mg); err != nil {
			return names(applied[:i]), err
		}
	}
	return names(applied), nil
}

// MigrationStatus lists every known migration and whether it is applied.
type MigrationStatus struct {
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
}

// MigrateStatus reports each migration's state. It only reads: on a
// database never migrated every migration is pending.
func (db *DB) MigrateStatus(ctx context.Context) ([]MigrationStatus, error) {
	ms, err := db.migrationsWithStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, 0, len(ms))
	for _, mg := range ms {
		out = append(out, MigrationStatus{Name: mg.Name + "_" + mg.Comment, Applied: mg.IsApplied()})
	}
	return out, nil
}

// migrationsWithStatus reads which migrations are applied without creating
// bun's bookkeeping tables.
func (db *DB) migrationsWithStatus(ctx context.Context) (migrate.MigrationSlice, error) {
	ok, err := db.tableExists(ctx, "bun_migrations")
	if err != nil {
		return nil, err
	}
	if !ok {
		ms, err := db.migrations()
		if err != nil {
			return nil, err
		}
		return ms.Sorted(), nil // none applied
	}
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	return m.MigrationsWithStatus(ctx)
}

func (db *DB) tableExists(ctx context.Context, name string) (bool, error) {
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if db.Dialect == Postgres {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
	}
	var n int
	err := db.NewRaw(q, name).Scan(ctx, &n)
	return n > 0, err
}

// ErrNotMigrated is returned by RequireMigrated.
var ErrNotMigrated = errors.New("the database is not migrated")

// RequireMigrated fails, saying what to run, unless every migration this
// binary knows is applied. Commands that only use the schema call it
// instead of creating or changing the schema themselves.
func (db *DB) RequireMigrated(ctx context.Context) error {
	ms, err := db.migrationsWithStatus(ctx)
	if err != nil {
		return err
	}
	pending := len(ms.Unapplied())
	switch {
	case pending == 0:
		return nil
	case pending == len(ms):
		return fmt.Errorf("%w (it has no Nexus tables): run \"nexus migrate up\" first", ErrNotMigrated)
	}
	return fmt.Errorf("%w (%d of %d migrations pending): run \"nexus migrate up\" first", ErrNotMigrated, pending, len(ms))
}

func names(ms migrate.MigrationSlice) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Name+"_"+m.Comment)
	}
	return out
}

// lockWait takes the migration lock, waiting up to a minute for another
// process that holds it.
func lockWait(ctx context.Context, m *migrate.Migrator) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := m.Lock(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock migrations (another process holds the lock; if none runs, delete the row in bun_migration_locks): %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// migrationLockID is an arbitrary constant naming Nexus's migration lock.
const migrationLockID = 7_164_839_201

// advisoryLock serialises migrations across processes on PostgreSQL, where
// bun's own bootstrap (CREATE TABLE IF NOT EXISTS) is not safe to run
// concurrently. SQLite serialises writers itself.
func (db *DB) advisoryLock(ctx context.Context) (func(), error) {
	if db.Dialect != Postgres {
		return func() {}, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockID); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", migrationLockID)
		conn.Close()
	}, nil
}
