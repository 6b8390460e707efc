package audit

import (
	"context"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// Flushes add to the hourly counters (across flushes, per credential, hour
// and tenant), and Usage reads them back into whole windows.
func TestUsageCountsFlushes(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		a := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		b := nexus.Tenant{PartnerID: "ptr_b", Environment: nexus.Test}
		now := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
		row := func(tn nexus.Tenant, cred string, at time.Time, status int) Access {
			x := access(tn, cred, at, "/v1/balances")
			x.Status = status
			return x
		}
		// Two flushes into the same hour, one an hour earlier, one two
		// days earlier, and another tenant's.
		for _, batch := range [][]Access{
			{row(a, "key_1", now, 200), row(a, "key_1", now, 401), row(a, "key_2", now, 200), row(b, "key_9", now, 200)},
			{row(a, "key_1", now.Add(time.Minute), 500), row(a, "key_1", now.Add(-time.Hour), 200), row(a, "key_1", now.Add(-48*time.Hour), 200)},
		} {
			if err := countUsage(ctx, db.DB, batch); err != nil {
				t.Fatal(err)
			}
		}
		u, err := usageAt(ctx, db.DB, a, UsageParams{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Data) != 2 || u.Data[0].CredentialID != "key_1" || u.Data[1].CredentialID != "key_2" {
			t.Fatalf("hourly series: %+v", u.Data)
		}
		k1 := u.Data[0]
		if len(k1.Buckets) != 24 || k1.Requests != 4 || k1.Errors != 2 {
			t.Errorf("key_1 over 24 h: %d buckets, %d requests, %d errors; want 24, 4, 2", len(k1.Buckets), k1.Requests, k1.Errors)
		}
		last, prev := k1.Buckets[23], k1.Buckets[22]
		if !last.Start.Equal(now.Truncate(time.Hour)) || last.Requests != 3 || last.Errors != 2 || prev.Requests != 1 {
			t.Errorf("key_1's last hours: %+v, %+v", prev, last)
		}
		if u.Total.Requests != 5 || u.Total.Buckets[23].Requests != 4 {
			t.Errorf("total: %d requests, last hour %d; want 5 and 4", u.Total.Requests, u.Total.Buckets[23].Requests)
		}
		d, err := usageAt(ctx, db.DB, a, UsageParams{Granularity: "day", CredentialID: "key_1"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Data) != 1 || len(d.Data[0].Buckets) != 30 || d.Data[0].Requests != 5 || d.Data[0].Buckets[29].Requests != 4 || d.Data[0].Buckets[27].Requests != 1 {
			t.Errorf("daily: %+v", d.Data)
		}
		other, err := usageAt(ctx, db.DB, nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}, UsageParams{}, now)
		if err != nil || len(other.Data) != 0 || other.Total.Requests != 0 {
			t.Errorf("the live environment sees test usage: %+v %v", other, err)
		}
	})
}
