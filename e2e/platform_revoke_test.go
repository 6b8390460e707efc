package e2e

// Revoking a platform service with `nexus admin service revoke` (issue 11,
// item 8). The helpers of this file are prefixed pr so that they never
// collide with the harness's own.

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// prService is a platform service as `nexus admin service` prints it.
type prService struct {
	Object      string     `json:"object"`
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Status      string     `json:"status"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
}

// prList runs `nexus admin service list` and returns the services by id.
func prList(t *testing.T, b *Backend) map[string]prService {
	t.Helper()
	out := b.CLI(t, "admin", "service", "list")
	var l struct {
		Object  string      `json:"object"`
		Data    []prService `json:"data"`
		HasMore bool        `json:"has_more"`
	}
	decodeJSON(t, "admin service list", out, &l)
	if l.Object != "list" || l.HasMore {
		t.Fatalf("admin service list: %s", out)
	}
	m := make(map[string]prService, len(l.Data))
	for _, s := range l.Data {
		m[s.ID] = s
	}
	return m
}

// A platform service revoked through the CLI (another process) has its
// tokens refused on every instance within a second, a token each instance
// had verified and cached included. Serial: it measures that second.
func TestPlatformServiceRevocation(t *testing.T) {
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		servers := []*Server{b.NewServer(t), b.NewServer(t)}
		tn := b.NewTenant(t, "approved")
		doomedID, _, doomedKey := stPlatform(t, b, "internal:funding")
		keptID, _, keptKey := stPlatform(t, b, "internal:funding")
		token := func(id string, key ed25519.PrivateKey) H {
			return bearer(stMintPlatform(t, sdk.PlatformTokenParams{ServiceID: id, PrivateKey: key, Partner: tn.Partner.ID, Environment: "test"}))
		}
		tok := token(doomedID, doomedKey)
		for _, s := range servers {
			for i := 0; i < 3; i++ { // verified once, then from the cache
				wantStatus(t, partnerAs(t, s, tok), 200)
			}
		}
		if l := prList(t, b); l[doomedID].Status != "active" || l[doomedID].RevokedAt != nil {
			t.Fatalf("before revocation the list shows %+v", l[doomedID])
		}

		start := time.Now()
		out := b.CLI(t, "admin", "service", "revoke", "--id", doomedID)
		committed := time.Now() // the CLI commits before it prints and exits
		var svc prService
		decodeJSON(t, "admin service revoke", out, &svc)
		if svc.Object != "platform_service" || svc.ID != doomedID || svc.Status != "revoked" || svc.RevokedAt == nil ||
			svc.RevokedAt.Before(svc.CreatedAt) || !sameSet(svc.Permissions, []string{"internal:funding"}) {
			t.Fatalf("admin service revoke: %s", out)
		}

		// Each instance is asked until it refuses; both are watched at once.
		took, last := watchRefusal(t, servers, tok, committed)
		for i, s := range servers {
			if took[i] < 0 {
				t.Fatalf("instance %d (%s) still accepts the revoked service's token 5 s after the CLI returned: %s", i, s.URL, last[i])
			}
			wantError(t, last[i], 401, "invalid_token")
			t.Logf("%s: instance %d refused the revoked service's token %s after the CLI returned (%s after it started)",
				b.Name, i, took[i].Round(time.Millisecond), (took[i] + committed.Sub(start)).Round(time.Millisecond))
			if took[i] >= time.Second {
				t.Errorf("instance %d refused the revoked service's token after %s, want < 1s", i, took[i])
			}
			// A token minted after the revocation is refused too; the other
			// service is untouched.
			wantError(t, partnerAs(t, s, token(doomedID, doomedKey)), 401, "invalid_token")
			wantStatus(t, partnerAs(t, s, token(keptID, keptKey)), 200)
		}

		// The row keeps the record; a revocation is final.
		l := prList(t, b)
		if got := l[doomedID]; got.Status != "revoked" || got.RevokedAt == nil || !got.RevokedAt.Equal(*svc.RevokedAt) {
			t.Errorf("after revocation the list shows %+v, want revoked at %v", got, svc.RevokedAt)
		}
		if got := l[keptID]; got.Status != "active" || got.RevokedAt != nil {
			t.Errorf("the other service: %+v", got)
		}
		for _, c := range []struct {
			args []string
			code string
		}{
			{[]string{"--id", doomedID}, "invalid_state"},
			{[]string{"--id", "svc_" + strings.Repeat("0", 26)}, "resource_missing"},
			{nil, "parameter_missing"},
		} {
			out, errOut, err := b.RunCLI(append([]string{"admin", "service", "revoke"}, c.args...)...)
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			if err == nil || len(out) != 0 || json.Unmarshal(errOut, &e) != nil || e.Error.Code != c.code {
				t.Errorf("admin service revoke %v: err %v, stdout %q, stderr %q; want exit 1 and %s", c.args, err, out, errOut, c.code)
			}
		}
	})
}
