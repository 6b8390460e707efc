package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// GET /v1/usage counts exactly the requests the test made, per credential
// and environment, through the Go SDK; other tenants see none of them.
func TestUsageCountsRequests(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		other := b.NewTenant(t, "approved")
		worker := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read:balances")
		reader := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read:usage")
		live := b.CreateKey(t, tn.Partner.ID, "live", "secret")

		const ok, refused = 5, 3
		for range ok {
			wantStatus(t, do(t, "GET", s.URL+"/v1/balances", bearer(worker.Key), nil), 200)
		}
		for range refused {
			wantStatus(t, do(t, "GET", s.URL+"/v1/funding", bearer(worker.Key), nil), 403)
		}

		c := sdk.NewClient(reader.Key, sdk.WithBaseURL(s.URL), sdk.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
		ctx := context.Background()
		// The counters follow the access log, written about once a second:
		// wait for them (bounded), never for a fixed time.
		var u *sdk.Usage
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			u, err = c.Usage.Get(ctx, &sdk.UsageParams{CredentialID: worker.ID})
			if err != nil {
				t.Fatalf("GET /v1/usage: %v", err)
			}
			if len(u.Data) == 1 && u.Data[0].Requests >= ok+refused {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the usage never reached %d requests: %+v", ok+refused, u)
			}
			time.Sleep(100 * time.Millisecond)
		}
		w := u.Data[0]
		if u.Object != "usage" || u.Environment != "test" || u.Granularity != "hour" || len(w.Buckets) != 24 {
			t.Errorf("usage: %+v", u)
		}
		if w.CredentialID != worker.ID || w.Requests != ok+refused || w.Errors != refused {
			t.Errorf("the worker key: %d requests, %d errors; want %d and %d", w.Requests, w.Errors, ok+refused, refused)
		}
		last := w.Buckets[len(w.Buckets)-1]
		if last.Requests != ok+refused && w.Buckets[len(w.Buckets)-2].Requests+last.Requests != ok+refused {
			t.Errorf("the requests are not in the last hours: %+v", w.Buckets)
		}
		d, err := c.Usage.Get(ctx, &sdk.UsageParams{Granularity: "day", CredentialID: worker.ID})
		if err != nil || len(d.Data) != 1 || len(d.Data[0].Buckets) != 30 || d.Data[0].Requests != ok+refused || d.Data[0].Errors != refused {
			t.Errorf("daily usage: %+v %v", d, err)
		}

		// The other environment and another partner see none of it.
		lu := do(t, "GET", s.URL+"/v1/usage?credential_id="+worker.ID, bearer(live.Key), nil)
		if wantStatus(t, lu, 200); len(lu.Data()) != 0 {
			t.Errorf("the live environment sees test usage: %s", lu)
		}
		ou := do(t, "GET", s.URL+"/v1/usage?credential_id="+worker.ID, bearer(other.Admin.Key), nil)
		if wantStatus(t, ou, 200); len(ou.Data()) != 0 {
			t.Errorf("another partner sees this partner's usage: %s", ou)
		}
		// Scope and bad input.
		if r := do(t, "GET", s.URL+"/v1/usage", bearer(worker.Key), nil); r.Status != 403 || r.Str("error.code") != "insufficient_scope" {
			t.Errorf("a key without read:usage: %s", r)
		}
		if r := do(t, "GET", s.URL+"/v1/usage?granularity=week", bearer(reader.Key), nil); r.Status != 400 || r.Str("error.param") != "granularity" {
			t.Errorf("granularity=week: %s", r)
		}
		if r := do(t, "GET", s.URL+"/v1/usage", bearer(tn.Admin.Key), nil); r.Status != 200 {
			t.Errorf("admin:all reads usage: %s", r)
		}
	})
}
