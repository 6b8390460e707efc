package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/nexus-fintech/nexus/internal/masterkey"
	"github.com/nexus-fintech/nexus/internal/secretbox"
	"github.com/nexus-fintech/nexus/internal/store"
)

// masterKey opens the box for secrets stored encrypted and checks it
// against the key the database recorded: a server started with another key
// would answer 500 to every HS256 service token, so it does not start.
func masterKey(ctx context.Context, c Config, db *store.DB, log *slog.Logger) (*secretbox.Box, error) {
	box, source, err := LoadMasterKey(ctx, c, db, log, true)
	if err != nil {
		return nil, err
	}
	m, err := masterkey.Verify(ctx, db, box)
	if errors.Is(err, masterkey.ErrMismatch) {
		return nil, MismatchError(source)
	}
	if err != nil {
		return nil, err
	}
	if m == secretbox.MatchPrevious {
		log.Warn("master key rotation under way: secrets sealed under NEXUS_MASTER_KEY_PREVIOUS still open and new ones are sealed under NEXUS_MASTER_KEY; once every instance runs with both, finish with: nexus admin rekey")
	}
	return box, nil
}

// keyFileName is the key file the embedded SQLite default keeps beside its
// database when NEXUS_MASTER_KEY is not set.
const keyFileName = "master.key"

// LoadMasterKey reads NEXUS_MASTER_KEY (and NEXUS_MASTER_KEY_PREVIOUS).
// PostgreSQL deployments must set it; the embedded SQLite default uses a key
// file beside its database, generated (when create) with a warning, so that
// trying Nexus needs no setup. source names where the key came from, for
// messages.
func LoadMasterKey(ctx context.Context, c Config, db *store.DB, log *slog.Logger, create bool) (box *secretbox.Box, source string, err error) {
	if c.MasterKey != "" {
		box, err := secretbox.New(c.MasterKey, c.MasterKeyPrev)
		return box, "NEXUS_MASTER_KEY", err
	}
	path, isSQLite := store.SQLitePath(c.DatabaseURL)
	if !isSQLite || db.Dialect == store.Postgres {
		return nil, "", fmt.Errorf("%w (generate one with: head -c32 /dev/urandom | base64)", secretbox.ErrNoKey)
	}
	path = filepath.Join(filepath.Dir(path), keyFileName)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs // messages must say where, whatever the working folder
	}
	source = "the master key file " + path + " (used because NEXUS_MASTER_KEY is not set)"
	key, ok, err := secretbox.ReadKeyFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("master key file %s: %w", path, err)
	}
	if !ok {
		// A fresh key would be refused anyway; say what is really wrong.
		inUse, err := masterkey.InUse(ctx, db)
		if err != nil {
			return nil, "", err
		}
		if inUse {
			return nil, "", fmt.Errorf("NEXUS_MASTER_KEY is not set and the master key file %s is missing, but this database was set up with a master key: restore that file, or set NEXUS_MASTER_KEY to that key", path)
		}
		if !create {
			return nil, "", fmt.Errorf("NEXUS_MASTER_KEY is not set and there is no master key file at %s", path)
		}
		var created bool
		if key, created, err = secretbox.LoadOrCreateKeyFile(path); err != nil {
			return nil, "", fmt.Errorf("master key file %s: %w", path, err)
		}
		if created {
			log.Warn("NEXUS_MASTER_KEY is not set: generated a master key file beside the SQLite database; back it up with the database, and set NEXUS_MASTER_KEY in production", "path", path)
		}
	}
	box, err = secretbox.New(key, c.MasterKeyPrev)
	if err != nil {
		return nil, "", fmt.Errorf("master key file %s: %w", path, err)
	}
	return box, source, nil
}

// MismatchError says that the key from source is not the one the database
// was set up with, and what to do.
func MismatchError(source string) error {
	return fmt.Errorf("%s does not match the master key this database was set up with; refusing to start, since the HS256 signing secrets sealed under that key would not open. "+
		"Use that key again. To rotate the key: set NEXUS_MASTER_KEY to the new key and NEXUS_MASTER_KEY_PREVIOUS to the old one on every instance, then run \"nexus admin rekey\"", source)
}
