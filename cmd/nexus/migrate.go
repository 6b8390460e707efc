package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/nexus-fintech/nexus/internal/store"
)

func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var c config
	bindCommon(fs, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: nexus migrate up|down|status")
	}
	db, err := store.Open(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	switch fs.Arg(0) {
	case "up":
		names, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"applied": nonNil(names)})
	case "down":
		names, err := db.MigrateDown(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"rolled_back": nonNil(names)})
	case "status":
		st, err := db.MigrateStatus(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"migrations": st})
	}
	return fmt.Errorf("usage: nexus migrate up|down|status")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
