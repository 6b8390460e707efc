package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// -h prints the usage with its flags and exits 0; a flag the bench does not
// have, or a value it refuses, exits 2 before anything runs.
func TestCommandLine(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "-connections") || !strings.Contains(errOut.String(), "oauth_introspect") {
		t.Errorf("-h: exit %d, output %q; want 0 and a usage listing -connections and oauth_introspect", code, errOut.String())
	}
	for _, args := range [][]string{{"--no-such-flag"}, {"--connections", "many"}} {
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming the flag", args, code, errOut.String())
		}
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"--scenarios", "nope"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "unknown scenario") {
		t.Errorf("--scenarios nope: exit %d, stderr %q; want 1 and unknown scenario", code, errOut.String())
	}
}
