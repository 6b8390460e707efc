package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// insertRows writes n rows of table in batches, row i's values from val.
func insertRows(tb testing.TB, db *store.DB, table string, cols []string, n int, val func(i int) []any) {
	tb.Helper()
	ctx := context.Background()
	ph := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	for start := 0; start < n; start += 500 {
		var rows []string
		var args []any
		for i := start; i < min(n, start+500); i++ {
			rows = append(rows, ph)
			args = append(args, val(i)...)
		}
		q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + strings.Join(rows, ", ")
		if _, err := store.CrossTenant(db.DB, "test fixture: many tenants' rows in bulk").Raw(q, args...).Exec(ctx); err != nil {
			tb.Fatalf("insert into %s: %v", table, err)
		}
	}
}

// rare is a if i is one of every n, else b.
func rare(i, n int, a, b string) string {
	if i%n == n-1 {
		return a
	}
	return b
}

// listFixture is a database with many rows in every filtered list, a few
// of them matching each filter below, and the services that list them.
type listFixture struct {
	db      *store.DB
	tn      nexus.Tenant
	ledger  *ledger.Service
	keys    *apikey.Service
	audit   *audit.Reader
	partner string
}

func newListFixture(tb testing.TB, db *store.DB, n int) *listFixture {
	tb.Helper()
	ctx := context.Background()
	if _, err := db.MigrateUp(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, bench := tb.(*testing.B); !bench { // the hook's scan would be in the figures
		storetest.CheckTenancy(tb, db)
	}
	partners := partner.NewService(db)
	var tenants []nexus.Tenant
	for _, name := range []string{"A", "B"} {
		p, err := partners.Create(ctx, partner.CreateParams{Name: name, Status: nexus.PartnerApproved})
		if err != nil {
			tb.Fatal(err)
		}
		tenants = append(tenants, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Live})
	}
	keys := apikey.NewService(db)
	k, err := keys.Create(ctx, tenants[0], apikey.CreateParams{Name: "one"})
	if err != nil {
		tb.Fatal(err)
	}
	var scopes string
	if err := db.For(tenants[0]).Select((*apikey.Row)(nil)).Column("scopes").Where("?TableAlias.id = ?", k.ID).Scan(ctx, &scopes); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	// Most rows are the first tenant's; the rest share the others.
	tenantOf := func(i int) nexus.Tenant {
		if i%4 == 3 {
			return tenants[1+i%3]
		}
		return tenants[0]
	}
	insertRows(tb, db, "requests", []string{"id", "partner_id", "environment", "type", "amount", "currency", "address_id", "status", "metadata", "created_at", "updated_at"}, n,
		func(i int) []any {
			t := tenantOf(i)
			return []any{nexus.NewID("prq"), t.PartnerID, string(t.Environment), "withdrawal", 1, rare(i, 101, "btc", "usdc"),
				rare(i, 499, "adr_rare", "adr_common"), rare(i, 199, "failed", rare(i, 3, "pending", "completed")), "{}", now, now}
		})
	insertRows(tb, db, "funding", []string{"id", "partner_id", "environment", "amount", "currency", "status", "reference", "created_at", "updated_at"}, n,
		func(i int) []any {
			t := tenantOf(i)
			return []any{nexus.NewID("fnd"), t.PartnerID, string(t.Environment), 1, rare(i, 101, "btc", "usdc"), rare(i, 199, "failed", "completed"), "", now, now}
		})
	insertRows(tb, db, "addresses", []string{"id", "partner_id", "environment", "network", "address", "address_key", "label", "status", "created_at", "updated_at"}, n/4,
		func(i int) []any {
			t, id := tenantOf(i), nexus.NewID("adr")
			return []any{id, t.PartnerID, string(t.Environment), rare(i, 101, "bitcoin", "ethereum"), id, id, "", rare(i, 97, "archived", "active"), now, now}
		})
	insertRows(tb, db, "api_keys", []string{"id", "partner_id", "environment", "type", "prefix", "last4", "key_hash", "scopes", "status", "created_at", "updated_at"}, n/4,
		func(i int) []any {
			t, id := tenantOf(i), nexus.NewID("key")
			return []any{id, t.PartnerID, string(t.Environment), "secret", "nx_test_sk_abcd", "abcd", id, scopes,
				rare(i, 97, "revoked", rare(i, 89, "suspended", "active")), now, now}
		})
	insertRows(tb, db, "audit_events", []string{"id", "partner_id", "environment", "type", "object_id", "credential_id", "created_at"}, n,
		func(i int) []any {
			t := tenantOf(i)
			return []any{nexus.NewID("evt"), t.PartnerID, string(t.Environment), rare(i, 199, "api_key.revoked", "request.created"), "x",
				rare(i, 293, "key_rare", "key_common"), now}
		})
	// The access log's chunks (empty ones: only their keys are read here)
	// and its index by credential.
	empty := s2.Encode(nil, nil)
	insertRows(tb, db, "access_chunks", []string{"id", "partner_id", "environment", "credential_id", "actor", "bucket", "min_id", "first_at", "last_at", "entries", "data"}, n/10,
		func(i int) []any {
			t, id := tenantOf(i), nexus.NewID("evt")
			return []any{id, t.PartnerID, string(t.Environment), "", "", fmt.Sprintf("%07d", i/5), id, now, now, 0, empty}
		})
	insertRows(tb, db, "access_credentials", []string{"partner_id", "environment", "credential_id", "bucket"}, n,
		func(i int) []any {
			t := tenantOf(i)
			// Not key_rare's: its buckets' chunks here are empty, and a
			// list would read them all for nothing.
			return []any{t.PartnerID, string(t.Environment), fmt.Sprintf("key_%d", i%1000), fmt.Sprintf("%07d", i/50)}
		})
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		tb.Fatal(err)
	}
	return &listFixture{db: db, tn: tenants[0], ledger: ledger.NewService(db), keys: keys, audit: audit.NewReader(db), partner: tenants[0].PartnerID}
}

// listCase is one filtered list, the table it reads and the index that
// must serve its filter.
type listCase struct {
	name, table, index string
	list               func(ctx context.Context, f *listFixture, limit int) (int, error)
}

func listCases() []listCase {
	page := func(limit int) store.Page { return store.Page{Limit: limit} }
	n := func(l int, _ bool, err error) (int, error) { return l, err }
	return []listCase{
		{"requests?status=failed", "requests", "requests_status_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.ledger.ListRequests(ctx, f.tn, ledger.RequestListParams{Page: page(l), Status: "failed"})
			return n(len(r), more, err)
		}},
		{"requests?currency=btc", "requests", "requests_currency_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.ledger.ListRequests(ctx, f.tn, ledger.RequestListParams{Page: page(l), Currency: ledger.BTC})
			return n(len(r), more, err)
		}},
		{"requests?address_id=adr_rare", "requests", "requests_address_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.ledger.ListRequests(ctx, f.tn, ledger.RequestListParams{Page: page(l), AddressID: "adr_rare"})
			return n(len(r), more, err)
		}},
		{"funding?status=failed", "funding", "funding_status_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.ledger.ListFunding(ctx, f.tn, ledger.FundingListParams{Page: page(l), Status: "failed"})
			return n(len(r), more, err)
		}},
		{"funding?currency=btc", "funding", "funding_currency_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.ledger.ListFunding(ctx, f.tn, ledger.FundingListParams{Page: page(l), Currency: ledger.BTC})
			return n(len(r), more, err)
		}},
		{"addresses?status=archived", "addresses", "addresses_status_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.ledger.ListAddresses(ctx, f.tn, ledger.AddressListParams{Page: page(l), Status: "archived"})
			return n(len(r), more, err)
		}},
		{"addresses?network=bitcoin", "addresses", "addresses_network_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.ledger.ListAddresses(ctx, f.tn, ledger.AddressListParams{Page: page(l), Network: ledger.Bitcoin})
			return n(len(r), more, err)
		}},
		{"api_keys?status=revoked", "api_keys", "api_keys_status_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.keys.List(ctx, f.tn, apikey.ListParams{Page: page(l), Status: apikey.Revoked})
			return n(len(r), more, err)
		}},
		{"api_keys?status=suspended", "api_keys", "api_keys_status_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.keys.List(ctx, f.tn, apikey.ListParams{Page: page(l), Status: apikey.Suspended})
			return n(len(r), more, err)
		}},
		{"audit_events?type=api_key.revoked", "audit_events", "audit_events_type_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.audit.List(ctx, f.tn, audit.ListParams{Page: page(l), Type: "api_key.revoked"})
			return n(len(r), more, err)
		}},
		{"audit_events?credential_id=key_rare", "audit_events", "audit_events_credential_idx", func(ctx context.Context, f *listFixture, l int) (int, error) {
			r, more, err := f.audit.List(ctx, f.tn, audit.ListParams{Page: page(l), CredentialID: "key_rare"})
			return n(len(r), more, err)
		}},
	}
}

// TestListFiltersUseIndexes: every filter of every list is served by an
// index of the tenant, the filter and the list's order, on both databases:
// the plan of each query a filtered list runs names the index and scans no
// table whole.
func TestListFiltersUseIndexes(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newListFixture(t, db, 20_000)
		log := storetest.Queries(db)
		ctx := context.Background()
		for _, c := range listCases() {
			t.Run(c.name, func(t *testing.T) {
				log.Take()
				got, err := c.list(ctx, f, 20)
				if err != nil {
					t.Fatal(err)
				}
				if got == 0 {
					t.Fatal("the filter matched nothing: the test would prove little")
				}
				var main bool
				for _, q := range log.Take() {
					if !strings.HasPrefix(q, "SELECT") {
						continue
					}
					// Lookups of the rows' companions (a key's limits, its
					// tenant's policy) are by key in small tables; the
					// list's own table and the access log's are checked.
					if !strings.Contains(q, fmt.Sprintf("FROM %q", c.table)) && !strings.Contains(q, `FROM "access_`) {
						continue
					}
					plan := storetest.Explain(t, db, q)
					t.Logf("%s\n%s", q, plan)
					for _, line := range strings.Split(plan, "\n") {
						line = strings.TrimSpace(line)
						if strings.Contains(line, "Seq Scan") || (strings.HasPrefix(line, "SCAN ") && !strings.Contains(line, "USING")) {
							t.Errorf("a table is scanned whole: %s\nquery: %s\nplan:\n%s", line, q, plan)
						}
					}
					if strings.Contains(q, fmt.Sprintf("FROM %q", c.table)) {
						main = true
						if !strings.Contains(plan, c.index) {
							t.Errorf("the plan does not use %s:\nquery: %s\nplan:\n%s", c.index, q, plan)
						}
					}
				}
				if !main {
					t.Errorf("no query read %s", c.table)
				}
			})
		}
	})
}

// BenchmarkListFiltered is a filtered page of each list at 100,000 rows,
// with the filter indexes and without them (dropped for the run, as before
// they existed), beside an unfiltered page: filtered/op over unfiltered/op
// is the cost of filtering. On PostgreSQL it also reports, from EXPLAIN
// ANALYZE, the pages the list's main query touched (steadier than time on
// a busy machine) and its execution time.
func BenchmarkListFiltered(b *testing.B) {
	storetest.ForEachDB(b, func(b *testing.B, db *store.DB) {
		f := newListFixture(b, db, 100_000)
		ctx := context.Background()
		log := storetest.Queries(db)
		run := func(b *testing.B, table string, list func(ctx context.Context, f *listFixture, limit int) (int, error)) {
			for b.Loop() {
				if _, err := list(ctx, f, 20); err != nil {
					b.Fatal(err)
				}
			}
			if db.Dialect != store.Postgres {
				return
			}
			b.StopTimer()
			log.Take()
			if _, err := list(ctx, f, 20); err != nil {
				b.Fatal(err)
			}
			for _, q := range log.Take() {
				if strings.HasPrefix(q, "SELECT") && strings.Contains(q, fmt.Sprintf("FROM %q", table)) {
					pages, ms := analyze(b, db, q)
					b.ReportMetric(pages, "pages")
					b.ReportMetric(ms, "db-ms")
				}
			}
		}
		b.Run("unfiltered", func(b *testing.B) {
			run(b, "requests", func(ctx context.Context, f *listFixture, l int) (int, error) {
				r, _, err := f.ledger.ListRequests(ctx, f.tn, ledger.RequestListParams{Page: store.Page{Limit: l}})
				return len(r), err
			})
		})
		for _, c := range listCases() {
			b.Run(c.name+"/indexed", func(b *testing.B) { run(b, c.table, c.list) })
		}
		// Without the indexes: what every filtered list did before.
		for _, c := range listCases() {
			if _, err := db.ExecContext(ctx, "DROP INDEX IF EXISTS "+c.index); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range listCases() {
			b.Run(c.name+"/scan", func(b *testing.B) { run(b, c.table, c.list) })
		}
	})
}

// analyze runs query under EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL and
// returns the pages its plan touched and its execution time in ms.
func analyze(tb testing.TB, db *store.DB, query string) (pages, ms float64) {
	tb.Helper()
	plan := storetest.Explain(tb, db, "(ANALYZE, BUFFERS) "+query)
	for _, line := range strings.Split(plan, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "Buffers: shared hit="); ok && pages == 0 {
			// The first Buffers line is the top node's: the whole query.
			fmt.Sscanf(rest, "%g", &pages)
			if i := strings.Index(rest, "read="); i >= 0 {
				var read float64
				fmt.Sscanf(rest[i+len("read="):], "%g", &read)
				pages += read
			}
		}
		if rest, ok := strings.CutPrefix(line, "Execution Time: "); ok {
			fmt.Sscanf(rest, "%g", &ms)
		}
	}
	return pages, ms
}
