// Package migrations embeds the SQL migrations of both dialects. Each
// dialect has its own files (types differ); a test keeps their tables and
// columns identical.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql
var postgresFS embed.FS

//go:embed sqlite/*.sql
var sqliteFS embed.FS

// Postgres is the migration set for PostgreSQL.
func Postgres() fs.FS { sub, _ := fs.Sub(postgresFS, "postgres"); return sub }

// SQLite is the migration set for SQLite.
func SQLite() fs.FS { sub, _ := fs.Sub(sqliteFS, "sqlite"); return sub }
