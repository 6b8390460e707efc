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

	"github.com/klauspost/compress/s2"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

func TestNextBucket(t *testing.T) {
	for in, want := range map[string]string{"0000000": "0000001", "000000z": "0000010", "01kzzzz": "01m0000", "zzzzzzz": "zzzzzzz~"} {
		if got := nextBucket(in); got != want {
			t.Errorf("nextBucket(%s) = %s, want %s", in, got, want)
		}
	}
}

// idIn makes the request id number i of bucket b: ids of one bucket sort by
// i, and every id of a later bucket after them.
func idIn(b string, i int) string {
	d := []byte(strings.Repeat("0", 26-bucketDigits))
	for j := len(d) - 1; i > 0; j-- {
		d[j] = idAlphabet[i%32]
		i /= 32
	}
	return "req_" + b + string(d)
}

// TestListByCredentialAcrossBuckets lists a tenant's access log by
// credential when its chunks span several buckets, some written before
// entries named their credential (a chunk per credential, one of them
// reaching into the next bucket), and checks every page size against the
// same list computed directly.
func TestListByCredentialAcrossBuckets(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		other := nexus.Tenant{PartnerID: "ptr_b", Environment: nexus.Test}
		creds := []string{"key_1", "key_2", "key_3"}
		b := bucketOf(nexus.NewID("req")[4:])
		var buckets []string
		for range 6 {
			buckets = append(buckets, b)
			b = nextBucket(b)
		}
		base := time.Now().UTC().Truncate(time.Millisecond)
		var all []*View
		view := func(id, cred, path string, at time.Time) *View {
			return &View{Object: "audit_event", ID: eventID(id), Type: AccessType, Environment: nexus.Test,
				CredentialID: cred, Actor: "actor-" + cred, IP: "192.0.2.7", RequestID: id, Method: "GET",
				Path: path, Status: 200, CreatedAt: at}
		}

		// Old chunks, one per credential: key_1 in buckets 0 and 1 (one
		// chunk from the end of 0 into 1), key_2 in bucket 0.
		legacy := func(cred string, ids ...string) {
			var lines []byte
			for i, id := range ids {
				at := base.Add(time.Duration(len(all)+i) * time.Millisecond)
				path := fmt.Sprintf("/old/%s/%d", cred, i)
				lines = fmt.Appendf(lines, `{"request_id":%q,"ip":"192.0.2.7","method":"GET","path":%q,"status":200,"at":%d}`+"\n", id, path, at.UnixMicro())
				all = append(all, view(id, cred, path, at))
			}
			c := &AccessChunk{ID: eventID(slices.Max(ids)), MinID: eventID(slices.Min(ids)), PartnerID: tn.PartnerID, Environment: tn.Environment,
				CredentialID: cred, Actor: "actor-" + cred, FirstAt: base, LastAt: base.Add(time.Hour), Entries: len(ids),
				Data: s2.Encode(nil, lines)}
			c.Bucket = bucketOf(c.ID[4:]) // as the migration set it
			if _, err := db.For(tn).Insert(c).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			for _, b := range []string{bucketOf(c.MinID[4:]), c.Bucket} {
				ref := &AccessCredential{PartnerID: tn.PartnerID, Environment: tn.Environment, CredentialID: cred, Bucket: b}
				if _, err := db.For(tn).Insert(ref).Ignore().Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		legacy("key_1", idIn(buckets[0], 1), idIn(buckets[0], 3))
		legacy("key_2", idIn(buckets[0], 2), idIn(buckets[0], 4))
		legacy("key_1", idIn(buckets[0], 900), idIn(buckets[0], 950), idIn(buckets[1], 1))
		legacy("key_1", idIn(buckets[0], 920)) // another instance's, within the range of the last

		// New chunks: key_3 only in bucket 2, key_1 in 2..5, key_2 in 5,
		// and another tenant's key_1 everywhere.
		log := NewAccessLog(db, 100, slog.New(slog.NewTextHandler(io.Discard, nil)))
		n := 10
		for bi := 2; bi < 6; bi++ {
			var batch []Access
			for i := range 7 {
				cred := "key_1"
				switch {
				case bi == 2 && i%2 == 0:
					cred = "key_3"
				case bi == 5 && i%3 == 0:
					cred = "key_2"
				}
				n++
				a := access(tn, cred, base.Add(time.Duration(n)*time.Millisecond), fmt.Sprintf("/new/%d/%d", bi, i))
				a.RequestID = idIn(buckets[bi], n)
				a.At = a.At.UTC().Truncate(time.Microsecond)
				all = append(all, view(a.RequestID, cred, a.Path, a.At))
				o := access(other, "key_1", a.At, "/other")
				o.RequestID = idIn(buckets[bi], 1000+n)
				batch = append(batch, a, o)
			}
			if err := log.write(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		slices.SortFunc(all, func(a, b *View) int { return strings.Compare(b.ID, a.ID) })

		r := NewReader(db)
		for _, cred := range append(creds, "") {
			for _, limit := range []int{1, 2, 3, 100} {
				t.Run(fmt.Sprintf("%s/limit=%d", cred, limit), func(t *testing.T) {
					var want []*View
					for _, v := range all {
						if cred == "" || v.CredentialID == cred {
							want = append(want, v)
						}
					}
					p := ListParams{Page: store.Page{Limit: limit}, Type: AccessType, CredentialID: cred}
					var got []*View
					for pages := 0; ; pages++ {
						if pages > 100 {
							t.Fatal("paging does not end")
						}
						page, more, err := r.List(ctx, tn, p)
						if err != nil {
							t.Fatalf("list: %v", err)
						}
						got = append(got, page...)
						if !more {
							break
						}
						p.StartingAfter = page[len(page)-1].ID
					}
					if len(got) != len(want) {
						t.Fatalf("listed %d entries, want %d", len(got), len(want))
					}
					for i := range want {
						g, w := *got[i], *want[i]
						if !g.CreatedAt.Equal(w.CreatedAt) {
							t.Fatalf("entry %d: created_at %v, want %v", i, g.CreatedAt, w.CreatedAt)
						}
						g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
						if !reflect.DeepEqual(g, w) {
							t.Fatalf("entry %d:\n got %+v\nwant %+v", i, g, w)
						}
					}
				})
			}
		}
	})
}

// TestMigrationIndexesOldChunks: chunks written before the access log was
// indexed by bucket (one per credential) get their bucket and credential
// rows from the migration, and list by credential as before.
func TestMigrationIndexesOldChunks(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.MigrateUp(ctx); err != nil {
			t.Fatal(err)
		}
		for rolled := false; !rolled; {
			down, err := db.MigrateDown(ctx)
			if err != nil || len(down) == 0 {
				t.Fatalf("rolling back to before access_by_tenant: %v, %v", down, err)
			}
			rolled = slices.Contains(down, "20261202000300_access_by_tenant")
		}
		tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		now := time.Now().UTC().Truncate(time.Microsecond)
		var want []string
		for _, cred := range []string{"key_1", "key_2", "key_1"} {
			var lines []byte
			var ids []string
			for range 3 {
				id := nexus.NewID("req")
				ids = append(ids, eventID(id))
				lines = fmt.Appendf(lines, `{"request_id":%q,"ip":"192.0.2.7","method":"GET","path":"/v1/partner","status":200,"at":%d}`+"\n", id, now.UnixMicro())
				if cred == "key_1" {
					want = append(want, eventID(id))
				}
			}
			if _, err := store.CrossTenant(db.DB, "test: a chunk as written before the migration").Raw("INSERT INTO access_chunks (id, partner_id, environment, credential_id, actor, min_id, first_at, last_at, entries, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				slices.Max(ids), tn.PartnerID, string(tn.Environment), cred, "actor-"+cred, slices.Min(ids), now, now, len(ids), s2.Encode(nil, lines)).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		migrate(t, db) // the check from here: the migrations copy rows by hand
		var chunks []AccessChunk
		if err := db.For(tn).Select(&chunks).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if c.Bucket != bucketOf(c.ID[4:]) {
				t.Errorf("old chunk %s has bucket %q", c.ID, c.Bucket)
			}
		}
		views, _, err := NewReader(db).List(ctx, tn, ListParams{Page: store.Page{Limit: 100}, CredentialID: "key_1"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range views {
			if v.CredentialID != "key_1" || v.Actor != "actor-key_1" {
				t.Errorf("entry %+v", v)
			}
			got = append(got, v.ID)
		}
		slices.Sort(want)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("key_1's entries after the migration: %v, want %v", got, want)
		}
	})
}
