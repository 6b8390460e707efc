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
	"runtime/debug"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

const usage = `usage: nexus <command> [flags]

  serve                         run the API server
  migrate up|status             manage the database schema (up creates the database)
  migrate down [--all --yes]    roll back the last migration (--all --yes: everything)
  admin partner create|set-status|list|show
  admin key create|list|suspend|revoke|set-limits
  admin member create|list      (create: --role owner|admin|developer|viewer, default owner;
                                password as one line on stdin, or typed unechoed on a terminal)
  admin service create|list|revoke
  admin client list|disable|enable|delete
  admin rekey                   re-seal stored secrets under NEXUS_MASTER_KEY
  healthcheck                   exit 0 if the server on NEXUS_LISTEN is ready (GET /readyz)
  version, --version            the module version and VCS revision of this binary

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
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, version())
		return 0
	}
	if err := checkEnv(commonEnv); err != nil {
		fmt.Fprintf(stderr, "nexus: invalid configuration:\n%v\n", err)
		return 1
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout)
	case "admin":
		err = cmdAdmin(ctx, args[1:], stdin, stdout)
	case "healthcheck":
		err = cmdHealthcheck(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "nexus: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0 // the flag set has printed its usage
	}
	var ue usageError
	if errors.As(err, &ue) {
		if ue.msg != "" {
			fmt.Fprintf(stderr, "nexus: %s\n", ue.msg)
		}
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

// usageError is a command line that is not one: exit status 2. msg is
// empty when the flag set has said what is wrong already.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// parseFlags is fs.Parse with a usage error for flags that are not fs's or
// values they refuse. fs has printed the problem and its usage; -h and
// -help give flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{}
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// version is the module's version and the VCS revision it was built from,
// as the Go toolchain recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "nexus (no build information)"
	}
	return formatVersion(bi)
}

// formatVersion says "nexus VERSION [REVISION[+dirty] TIME] GOVERSION". The
// toolchain records the revision when it builds inside a git checkout (not
// a git worktree, nor a tree copied without .git).
func formatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	out := "nexus " + v
	if rev != "" {
		out += " " + rev + dirty
		if at != "" {
			out += " " + at
		}
	}
	return out + " " + bi.GoVersion
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
