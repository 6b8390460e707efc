// Command nexus is the Nexus partner API: the server, its migrations and
// the operator's admin commands, in one binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

const usage = `usage: nexus <command> [flags]

  serve                         run the API server
  migrate up|status             manage the database schema (up creates the database)
  migrate down [--all --yes]    roll back the last migration (--all --yes: everything)
  bench                         load benchmark over loopback (see nexus bench -h)
  admin partner create|set-status|list|show
  admin key create|list|suspend|revoke|set-limits
  admin member create|list      (create: password as one line on stdin)
  admin service create|list|revoke
  admin client list|disable|enable|delete
  admin rekey                   re-seal stored secrets under NEXUS_MASTER_KEY

Run "nexus <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout)
	case "admin":
		err = cmdAdmin(ctx, args[1:], stdin, stdout)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "nexus: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	var ne *nexus.Error
	if errors.As(err, &ne) {
		// Admin commands answer in JSON on both streams, like the API.
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": ne.Code, "message": ne.Message, "param": ne.Param}})
		fmt.Fprintln(stderr, string(b))
		return 1
	}
	fmt.Fprintf(stderr, "nexus: %v\n", err)
	return 1
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
