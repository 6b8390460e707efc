package store

import (
	"context"
	"fmt"
	"io/fs"

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
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("init migrations: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
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
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, err
	}
	if err := m.Lock(ctx); err != nil {
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
