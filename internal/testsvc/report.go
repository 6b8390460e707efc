package testsvc

import (
	"fmt"
	"io"
	"os"
	"testing"
)

// Announce prints one line that a developer running plain `go test ./...`
// should see, such as a backend skipped and why. go test prints a passing
// package's output only with -v; without it, the line goes to the terminal
// itself when there is one (the newcomer's case), else to stderr (shown
// when the package fails). Call it from TestMain, after flag parsing.
func Announce(format string, args ...any) {
	line := fmt.Sprintf(format, args...) + "\n"
	if testing.Verbose() {
		_, _ = io.WriteString(os.Stdout, line)
		return
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if _, err := io.WriteString(tty, line); err == nil {
			return
		}
	}
	_, _ = io.WriteString(os.Stderr, line)
}

// Finish ends a TestMain that used Get: it removes the containers and,
// when the run failed (code != 0) or is verbose, prints what testcontainers
// logged, which says why a container did not start.
func Finish(code int) {
	Stop()
	if log := Log(); log != "" && (code != 0 || testing.Verbose()) {
		fmt.Fprintf(os.Stderr, "testcontainers log:\n%s", log)
	}
}
