package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// migrate brings db to the latest schema, and from then on fails t on any
// query on a tenant table that neither store.For nor store.CrossTenant
// built: this package's and its tests'.
func migrate(t testing.TB, db *store.DB) {
	t.Helper()
	if _, err := db.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	storetest.CheckTenancy(t, db)
}

func access(tn nexus.Tenant, cred string, at time.Time, path string) Access {
	return Access{Tenant: tn, CredentialID: cred, Actor: "actor-" + cred, Method: "GET", Path: path,
		Status: 200, IP: "192.0.2.7", RequestID: nexus.NewID("req"), At: at}
}

func TestBuildChunksGroupsAndSplits(t *testing.T) {
	tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var batch []Access
	for i := range 7 {
		cred := "key_1"
		if i%3 == 2 {
			cred = "key_2"
		}
		batch = append(batch, access(tn, cred, base.Add(time.Duration(6-i)*time.Millisecond), fmt.Sprintf("/p/%d", i)))
	}
	batch[4].RequestID = "from-elsewhere" // an id that is not ours: the entry keeps an id of its own
	batch[3].Path = "/p/3\"\n<é\xff"      // a client's path may hold anything
	// Another tenant's entries, and the tenant's of a later bucket, go in
	// chunks of their own.
	other := access(nexus.Tenant{PartnerID: "ptr_b", Environment: nexus.Test}, "key_9", base, "/other")
	later := access(tn, "key_1", base, "/later")
	// (Made by hand: asking the id generator for a later time would
	// hold every id after it to that time.)
	later.RequestID = "req_" + nextBucket(bucketOf(later.RequestID[4:])) + later.RequestID[4+bucketDigits:]
	batch = append(batch, other, later)
	chunks, refs := buildChunks(batch, 3, nil)
	sawOdd := false
	// ptr_a's seven entries make chunks of 3, 3 and 1, whatever their
	// credential; ptr_b's one and the later one a chunk each.
	var got []string
	for _, c := range chunks {
		got = append(got, fmt.Sprintf("%s/%d", c.PartnerID, c.Entries))
		if c.CredentialID != "" || c.Actor != "" {
			t.Errorf("chunk %s names credential %q, actor %q: its entries do", c.ID, c.CredentialID, c.Actor)
		}
		if c.Bucket != c.ID[4:4+bucketDigits] || c.Bucket != c.MinID[4:4+bucketDigits] {
			t.Errorf("chunk %s..%s has bucket %s", c.MinID, c.ID, c.Bucket)
		}
	}
	if want := []string{"ptr_a/3", "ptr_a/3", "ptr_a/1", "ptr_b/1", "ptr_a/1"}; !slices.Equal(got, want) {
		t.Fatalf("chunks %v, want %v", got, want)
	}
	if chunks[4].Bucket != nextBucket(chunks[0].Bucket) {
		t.Errorf("the later entry is in bucket %s, not after %s", chunks[4].Bucket, chunks[0].Bucket)
	}
	var gotRefs []string
	for _, r := range refs {
		gotRefs = append(gotRefs, r.PartnerID+"/"+r.CredentialID+"/"+string(r.Environment)+"/"+r.Bucket)
	}
	b0, b1 := chunks[0].Bucket, chunks[4].Bucket
	if want := []string{"ptr_a/key_1/test/" + b0, "ptr_a/key_2/test/" + b0, "ptr_b/key_9/test/" + b0, "ptr_a/key_1/test/" + b1}; !slices.Equal(gotRefs, want) {
		t.Fatalf("credential rows %v, want %v", gotRefs, want)
	}
	for _, c := range chunks {
		entries, err := ParseChunk(c.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != c.Entries {
			t.Fatalf("chunk %s: %d lines, Entries says %d", c.ID, len(entries), c.Entries)
		}
		var ids []string
		var times []time.Time
		for _, e := range entries {
			ids = append(ids, e.ID)
			times = append(times, e.Time())
			if e.Path == "/p/3\"\n<é\ufffd" {
				sawOdd = true
			}
			if e.Method != "GET" || e.Status != 200 || e.IP != "192.0.2.7" || !strings.HasPrefix(e.Path, "/") ||
				e.CredentialID == "" || e.Actor != "actor-"+e.CredentialID {
				t.Errorf("entry %+v lost a field", e)
			}
			if e.RequestID == "from-elsewhere" {
				if !strings.HasPrefix(e.ID, "evt_") || len(e.ID) != 30 {
					t.Errorf("entry of a foreign request id has id %q", e.ID)
				}
			} else if e.ID != "evt_"+strings.TrimPrefix(e.RequestID, "req_") {
				t.Errorf("entry id %s is not derived from its request %s", e.ID, e.RequestID)
			}
		}
		if c.ID != slices.Max(ids) || c.MinID != slices.Min(ids) {
			t.Errorf("chunk ids %s..%s, entries %v", c.MinID, c.ID, ids)
		}
		if !c.FirstAt.Equal(slices.MinFunc(times, time.Time.Compare)) || !c.LastAt.Equal(slices.MaxFunc(times, time.Time.Compare)) {
			t.Errorf("chunk times %v..%v, entries %v", c.FirstAt, c.LastAt, times)
		}
	}
	if !sawOdd {
		t.Error("a path with quotes, a newline, HTML and invalid UTF-8 did not come back as encoding/json decodes it")
	}
}

// TestListMergesEventsAndAccess pages through a tenant's log (lifecycle
// events and access entries spread over several chunks) with every filter,
// and checks each page against the same list computed directly.
func TestListMergesEventsAndAccess(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		other := nexus.Tenant{PartnerID: "ptr_b", Environment: nexus.Test}
		live := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}
		log := NewAccessLog(db, 100, slog.New(slog.NewTextHandler(io.Discard, nil)))

		// Each access row a microsecond of its own at least, for the time
		// filters, and no earlier than the lifecycle events recorded
		// before it.
		var last time.Time
		tick := func() time.Time {
			last = last.Add(time.Microsecond)
			if now := time.Now().UTC().Truncate(time.Microsecond); now.After(last) {
				last = now
			}
			return last
		}
		var all []*View // tn's events, as List should show them
		for flush := range 4 {
			var batch []Access
			for i := range 9 {
				cred := []string{"key_1", "key_2", "svc_1"}[i%3]
				a := access(tn, cred, tick(), fmt.Sprintf("/v1/x/%d/%d", flush, i))
				a.Status = 200 + i
				batch = append(batch, a, access(other, cred, time.Now(), "/other"), access(live, cred, time.Now(), "/live"))
				at := a.At
				all = append(all, &View{Object: "audit_event", ID: eventID(a.RequestID), Type: AccessType, Environment: nexus.Test,
					CredentialID: cred, Actor: "actor-" + cred, IP: a.IP, RequestID: a.RequestID, Method: "GET",
					Path: a.Path, Status: a.Status, CreatedAt: at})
				if i%4 == 0 {
					oc := WithOrigin(ctx, Origin{CredentialID: cred, Actor: "actor-" + cred, IP: "192.0.2.9", RequestID: nexus.NewID("req")})
					if err := Record(oc, db.DB, tn, "api_key.created", fmt.Sprintf("key_%d_%d", flush, i), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := log.write(ctx, batch); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		var evs []Event
		if err := db.For(tn).Select(&evs).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			all = append(all, &View{Object: "audit_event", ID: e.ID, Type: e.Type, Environment: e.Environment, ObjectID: e.ObjectID,
				CredentialID: e.CredentialID, Actor: e.Actor, IP: e.IP, RequestID: e.RequestID, CreatedAt: e.CreatedAt})
		}
		slices.SortFunc(all, func(a, b *View) int { return strings.Compare(b.ID, a.ID) })
		mid := all[len(all)/2].CreatedAt
		late := all[len(all)/5].CreatedAt

		r := NewReader(db)
		for _, tc := range []struct {
			name string
			p    ListParams
			keep func(*View) bool
		}{
			{"all", ListParams{}, func(*View) bool { return true }},
			{"access only", ListParams{Type: AccessType}, func(v *View) bool { return v.Type == AccessType }},
			{"lifecycle type", ListParams{Type: "api_key.created"}, func(v *View) bool { return v.Type == "api_key.created" }},
			{"credential", ListParams{CredentialID: "key_2"}, func(v *View) bool { return v.CredentialID == "key_2" }},
			{"after", ListParams{CreatedAfter: &mid}, func(v *View) bool { return v.CreatedAt.After(mid) }},
			{"window", ListParams{CreatedAfter: &mid, CreatedBefore: &late, CredentialID: "svc_1"}, func(v *View) bool {
				return v.CreatedAt.After(mid) && v.CreatedAt.Before(late) && v.CredentialID == "svc_1"
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []*View
				for _, v := range all {
					if tc.keep(v) {
						want = append(want, v)
					}
				}
				if len(want) == 0 {
					t.Fatal("the case selects nothing: the test would prove nothing")
				}
				p := tc.p
				p.Limit = 7
				var got []*View
				for pages := 0; ; pages++ {
					if pages > 50 {
						t.Fatal("paging does not end")
					}
					page, more, err := r.List(ctx, tn, p)
					if err != nil {
						t.Fatalf("list: %v", err)
					}
					if len(page) > p.Limit || (more && len(page) != p.Limit) {
						t.Fatalf("page of %d with more=%v at limit %d", len(page), more, p.Limit)
					}
					got = append(got, page...)
					if !more {
						break
					}
					p.StartingAfter = page[len(page)-1].ID
				}
				if len(got) != len(want) {
					t.Fatalf("listed %d events, want %d", len(got), len(want))
				}
				for i := range want {
					g, w := *got[i], *want[i]
					g.Data, w.Data = nil, nil
					if !g.CreatedAt.Equal(w.CreatedAt) {
						t.Fatalf("event %d: created_at %v, want %v", i, g.CreatedAt, w.CreatedAt)
					}
					g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
					if !reflect.DeepEqual(g, w) {
						t.Fatalf("event %d:\n got %+v\nwant %+v", i, g, w)
					}
				}
			})
		}

		t.Run("cursor of another tenant or environment", func(t *testing.T) {
			theirs, _, err := r.List(ctx, other, ListParams{Page: store.Page{Limit: 1}, Type: AccessType})
			if err != nil || len(theirs) != 1 {
				t.Fatalf("other tenant's log: %v, %d", err, len(theirs))
			}
			for _, id := range []string{theirs[0].ID, "evt_00000000000000000000000000"} {
				_, _, err := r.List(ctx, tn, ListParams{Page: store.Page{Limit: 5, StartingAfter: id}})
				if nexus.CodeOf(err) != nexus.CodeParameterInvalid {
					t.Errorf("cursor %s: err %v, want parameter_invalid", id, err)
				}
			}
			if _, _, err := r.List(ctx, live, ListParams{Page: store.Page{Limit: 5, StartingAfter: all[3].ID}}); nexus.CodeOf(err) != nexus.CodeParameterInvalid {
				t.Errorf("test-environment cursor in live: err %v", err)
			}
			mine, _, err := r.List(ctx, live, ListParams{Page: store.Page{Limit: 100}})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range mine {
				if v.Environment != nexus.Live || v.Path != "/live" {
					t.Fatalf("live list shows %+v", v)
				}
			}
			if len(mine) != 36 {
				t.Errorf("live list has %d entries, want 36", len(mine))
			}
		})
	})
}

// TestRunFlushesOnStop: rows queued when the server stops are written.
func TestRunFlushesOnStop(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		migrate(t, db)
		tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		log := NewAccessLog(db, 5000, slog.New(slog.NewTextHandler(io.Discard, nil)))
		for range 2500 {
			log.Add(access(tn, "key_1", time.Now(), "/v1/partner"))
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // stop at once: Run must still flush the queue
		log.Run(ctx, time.Hour)
		var n int
		if err := db.For(tn).Select((*AccessChunk)(nil)).ColumnExpr("COALESCE(SUM(entries), 0)").Scan(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
		if n != 2500 || log.Dropped() != 0 {
			t.Fatalf("%d entries stored, %d dropped; want 2500 and 0", n, log.Dropped())
		}
	})
}

func BenchmarkBuildChunks(b *testing.B) {
	tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
	batch := make([]Access, 5000)
	for i := range batch {
		batch[i] = access(tn, "key_1", time.Now(), "/v1/partner")
	}
	var pool bufferPool
	b.ReportAllocs()
	for b.Loop() {
		chunks, _ := buildChunks(batch, maxChunkEntries, &pool)
		for _, c := range chunks {
			pool.put(c.Data)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/entry")
}

// BenchmarkAccessLog is the whole cost of an access row, queue to disk, on
// SQLite (and on PostgreSQL with NEXUS_TEST_DATABASE_URL; its server's own
// CPU is not in the figure), with one credential and with many used in
// turn: the cost per row must not grow with the credentials in use.
func BenchmarkAccessLog(b *testing.B) {
	storetest.ForEachDB(b, func(b *testing.B, db *store.DB) {
		// Not migrate: the tenancy check's scan of every statement would
		// be in the figure.
		if _, err := db.MigrateUp(context.Background()); err != nil {
			b.Fatal(err)
		}
		for _, keys := range []int{1, 1000, 10_000} {
			b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
				tn := nexus.Tenant{PartnerID: "ptr_01kabcdefghjkmnpqrstvwxyz0", Environment: nexus.Test}
				creds := make([]string, keys)
				for i := range creds {
					creds[i] = nexus.NewID("key")
				}
				const perOp = 5000
				batch := make([]Access, perOp)
				for i := range batch {
					batch[i] = access(tn, creds[0], time.Now(), "/v1/partner")
				}
				log := NewAccessLog(db, 4*perOp, slog.New(slog.NewTextHandler(io.Discard, nil)))
				next := 0
				b.ReportAllocs()
				for b.Loop() {
					for i := range batch {
						batch[i].RequestID = nexus.NewID("req")
						batch[i].CredentialID, batch[i].Actor = creds[next], creds[next]
						next = (next + 1) % keys
						log.Add(batch[i])
					}
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					log.Run(ctx, time.Hour)
				}
				if log.Dropped() != 0 {
					b.Fatalf("%d rows dropped", log.Dropped())
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/row")
			})
		}
	})
}

// TestAddDropsWhenFull: a full queue drops and counts rather than waits.
func TestAddDropsWhenFull(t *testing.T) {
	l := NewAccessLog(nil, 3*queueShards, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var onDrop int
	l.OnDrop = func() { onDrop++ }
	tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
	const adds = 1000
	for range adds {
		l.Add(access(tn, "key_1", time.Now(), "/v1/partner"))
	}
	if l.Depth() != 3*queueShards || l.Dropped() != adds-3*queueShards || onDrop != int(l.Dropped()) {
		t.Fatalf("depth %d, dropped %d, OnDrop %d; want %d, %d, the same", l.Depth(), l.Dropped(), onDrop, 3*queueShards, adds-3*queueShards)
	}
	var spares [queueShards][]Access
	if got := l.take(nil, &spares); len(got) != 3*queueShards || l.Depth() != 0 {
		t.Fatalf("take: %d rows, depth after %d", len(got), l.Depth())
	}
	l.Add(access(tn, "key_1", time.Now(), "/v1/partner"))
	if l.Depth() != 1 || l.Dropped() != adds-3*queueShards {
		t.Fatalf("after take: depth %d, dropped %d", l.Depth(), l.Dropped())
	}
}

// TestSmallQueueFlushesEarly: a queue smaller than flushRows still asks
// for a write before a shard fills, rather than dropping until the tick.
func TestSmallQueueFlushesEarly(t *testing.T) {
	l := NewAccessLog(nil, 16*queueShards, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
	for range 16 * queueShards / 2 {
		l.Add(access(tn, "key_1", time.Now(), "/v1/partner"))
	}
	select {
	case <-l.full:
	default:
		t.Fatalf("half the queue (%d rows) queued and no early write asked for", l.Depth())
	}
}
