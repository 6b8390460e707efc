package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nexus-fintech/nexus/internal/app"
	"github.com/nexus-fintech/nexus/internal/masterkey"
	"github.com/nexus-fintech/nexus/internal/store"
)

// cmdAdminRekey re-seals every stored secret under NEXUS_MASTER_KEY, in one
// transaction, and records that key: the last step of a rotation, after
// which NEXUS_MASTER_KEY_PREVIOUS can be removed.
func cmdAdminRekey(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("admin rekey", flag.ContinueOnError)
	var c config
	bindCommon(fs, &c)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("usage: nexus admin rekey (keys from NEXUS_MASTER_KEY and NEXUS_MASTER_KEY_PREVIOUS)")
	}
	c.MasterKey = os.Getenv("NEXUS_MASTER_KEY")
	c.MasterKeyPrev = os.Getenv("NEXUS_MASTER_KEY_PREVIOUS")
	db, err := openExisting(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	box, source, err := app.LoadMasterKey(ctx, c.Config, db, c.logger(), false)
	if err != nil {
		return err
	}
	res, err := masterkey.Rekey(ctx, db, box)
	if errors.Is(err, masterkey.ErrMismatch) {
		return fmt.Errorf("%w: set NEXUS_MASTER_KEY_PREVIOUS to the key the secrets are sealed under (%s is the new key); nothing was changed", err, source)
	}
	if err != nil {
		return err
	}
	return printJSON(stdout, res)
}

// openExisting opens the configured database for a command that uses it
// but must not create it (admin commands): the schema must be migrated.
func openExisting(ctx context.Context, c config) (*store.DB, error) {
	store.RouteDriverLogs(c.logger()) // as serve does: no bare driver lines on stderr
	db, err := store.OpenExisting(ctx, c.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := db.RequireMigrated(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
