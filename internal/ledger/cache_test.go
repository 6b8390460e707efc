package ledger

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// newTestLedger migrates db and returns a ledger whose cache never expires
// on its own during a test (so that a fresh read after a change proves an
// invalidation, not an expiry) and a tenant of a new approved partner.
// Every query on a tenant table after migrating must be built by store.For
// (or store.CrossTenant), or the test fails.
func newTestLedger(t *testing.T, db *store.DB) (*Service, nexus.Tenant) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	storetest.CheckTenancy(t, db)
	s := NewService(db)
	s.cache = newBalanceCache(time.Hour)
	return s, newTenant(t, db)
}

func newTenant(t *testing.T, db *store.DB) nexus.Tenant {
	t.Helper()
	p, err := partner.NewService(db).Create(context.Background(), partner.CreateParams{Name: "cache test", Status: nexus.PartnerApproved})
	if err != nil {
		t.Fatalf("create partner: %v", err)
	}
	return nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}
}

type amounts struct{ available, pending int64 }

// readBalances returns the tenant's balances through the (cached) API.
func readBalances(t *testing.T, s *Service, tn nexus.Tenant) map[Currency]amounts {
	t.Helper()
	bs, err := s.Balances(context.Background(), tn)
	if err != nil {
		t.Fatalf("Balances: %v", err)
	}
	if len(bs) != len(Currencies) {
		t.Fatalf("Balances: %d entries, want %d", len(bs), len(Currencies))
	}
	out := map[Currency]amounts{}
	for i, b := range bs {
		if b.Object != "balance" || b.Currency != Currencies[i] {
			t.Fatalf("Balances[%d] = %+v", i, b)
		}
		out[b.Currency] = amounts{b.Available, b.Pending}
	}
	return out
}

// TestBalancesDroppedAfterEveryChange reads balances (caching them), changes
// them through each ledger operation that moves money, and reads again at
// once: the second read must show the change.
func TestBalancesDroppedAfterEveryChange(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		s, tn := newTestLedger(t, db)
		ctx := context.Background()
		adr, err := s.CreateAddress(ctx, tn, CreateAddressParams{Network: Ethereum, Address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"})
		if err != nil {
			t.Fatal(err)
		}
		withdraw := func(amount int64) string {
			r, err := s.CreateRequest(ctx, tn, CreateRequestParams{Type: "withdrawal", Amount: amount, Currency: USDC, AddressID: adr.ID})
			if err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
		var pendingFunding, req string
		steps := []struct {
			name   string
			change func() error
			want   amounts // USDC after the change
		}{
			{"completed funding created", func() error {
				_, err := s.CreateFunding(ctx, tn, CreateFundingParams{Amount: 1000, Currency: USDC, Status: FundingCompleted})
				return err
			}, amounts{1000, 0}},
			{"pending funding completed", func() error {
				f, err := s.CreateFunding(ctx, tn, CreateFundingParams{Amount: 500, Currency: USDC})
				if err != nil {
					return err
				}
				pendingFunding = f.ID
				if got := readBalances(t, s, tn)[USDC]; got != (amounts{1000, 0}) {
					t.Errorf("a pending deposit changed the balance: %+v", got)
				}
				_, err = s.CompleteFunding(ctx, tn, pendingFunding)
				return err
			}, amounts{1500, 0}},
			{"request created", func() error { req = withdraw(300); return nil }, amounts{1200, 300}},
			{"request cancelled", func() error { _, err := s.CancelRequest(ctx, tn, req); return err }, amounts{1500, 0}},
			{"request completed", func() error {
				req = withdraw(200)
				if _, err := s.ProcessRequest(ctx, tn, req); err != nil {
					return err
				}
				_, err := s.CompleteRequest(ctx, tn, req)
				return err
			}, amounts{1300, 0}},
			{"request failed", func() error {
				req = withdraw(100)
				if got := readBalances(t, s, tn)[USDC]; got != (amounts{1200, 100}) {
					t.Errorf("after the withdrawal: %+v, want {1200 100}", got)
				}
				_, err := s.FailRequest(ctx, tn, req)
				return err
			}, amounts{1300, 0}},
		}
		for _, st := range steps {
			readBalances(t, s, tn) // cache what is there now
			if s.cache.get(tn) == nil {
				t.Fatalf("%s: balances were not cached by a read", st.name)
			}
			if err := st.change(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got := readBalances(t, s, tn)[USDC]; got != st.want {
				t.Errorf("%s: read right after it gives %+v, want %+v", st.name, got, st.want)
			}
		}
	})
}

// TestBalancesAreCopies: a caller that changes what it got does not change
// what the next caller gets.
func TestBalancesAreCopies(t *testing.T) {
	db := storetest.OpenSQLite(t)
	s, tn := newTestLedger(t, db)
	if _, err := s.CreateFunding(context.Background(), tn, CreateFundingParams{Amount: 7, Currency: BTC, Status: FundingCompleted}); err != nil {
		t.Fatal(err)
	}
	bs, _ := s.Balances(context.Background(), tn)
	bs[0].Available = 1 << 40
	b, _ := s.Balance(context.Background(), tn, BTC)
	b.Pending = 99
	if got := readBalances(t, s, tn)[BTC]; got != (amounts{7, 0}) {
		t.Errorf("after callers changed their copies: %+v, want {7 0}", got)
	}
	if _, err := s.Balance(context.Background(), tn, "doge"); nexus.CodeOf(err) != nexus.CodeResourceMissing {
		t.Errorf("Balance(doge): %v, want resource_missing", err)
	}
}

// TestDropTopics: the subscription callback forgets one tenant for its
// balances topic, everything for TopicAll, nothing for credential topics.
func TestDropTopics(t *testing.T) {
	db := storetest.OpenSQLite(t)
	s, a := newTestLedger(t, db)
	b := newTenant(t, db)
	live := nexus.Tenant{PartnerID: a.PartnerID, Environment: nexus.Live}
	fill := func() {
		for _, tn := range []nexus.Tenant{a, b, live} {
			readBalances(t, s, tn)
		}
		if n := s.cache.len(); n != 3 {
			t.Fatalf("%d tenants cached, want 3", n)
		}
	}
	fill()
	for _, topic := range []string{store.TopicKey("key_1"), store.TopicPartner(a.PartnerID), "unknown"} {
		s.Drop(topic)
	}
	if n := s.cache.len(); n != 3 {
		t.Errorf("credential topics dropped balances: %d tenants left, want 3", n)
	}
	s.Drop(store.TopicBalances(a))
	if s.cache.get(a) != nil {
		t.Errorf("%s still cached after its topic", store.TopicBalances(a))
	}
	if s.cache.get(b) == nil || s.cache.get(live) == nil {
		t.Errorf("dropping %v also dropped another tenant (or environment)", a)
	}
	fill()
	s.Drop(store.TopicAll)
	if n := s.cache.len(); n != 0 {
		t.Errorf("%d tenants cached after %q, want 0", n, store.TopicAll)
	}
}

// TestStaleReadNotCached: a read that started before a drop must not put
// its (possibly older) result in the cache, nor be joined by later misses.
func TestStaleReadNotCached(t *testing.T) {
	tn := nexus.Tenant{PartnerID: "ptr_1", Environment: nexus.Test}
	old := &balanceEntry{loadedAt: monoNow()}
	for _, c := range []struct {
		name string
		drop func(*balanceCache)
	}{
		{"tenant", func(c *balanceCache) { c.drop(tn) }},
		{"another tenant", func(c *balanceCache) { c.drop(nexus.Tenant{PartnerID: "ptr_2", Environment: nexus.Test}) }},
		{"all", func(c *balanceCache) { c.dropAll() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			bc := newBalanceCache(time.Hour)
			_, f, lead := bc.begin(tn)
			if !lead {
				t.Fatal("the first miss does not lead a read")
			}
			if _, g, lead := bc.begin(tn); lead || g != f {
				t.Fatal("a second miss before any drop does not join the read in flight")
			}
			c.drop(bc)
			_, g, lead := bc.begin(tn)
			stale := c.name != "another tenant"
			if stale && (!lead || g == f) {
				t.Error("a miss after the drop joined the read that started before it")
			}
			bc.land(tn, f, old, nil)
			if cached := bc.get(tn) != nil; cached == stale {
				t.Errorf("read landed after a drop of %s: cached %v, want %v", c.name, cached, !stale)
			}
			if stale {
				bc.land(tn, g, &balanceEntry{loadedAt: monoNow()}, nil)
				if bc.get(tn) == nil {
					t.Error("the read started after the drop was not cached")
				}
			}
		})
	}
}

// TestExpiry: an entry is served until it is the maximum age old, then read
// again.
func TestExpiry(t *testing.T) {
	tn := nexus.Tenant{PartnerID: "ptr_1", Environment: nexus.Test}
	bc := newBalanceCache(time.Second)
	var clock int64
	bc.now = func() int64 { return clock }
	_, f, _ := bc.begin(tn)
	bc.land(tn, f, &balanceEntry{loadedAt: clock}, nil)
	clock += int64(time.Second) - 1
	if bc.get(tn) == nil {
		t.Error("an entry younger than the maximum age was not served")
	}
	clock++
	if bc.get(tn) != nil {
		t.Error("an entry the maximum age old was served")
	}
	if _, _, lead := bc.begin(tn); !lead {
		t.Error("a miss on an expired entry does not lead a new read")
	}
}

type countBalanceReads struct{ n atomic.Int64 }

func (h *countBalanceReads) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	if strings.HasPrefix(e.Query, "SELECT") && strings.Contains(e.Query, `FROM "balances"`) {
		h.n.Add(1)
	}
	return ctx
}

func (h *countBalanceReads) AfterQuery(context.Context, *bun.QueryEvent) {}

// TestConcurrentMissesShareOneRead: many requests missing at once make one
// query, not one each (which would also grow the connection pool).
func TestConcurrentMissesShareOneRead(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		s, tn := newTestLedger(t, db)
		h := &countBalanceReads{}
		db.AddQueryHook(h)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := s.Balances(context.Background(), tn); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := h.n.Load(); n != 1 {
			t.Errorf("32 concurrent misses made %d balance reads, want 1", n)
		}
	})
}

// TestOtherProcessChange: a change made through another database handle
// (another server, or the CLI) reaches this ledger through the invalidation
// bus, wired to Drop as the server does.
func TestOtherProcessChange(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		// The change comes through a second handle on the same database: for SQLite the
		// file of another handle, for PostgreSQL db's own URL.
		var other *store.DB
		if db.Dialect == store.SQLite {
			path := filepath.Join(t.TempDir(), "shared.db")
			var err error
			if db, err = store.Open(context.Background(), "sqlite:"+path); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if other, err = store.Open(context.Background(), "sqlite:"+path); err != nil {
				t.Fatal(err)
			}
		} else {
			var err error
			if other, err = store.Open(context.Background(), db.URL); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { other.Close() })
		s, tn := newTestLedger(t, db)
		storetest.CheckTenancy(t, other)
		writer := NewService(other)

		// The server's subscription, with a window on what it hears: the
		// TopicAll it sends once it hears every later change is the ready
		// signal, and the tenant's topic says the change has arrived (it
		// is passed on after s.Drop has acted on it).
		ready, arrived := make(chan struct{}), make(chan struct{})
		var readyOnce, arrivedOnce sync.Once
		heard := func(topic string) {
			s.Drop(topic)
			switch topic {
			case store.TopicAll:
				readyOnce.Do(func() { close(ready) })
			case store.TopicBalances(tn):
				arrivedOnce.Do(func() { close(arrived) })
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			db.Subscribe(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), heard, nil)
		}()
		t.Cleanup(func() { cancel(); <-done })
		wait := func(c <-chan struct{}, what string) {
			t.Helper()
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				t.Fatal(what)
			}
		}
		wait(ready, "the subscription never said it was listening")

		readBalances(t, s, tn)
		if _, err := writer.CreateFunding(context.Background(), tn, CreateFundingParams{Amount: 42, Currency: USDT, Status: FundingCompleted}); err != nil {
			t.Fatal(err)
		}
		wait(arrived, "the change made through another handle never reached this cache (max age is an hour here)")
		if got := readBalances(t, s, tn)[USDT]; got != (amounts{42, 0}) {
			t.Errorf("after the change arrived: %+v, want {42 0}", got)
		}
	})
}

// TestTopicRouting: a balances topic is not a credential topic (credential
// caches would drop every credential on each money movement), and it names
// its tenant for the balances cache.
func TestTopicRouting(t *testing.T) {
	tn := nexus.Tenant{PartnerID: "ptr_1", Environment: nexus.Live}
	if got, ok := store.BalancesTenant(store.TopicBalances(tn)); !ok || got != tn {
		t.Errorf("BalancesTenant(TopicBalances(%v)) = %v, %v", tn, got, ok)
	}
	for topic, want := range map[string]bool{
		store.TopicKey("key_1"): true, store.TopicPartner("ptr_1"): true, store.TopicAll: true,
		store.TopicBalances(tn): false,
	} {
		if got := store.IsCredentialTopic(topic); got != want {
			t.Errorf("IsCredentialTopic(%q) = %v, want %v", topic, got, want)
		}
	}
	for _, topic := range []string{store.TopicKey("key_1"), store.TopicPartner("ptr_1"), store.TopicAll} {
		if _, ok := store.BalancesTenant(topic); ok {
			t.Errorf("BalancesTenant(%q) names a tenant", topic)
		}
	}
}
