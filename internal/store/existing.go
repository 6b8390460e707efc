package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoDatabase means the database a command should use does not exist.
var ErrNoDatabase = errors.New("no Nexus database")

// SQLitePath returns the file a sqlite: URL names (the default file for an
// empty URL); ok is false for other databases.
func SQLitePath(rawURL string) (path string, ok bool) {
	if rawURL == "" {
		return DefaultSQLitePath, true
	}
	rest, ok := strings.CutPrefix(rawURL, "sqlite:")
	if !ok {
		return "", false
	}
	return strings.TrimPrefix(rest, "//"), true
}

// OpenExisting is Open for commands that use a database but must not
// create one: Open makes an empty SQLite file wherever the URL points (by
// default ./data/nexus.db), which an admin command run in the wrong folder
// must not do.
func OpenExisting(ctx context.Context, rawURL string) (*DB, error) {
	if path, ok := SQLitePath(rawURL); ok && path != "" {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
			return nil, fmt.Errorf("%w at %s: run \"nexus migrate up\" (or \"nexus serve\") to create it, or set NEXUS_DATABASE_URL to the database to use", ErrNoDatabase, path)
		}
	}
	return Open(ctx, rawURL)
}
