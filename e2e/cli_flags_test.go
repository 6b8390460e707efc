package e2e

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// exitCode is the exit status of a finished runNexus (0 for success).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("nexus did not run: %v", err)
	return -1
}

// `nexus --version` names the module version and the Go toolchain; -h on
// every command exits 0 with usage listing its flags; a flag a command does
// not have exits 2 (issue 15, Operating it).
func TestCLIVersionHelpAndUnknownFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, arg := range []string{"--version", "-version", "version"} {
		out, errOut, err := runNexus(dir, processEnv(), arg)
		if c := exitCode(t, err); c != 0 || !regexp.MustCompile(`^nexus \S+ .*go1\.\d+`).Match(out) {
			t.Errorf("nexus %s: exit %d, stdout %q, stderr %q; want 0 and \"nexus VERSION … goX.Y\"", arg, c, out, errOut)
		}
	}

	for _, c := range []struct {
		args []string
		flag string // one flag its usage must list
	}{
		{[]string{"serve"}, "-tls-cert"},
		{[]string{"migrate"}, "-all"},
		{[]string{"healthcheck"}, "-listen"},
		{[]string{"admin"}, "partner create"},
		{[]string{"admin", "partner", "create"}, "-name"},
		{[]string{"admin", "partner", "set-status"}, "-status"},
		{[]string{"admin", "partner", "list"}, "-database-url"},
		{[]string{"admin", "partner", "show"}, "-id"},
		{[]string{"admin", "partner", "lockdown"}, "-environment"},
		{[]string{"admin", "key", "set-limits"}, "-id"},
		{[]string{"admin", "key", "create"}, "-allowed-origins"},
		{[]string{"admin", "key", "list"}, "-partner"},
		{[]string{"admin", "key", "suspend"}, "-id"},
		{[]string{"admin", "key", "revoke"}, "-id"},
		{[]string{"admin", "member", "create"}, "-email"},
		{[]string{"admin", "member", "list"}, "-partner"},
		{[]string{"admin", "service", "create"}, "-public-key"},
		{[]string{"admin", "service", "list"}, "-database-url"},
		{[]string{"admin", "service", "revoke"}, "-id"},
		{[]string{"admin", "client", "list"}, "-partner"},
		{[]string{"admin", "client", "disable"}, "-id"},
		{[]string{"admin", "client", "enable"}, "-id"},
		{[]string{"admin", "client", "delete"}, "-id"},
		{[]string{"admin", "rekey"}, "-database-url"},
	} {
		name := strings.Join(c.args, " ")
		out, errOut, err := runNexus(dir, processEnv(), append(c.args, "-h")...)
		if code := exitCode(t, err); code != 0 || !strings.Contains(string(out)+string(errOut), c.flag) {
			t.Errorf("nexus %s -h: exit %d, output %q; want 0 and usage listing %s", name, code, string(out)+string(errOut), c.flag)
		}
		if c.args[0] == "admin" && len(c.args) == 1 {
			continue // admin alone is not a command with flags
		}
		_, errOut, err = runNexus(dir, processEnv(), append(c.args, "--no-such-flag")...)
		if code := exitCode(t, err); code != 2 || !strings.Contains(string(errOut), "no-such-flag") {
			t.Errorf("nexus %s --no-such-flag: exit %d, stderr %q; want 2 naming the flag", name, code, errOut)
		}
	}
	for _, args := range [][]string{{"frobnicate"}, {"admin", "partner", "frob"}, {"migrate", "sideways"}, {"serve", "--log-level", "loud"}} {
		_, errOut, err := runNexus(dir, processEnv(), args...)
		if code := exitCode(t, err); code != 2 {
			t.Errorf("nexus %s: exit %d, stderr %q; want 2", strings.Join(args, " "), code, errOut)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("help and refused command lines left %v behind", entries)
	}
}

// An invalid setting stops the command before it does anything, naming the
// variable and what it accepts (issue 15, Operating it).
func TestCLIConfigErrorsFailFast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		env  string
		args []string
		want string // what the message must say is accepted
	}{
		{"NEXUS_LOG_LEVEL=verbose", []string{"migrate", "status"}, "debug, info, warn, error"},
		{"NEXUS_LOG_LEVEL=verbose", []string{"serve"}, "debug, info, warn, error"},
		{"NEXUS_LOG_FORMAT=xml", []string{"admin", "partner", "list"}, "text, json"},
		{"NEXUS_LOG_FORMAT=JSON", []string{"serve"}, "text, json"},
		{"NEXUS_ACCESS_LOG=maybe", []string{"serve"}, "on, off"},
		{"NEXUS_HSTS=yes", []string{"serve"}, "1, 0, true, false"},
		{"NEXUS_IP_RATE_LIMIT=lots", []string{"serve"}, "whole number of at least 1"},
		{"NEXUS_FAILED_AUTH_LIMIT=0", []string{"serve"}, "whole number of at least 1"},
		{"NEXUS_PASSWORD_CHECKS=-4", []string{"serve"}, "whole number of at least 1"},
		{"NEXUS_PASSWORD_CHECKS=2.5", []string{"serve"}, "whole number of at least 1"},
		{"NEXUS_EXPIRY_WARNING_INTERVAL=soon", []string{"serve"}, "positive duration"},
		{"NEXUS_EXPIRY_WARNING_INTERVAL=-1m", []string{"serve"}, "positive duration"},
		{"NEXUS_METRICS_TOKEN=short", []string{"serve"}, "at least 16 characters"},
		{"NEXUS_TRUSTED_PROXIES=10.0.0.300", []string{"serve"}, "not an IP or CIDR"},
	} {
		name, _, _ := strings.Cut(c.env, "=")
		_, errOut, err := runNexus(dir, processEnv(c.env, "NEXUS_LISTEN=127.0.0.1:0"), c.args...)
		if code := exitCode(t, err); code == 0 || !strings.Contains(string(errOut), name) || !strings.Contains(string(errOut), c.want) {
			t.Errorf("%s nexus %s: exit %d, stderr %q; want a failure naming %s and %q", c.env, strings.Join(c.args, " "), code, errOut, name, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("commands refused for their configuration left %v behind (a database?)", entries)
	}
}
