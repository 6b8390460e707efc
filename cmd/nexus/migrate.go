package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/nexus-fintech/nexus/internal/store"
)

const migrateUsage = "usage: nexus migrate up | down [--all --yes] | status"

func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var c config
	bindCommon(fs, &c)
	all := fs.Bool("all", false, "down: roll back every migration, dropping all tables and data (needs --yes)")
	yes := fs.Bool("yes", false, "down --all: confirm dropping everything")
	// Flags may come before or after the subcommand.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sub := fs.Arg(0)
	if fs.NArg() > 0 {
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	if (sub != "up" && sub != "down" && sub != "status") || fs.NArg() != 0 {
		return usageError{msg: migrateUsage}
	}
	if *all && sub != "down" {
		return usageError{msg: "--all is a flag of migrate down; " + migrateUsage}
	}
	if *all && !*yes {
		return errors.New("migrate down --all rolls back every migration: it drops every table and all their data. " +
			"Run \"nexus migrate down --all --yes\" to confirm, or \"nexus migrate down\" to roll back only the last migration")
	}
	open := store.OpenExisting // status and down need a database to look at
	if sub == "up" {
		open = store.Open // creates the SQLite file when there is none
	}
	// PostgreSQL driver lines go through the command's logger, as serve's do.
	store.RouteDriverLogs(c.logger())
	db, err := open(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "up":
		names, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"applied": nonNil(names)})
	case "down":
		down := db.MigrateDown
		if *all {
			down = db.MigrateDownAll
		}
		names, err := down(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"rolled_back": nonNil(names)})
	}
	st, err := db.MigrateStatus(ctx)
	if err != nil {
		return err
	}
	return printJSON(stdout, map[string]any{"migrations": st})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
