package ledger

import (
	"sync"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// balanceMaxAge is how long a cached balance is served without a fresh
// read when no invalidation arrives. Invalidations are what keep the cache
// right (after commit on this instance, within milliseconds over NOTIFY or
// Redis and within the 200 ms poll on SQLite, and a lost channel drops
// everything); this only bounds the damage of one lost silently. One second
// keeps that bound at the contract's revocation promise and costs a single
// select per tenant per second, which is nothing next to the reads it saves.
const balanceMaxAge = time.Second

var errReadAborted = errorString("ledger: balances read aborted")

// maxCachedTenants bounds the cache's memory; past it the cache restarts.
const maxCachedTenants = 100_000

// clockBase makes entry ages monotonic: a wall-clock step back must not
// keep an entry alive.
var clockBase = time.Now()

func monoNow() int64 { return int64(time.Since(clockBase)) }

// balanceEntry is one tenant's balances as read, in Currencies order;
// immutable once cached.
type balanceEntry struct {
	loadedAt int64 // the cache's clock at the read
	amounts  [numCurrencies]struct{ available, pending int64 }
}

// stamp is the cache's state for a tenant: any drop of the tenant, or of
// everything, changes it.
type stamp struct{ all, tenant uint64 }

// flight is one database read of a tenant's balances that concurrent misses
// share, so that a cold or expired entry costs one query rather than one
// per waiting request (and does not grow the connection pool to match).
type flight struct {
	st   stamp // the tenant's stamp when the read was started
	done chan struct{}
	e    *balanceEntry
	err  error
}

// balanceCache maps tenants to their balances, for GET /v1/balances only:
// nothing that decides whether money moves reads it.
type balanceCache struct {
	mu      sync.RWMutex
	m       map[nexus.Tenant]*balanceEntry
	flights map[nexus.Tenant]*flight
	gens    map[nexus.Tenant]uint64 // drops per tenant since the last drop of everything
	all     uint64                  // drops of everything
	maxAge  int64
	// now is the clock entries age by (monoNow; tests move their own).
	now func() int64
}

func newBalanceCache(maxAge time.Duration) *balanceCache {
	return &balanceCache{
		m: make(map[nexus.Tenant]*balanceEntry), flights: make(map[nexus.Tenant]*flight),
		gens: make(map[nexus.Tenant]uint64), maxAge: int64(maxAge), now: monoNow,
	}
}

// fresh returns the tenant's entry unless it is missing or too old; the
// caller holds mu.
func (c *balanceCache) fresh(t nexus.Tenant) *balanceEntry {
	if e := c.m[t]; e != nil && c.now()-e.loadedAt < c.maxAge {
		return e
	}
	return nil
}

// get returns a fresh entry or nil.
func (c *balanceCache) get(t nexus.Tenant) *balanceEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.fresh(t)
}

// begin is the miss path: it returns a fresh entry if one landed meanwhile,
// else the flight to wait for, and lead when the caller must make the read
// itself and then call land. A flight started before the tenant's latest
// drop is never joined: its read may predate the change the drop announced.
func (c *balanceCache) begin(t nexus.Tenant) (e *balanceEntry, f *flight, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.fresh(t); e != nil {
		return e, nil, false
	}
	st := stamp{c.all, c.gens[t]}
	if f := c.flights[t]; f != nil && f.st == st {
		return nil, f, false
	}
	f = &flight{st: st, done: make(chan struct{})}
	c.flights[t] = f
	return nil, f, true
}

// land finishes f with the read's outcome and caches it unless the tenant
// was dropped since the read started.
func (c *balanceCache) land(t nexus.Tenant, f *flight, e *balanceEntry, err error) {
	if e == nil && err == nil {
		err = errReadAborted // the reader panicked; its waiters must not see nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f.e, f.err = e, err
	close(f.done)
	if c.flights[t] == f {
		delete(c.flights, t)
	}
	if err != nil || (stamp{c.all, c.gens[t]}) != f.st {
		return
	}
	if len(c.m) >= maxCachedTenants {
		clear(c.m)
	}
	c.m[t] = e
}

// drop forgets one tenant's balances.
func (c *balanceCache) drop(t nexus.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, t)
	if len(c.gens) >= maxCachedTenants {
		// Forgetting counters is safe only with every read in flight
		// refused, which bumping all does.
		clear(c.gens)
		c.all++
	}
	c.gens[t]++
}

// dropAll forgets everything.
func (c *balanceCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	clear(c.gens) // safe: every flight's stamp now differs in all
	c.all++
}

func (c *balanceCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Drop forgets cached balances for an invalidation topic: one tenant's for
// store.TopicBalances, all of them for store.TopicAll; other topics name
// credentials and leave balances alone. The service calls it after its own
// commits; the server calls it for messages from other instances.
func (s *Service) Drop(topic string) {
	if topic == store.TopicAll {
		s.cache.dropAll()
		return
	}
	if t, ok := store.BalancesTenant(topic); ok {
		s.cache.drop(t)
	}
}
