package auth

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
)

// KeyStore is what the authenticator needs of storage on a cache miss.
type KeyStore interface {
	Lookup(ctx context.Context, digestHex string) (*apikey.Row, error)
	Partner(ctx context.Context, id string) (nexus.Partner, error)
	TouchLastUsed(ctx context.Context, at time.Time, ids []string) error
}

// NewKeyStore joins the key and partner services into a KeyStore.
func NewKeyStore(keys *apikey.Service, partners *partner.Service) KeyStore {
	return keyStore{keys, partners}
}

type keyStore struct {
	*apikey.Service
	partners *partner.Service
}

func (k keyStore) Partner(ctx context.Context, id string) (nexus.Partner, error) {
	return k.partners.Get(ctx, id)
}

const (
	statusActive uint8 = iota
	statusSuspended
	statusRevoked
)

// entry is a verified key, immutable but for lastTouch.
type entry struct {
	digest    [32]byte
	principal *nexus.Principal
	status    uint8
	expiresAt int64 // unix nanoseconds; 0: never
	ips       []netip.Prefix
	origins   []string
	loadedAt  int64
	lastTouch atomic.Int64 // unix minute of the last queued last_used_at write
	// usedAt is the unix second of the last hit, for eviction. It is
	// written at most once a second, so that readers on other cores keep
	// the entry in their caches.
	usedAt atomic.Int64
}

func (e *entry) matches(d [32]byte) bool {
	return subtle.ConstantTimeCompare(e.digest[:], d[:]) == 1
}

// keyCache maps key digests to entries. A miss for an unknown digest is
// cached too (as a nil entry) so that a flood of made-up keys cannot turn
// into a flood of queries.
//
// It holds at most size entries. Eviction is a sampled LRU, as Redis does
// it: when full, a put looks at a few entries and drops the one least
// recently used. A strict LRU (a list moved to the front on every hit, as
// in hashicorp/golang-lru) takes the write lock on every request; here a
// hit stays a read lock, a map lookup and, once a second, an atomic store.
type keyCache struct {
	mu        sync.RWMutex
	m         map[[32]byte]*entry
	missing   map[[32]byte]int64 // digest -> loadedAt
	gen       atomic.Uint64      // bumped by every drop; a load that raced one is not cached
	maxAge    int64
	size      int
	evictions atomic.Uint64
	// unheardAt is when the invalidation channel was lost (0: it is
	// heard). Entries are trusted for grace after it, not until maxAge: a
	// database outage keeps cached keys working for a while, and a lost
	// channel with a living database cannot hide a revocation for long.
	unheardAt atomic.Int64
	grace     int64
	now       func() time.Time
}

// DefaultCacheSize is how many API keys the cache holds unless told: at
// about 0.55 KB an entry, some 55 MB at most.
const DefaultCacheSize = 100_000

// evictionSamples is how many entries a full cache compares to choose the
// one to drop. Redis finds 5 close enough to a true LRU.
const evictionSamples = 5

func newKeyCache(maxAge time.Duration, size int, grace time.Duration, now func() time.Time) *keyCache {
	return &keyCache{
		m: make(map[[32]byte]*entry), missing: make(map[[32]byte]int64),
		maxAge: int64(maxAge), size: size, grace: int64(grace), now: now,
	}
}

// unheard notes that invalidations may be missed from now on (the first
// loss counts until the channel is back).
func (c *keyCache) unheard(now time.Time) { c.unheardAt.CompareAndSwap(0, now.UnixNano()) }

// get returns the entry, nil for unknown-or-stale; a known-missing digest
// returns missingEntry.
func (c *keyCache) get(d [32]byte, now time.Time) *entry {
	c.mu.RLock()
	e, ok := c.m[d]
	var missAt int64
	if !ok {
		missAt = c.missing[d]
	}
	c.mu.RUnlock()
	n := now.UnixNano()
	if ok && n-e.loadedAt < c.maxAge {
		if u := c.unheardAt.Load(); u == 0 || n-u < c.grace {
			if s := n / int64(time.Second); e.usedAt.Load() != s {
				e.usedAt.Store(s)
			}
			return e
		}
	}
	// Unknown keys are remembered briefly: a just-created key is never
	// "unknown" for long, yet guessing costs no query.
	if missAt != 0 && n-missAt < int64(5*time.Second) {
		return missingEntry
	}
	return nil
}

// missingEntry marks a digest known not to exist; it matches nothing.
var missingEntry = &entry{}

func (c *keyCache) put(d [32]byte, e *entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if e == nil {
		if len(c.missing) > 100_000 {
			clear(c.missing)
		}
		c.missing[d] = c.now().UnixNano()
		return
	}
	if _, ok := c.m[d]; !ok {
		for len(c.m) >= c.size {
			c.evictOne()
		}
	}
	e.usedAt.Store(e.loadedAt / int64(time.Second))
	c.m[d] = e
}

// evictOne drops the least recently used of a few entries: Go starts each
// iteration over a map at a random place, so the first few are a sample.
// An entry past its maximum age counts as least recently used. c.mu is
// held for writing.
func (c *keyCache) evictOne() {
	var victim [32]byte
	oldest := int64(math.MaxInt64)
	stale := c.now().UnixNano() - c.maxAge
	i := 0
	for d, e := range c.m {
		used := e.usedAt.Load()
		if e.loadedAt <= stale {
			used = math.MinInt64
		}
		if used < oldest {
			victim, oldest = d, used
		}
		if i++; i == evictionSamples {
			break
		}
	}
	if i == 0 {
		return
	}
	delete(c.m, victim)
	c.evictions.Add(1)
}

// drop removes what topic names: one credential, a partner's, or all.
func (c *keyCache) drop(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	kind, id, _ := strings.Cut(topic, ":")
	switch kind {
	case "cred":
		for d, e := range c.m {
			if e.principal.CredentialID == id {
				delete(c.m, d)
			}
		}
	case "partner":
		for d, e := range c.m {
			if e.principal.Partner.ID == id {
				delete(c.m, d)
			}
		}
	default:
		clear(c.m)
		c.unheardAt.Store(0) // TopicAll: the channel is heard again
	}
	// New keys may have been created under digests we once saw missing.
	clear(c.missing)
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// load reads a key from storage and caches what it finds.
func (a *Authenticator) load(ctx context.Context, d [32]byte) (*entry, error) {
	gen := a.cache.gen.Load()
	row, err := a.keys.Lookup(ctx, hex.EncodeToString(d[:]))
	if err != nil {
		return nil, err
	}
	if row == nil {
		a.cache.put(d, nil, gen)
		return nil, nil
	}
	p, err := a.keys.Partner(ctx, row.PartnerID)
	if err != nil {
		return nil, err
	}
	origins := row.Origins()
	e := &entry{
		principal: &nexus.Principal{
			Partner: p, Environment: row.Environment, Scopes: row.ScopeSet(),
			CredentialID: row.ID, CredentialType: nexus.CredentialAPIKey, Actor: row.ID,
			OriginBound: row.Type == apikey.Publishable && len(origins) > 0,
		},
		ips:      row.IPs(),
		origins:  origins,
		loadedAt: a.now().UnixNano(),
	}
	if raw, err := hex.DecodeString(row.KeyHash); err == nil && len(raw) == 32 {
		copy(e.digest[:], raw)
	}
	switch row.Status {
	case apikey.Suspended:
		e.status = statusSuspended
	case apikey.Revoked:
		e.status = statusRevoked
	}
	if row.ExpiresAt != nil {
		e.expiresAt = row.ExpiresAt.UnixNano()
	}
	if row.LastUsedAt != nil {
		e.lastTouch.Store(row.LastUsedAt.Unix() / 60)
	}
	a.cache.put(d, e, gen)
	return e, nil
}

// touch queues a last_used_at write at most once a minute per key, without
// ever blocking the request: when the queue is full the write is skipped
// (last_used_at is kept to the minute, not to the request).
func (a *Authenticator) touch(e *entry, now time.Time) {
	m := now.Unix() / 60
	old := e.lastTouch.Load()
	if old == m || !e.lastTouch.CompareAndSwap(old, m) {
		return
	}
	select {
	case a.touches <- e.principal.CredentialID:
	default:
	}
}

// CacheStats reports API-key cache hits and misses since start.
func (a *Authenticator) CacheStats() (hits, misses uint64) { return a.hits.Load(), a.misses.Load() }

// CacheEvictions reports API keys dropped from the full cache since start
// (lifecycle drops are not counted): many of them mean the cache is smaller
// than the set of keys in use.
func (a *Authenticator) CacheEvictions() uint64 { return a.cache.evictions.Load() }

// CacheLen is the number of API keys cached.
func (a *Authenticator) CacheLen() int { return a.cache.len() }

// Drop forgets cached verifications for topic (see store.TopicKey and
// friends). The server calls it for its own changes and on messages from
// other instances.
func (a *Authenticator) Drop(topic string) {
	if !store.IsCredentialTopic(topic) {
		return // another cache's topic (balances, …)
	}
	if topic == store.TopicUnheard {
		// API keys stay trusted for the outage grace; the token caches
		// are emptied as before (tokens are re-verified from the
		// database).
		a.cache.unheard(a.now())
		topic = store.TopicAll
	} else {
		a.cache.drop(topic)
	}
	for _, v := range []TokenVerifier{a.jwt, a.oauth} {
		if d, ok := v.(Dropper); ok {
			d.Drop(topic)
		}
	}
}

// Run writes last_used_at in batches until ctx ends; it flushes what is
// queued before returning. The cache is kept fresh by whoever wires the
// deployment's invalidation bus to Drop (the server does it once for every
// cache).
func (a *Authenticator) Run(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	pending := make(map[string]struct{})
	flush := func(ctx context.Context) {
		if len(pending) == 0 {
			return
		}
		ids := make([]string, 0, len(pending))
		for id := range pending {
			ids = append(ids, id)
		}
		clear(pending)
		at := a.now().UTC().Truncate(time.Minute)
		if err := a.keys.TouchLastUsed(ctx, at, ids); err != nil {
			a.log.Warn("last_used_at write failed", "keys", len(ids), "err", err)
		}
	}
	for {
		select {
		case id := <-a.touches:
			pending[id] = struct{}{}
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			for {
				select {
				case id := <-a.touches:
					pending[id] = struct{}{}
					continue
				default:
				}
				break
			}
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			flush(fctx)
			cancel()
			return
		}
	}
}
