package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/nexus-fintech/nexus/internal/app"
)

// cmdServe reads the configuration and runs the server until SIGINT or
// SIGTERM (internal/app does the wiring).
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := checkEnv(serveEnv); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	bindCommon(fs, &c)
	proxies, envs := bindServe(fs, &c)
	fs.BoolVar(&c.NoMigrate, "no-migrate", false, "do not apply pending migrations at start")
	demo := fs.Bool("demo", false, "create a demo partner and print a fresh test secret key (for trying Nexus locally)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := c.finishServe(*proxies, *envs); err != nil {
		return err
	}
	c.Logger = c.logger()
	if *demo {
		c.Demo = stdout
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.Open(ctx, c.Config)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
