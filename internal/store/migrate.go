package store

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/uptrace/bun/migrate"

	"github.com/nexus-fintech/nexus/migrations"
)

func (db *DB) migrator() (*migrate.Migrator, error) {
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
	return migrate.NewMigrator(db.DB, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// MigrateUp applies every pending migration and returns their names.
func (db *DB) MigrateUp(ctx context.Context) ([]string, error) {
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

// MigrateDown rolls back the last group of migrations.
func (db *DB) MigrateDown(ctx context.Context) ([]string, error) {
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
	group, err := m.Rollback(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	return names(group.Migrations), nil
}

// MigrationStatus lists every known migration and whether it is applied.
type MigrationStatus struct {
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
}

// MigrateStatus reports each migration's state.
func (db *DB) MigrateStatus(ctx context.Context) ([]MigrationStatus, error) {
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, err
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, 0, len(ms))
	for _, mg := range ms {
		out = append(out, MigrationStatus{Name: mg.Name + "_" + mg.Comment, Applied: mg.IsApplied()})
	}
	return out, nil
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
