// Command nexus-bench is Nexus's load benchmark over loopback: it starts the
// server (internal/app, as nexus serve does) on a fresh database and
// measures requests/s, latency and CPU per request of the authenticated
// paths against an unauthenticated baseline. See nexus-bench -h.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(runChild(os.Args[2:]))
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := cmdBench(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0 // the flag set has printed its usage
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "nexus-bench: %v\n", err)
	return 1
}

// errUsage is a command line that is not one (exit status 2); the flag set
// has said what is wrong.
var errUsage = errors.New("usage")

// parseFlags is fs.Parse with errUsage for flags that are not fs's or
// values they refuse; -h and -help give flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
