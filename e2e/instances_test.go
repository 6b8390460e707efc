package e2e

import (
	"testing"
	"time"
)

// A revocation, suspension or expiry made on one instance takes effect on
// every instance within 1 second (CONTRACT §2), even for a key the other
// instance has cached. PostgreSQL instances hear it through the database's
// notifications; SQLite instances sharing the file poll for it.
func TestCrossInstanceRevocation(t *testing.T) { // serial: it measures a delay
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		serverA := b.Server(t)
		serverB := b.NewServer(t)
		tn := b.NewTenant(t, "approved")

		for _, c := range []struct {
			name, method, path string
			body               any
			status             int
			code               string
		}{
			{"revoke", "POST", "/revoke", nil, 200, "api_key_revoked"},
			{"DELETE", "DELETE", "", nil, 200, "api_key_revoked"},
			{"suspend", "POST", "/suspend", nil, 200, "api_key_suspended"},
			{"rotate without grace", "POST", "/rotate", map[string]any{"grace_period_seconds": 0}, 201, "api_key_expired"},
		} {
			t.Run(c.name, func(t *testing.T) {
				k := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read")
				for i := 0; i < 3; i++ { // B verifies it and caches the verification
					wantStatus(t, partnerAs(t, serverB, bearer(k.Key)), 200)
				}
				r := do(t, c.method, serverA.URL+"/v1/api_keys/"+k.ID+c.path, bearer(tn.Admin.Key), c.body)
				wantStatus(t, r, c.status)

				var last *Response
				took, ok := poll(3*time.Second, 50*time.Millisecond, func() bool {
					last = partnerAs(t, serverB, bearer(k.Key))
					return last.Status != 200
				})
				if !ok {
					t.Fatalf("server B still accepts the key %s after %s on server A (waited %s): %s", k.ID, c.name, took, last)
				}
				wantError(t, last, 401, c.code)
				if took >= time.Second {
					t.Errorf("server B saw the %s after %s, want < 1s", c.name, took)
				}
				t.Logf("server B refused the key %s after %s", k.ID, took.Round(time.Millisecond))
			})
		}
	})
}
