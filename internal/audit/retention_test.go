package audit

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": DefaultRetention, "1d": 24 * time.Hour, "2160h": DefaultRetention, "off": 0, "0": 0} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "0d", "90", "1m", "ninety"} {
		if got, err := ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) = %v, want an error", in, got)
		}
	}
}

// idAt makes the request id number i of time at.
func idAt(at time.Time, i int) string {
	first := nexus.FirstIDAt("req", at)
	d := []byte(first)
	for j := len(d) - 1; i > 0; j-- {
		d[j] = idAlphabet[i%32]
		i /= 32
	}
	return string(d)
}

// TestPrune: access rows past the retention go, in batches, whoever's they
// are; newer ones and every lifecycle event stay, and the log still lists.
func TestPrune(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		now := time.Now().UTC()
		old := now.Add(-100 * 24 * time.Hour)
		tenants := []nexus.Tenant{{PartnerID: "ptr_a", Environment: nexus.Test}, {PartnerID: "ptr_b", Environment: nexus.Live}}
		log := NewAccessLog(db, 100, slog.New(slog.NewTextHandler(io.Discard, nil)))
		n := 0
		write := func(at time.Time, spread time.Duration) {
			var batch []Access
			for i := range 12 {
				n++
				tn := tenants[i%2]
				a := access(tn, []string{"key_1", "key_2", "key_3"}[i%3], at, "/v1/partner")
				a.At = at.Add(time.Duration(i) * spread)
				a.RequestID = idAt(a.At, n)
				batch = append(batch, a)
			}
			if err := log.write(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		write(old, 10*time.Second) // two minutes: several buckets
		write(old.Add(time.Hour), 0)
		write(now, 0)
		// Access rows from before chunks, and lifecycle events, old and new.
		for i, ev := range []Event{
			{ID: idAt(old, 1), Type: AccessType}, {ID: idAt(old, 2), Type: "api_key.created"},
			{ID: idAt(now, 1), Type: AccessType}, {ID: idAt(now, 2), Type: "api_key.revoked"},
		} {
			ev.ID = "evt_" + ev.ID[4:]
			ev.PartnerID, ev.Environment, ev.Data, ev.CreatedAt = "ptr_a", nexus.Test, "{}", old
			if i >= 2 {
				ev.CreatedAt = now
			}
			if _, err := db.For(tenants[0]).Insert(&ev).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		everyTenant := store.CrossTenant(db.DB, "test: pruning spans tenants")
		count := func(model any, where string, args ...any) int {
			t.Helper()
			c, err := everyTenant.Select(model).Where(where, args...).Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return int(c)
		}
		cutoff := "evt_" + idAt(now.Add(-DefaultRetention), 0)[4:]
		oldChunks := count((*AccessChunk)(nil), "id < ?", cutoff)
		newChunks := count((*AccessChunk)(nil), "id >= ?", cutoff)
		oldRefs := count((*AccessCredential)(nil), "bucket < ?", cutoff[4:4+bucketDigits])
		newRefs := count((*AccessCredential)(nil), "bucket >= ?", cutoff[4:4+bucketDigits])
		if oldChunks < 4 || newChunks < 2 || oldRefs < 6 || newRefs < 6 {
			t.Fatalf("before pruning: %d old and %d new chunks, %d old and %d new credential rows: the test proves little",
				oldChunks, newChunks, oldRefs, newRefs)
		}

		p := &Pruner{DB: db.DB, Retention: DefaultRetention, Batch: 2, Now: func() time.Time { return now }}
		got, err := p.Prune(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := Pruned{Chunks: int64(oldChunks), Entries: 24, CredentialRows: int64(oldRefs), LegacyRows: 1}
		if got != want {
			t.Errorf("pruned %+v, want %+v", got, want)
		}
		if c := count((*AccessChunk)(nil), "id < ?", cutoff); c != 0 {
			t.Errorf("%d old chunks left", c)
		}
		if c := count((*AccessChunk)(nil), "id >= ?", cutoff); c != newChunks {
			t.Errorf("%d new chunks left, want %d", c, newChunks)
		}
		if c := count((*AccessCredential)(nil), "1 = 1"); c != newRefs {
			t.Errorf("%d credential rows left, want %d", c, newRefs)
		}
		var types []string
		if err := everyTenant.Select((*Event)(nil)).Column("type").OrderExpr("id").Scan(ctx, &types); err != nil {
			t.Fatal(err)
		}
		if want := []string{"api_key.created", AccessType, "api_key.revoked"}; len(types) != 3 || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
			t.Errorf("events left: %v, want %v", types, want)
		}
		r := NewReader(db)
		for _, p := range []ListParams{{Type: AccessType}, {Type: AccessType, CredentialID: "key_1"}} {
			p.Limit = 100
			views, _, err := r.List(ctx, tenants[0], p)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range views {
				if v.ID < cutoff {
					t.Errorf("list %+v shows pruned entry %s", p, v.ID)
				}
			}
		}
		if again, err := p.Prune(ctx); err != nil || again != (Pruned{}) {
			t.Errorf("second prune: %+v, %v; want nothing", again, err)
		}

		// A hundred days on, the rest of the access log goes too; the
		// lifecycle events stay.
		p.Now = func() time.Time { return now.Add(100 * 24 * time.Hour) }
		if _, err := p.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if c, e := count((*AccessChunk)(nil), "1 = 1"), count((*Event)(nil), "1 = 1"); c != 0 || e != 2 {
			t.Errorf("after every access row expired: %d chunks, %d events; want 0 and the 2 lifecycle events", c, e)
		}
	})
}
