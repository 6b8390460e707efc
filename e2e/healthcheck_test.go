package e2e

import (
	"strings"
	"testing"
)

// `nexus healthcheck` (the image's HEALTHCHECK) exits 0 when the server on
// NEXUS_LISTEN answers /readyz, 1 when nothing answers.
func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		dir := t.TempDir()
		out, errOut, err := runNexus(dir, processEnv("NEXUS_LISTEN="+s.Addr), "healthcheck")
		if code := exitCode(t, err); code != 0 || strings.TrimSpace(string(out)) != "ready" {
			t.Errorf("nexus healthcheck of a running server: exit %d, stdout %q, stderr %q; want 0 and ready", code, out, errOut)
		}
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, errOut, err = runNexus(dir, processEnv("NEXUS_LISTEN="+addr), "healthcheck", "--timeout", "2s")
		if code := exitCode(t, err); code != 1 || !strings.Contains(string(errOut), "healthcheck") {
			t.Errorf("nexus healthcheck with no server: exit %d, stderr %q; want 1", code, errOut)
		}
	})
}
