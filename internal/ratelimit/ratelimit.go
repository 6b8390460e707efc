// Package ratelimit counts requests in fixed one-minute windows: per
// credential, per IP on the OAuth and login pages, and failed
// authentications per IP. Counts live in memory, or in Redis so that every
// instance shares them; when Redis fails a circuit breaker makes the
// limiter fall back to local counts (logged once) rather than failing or
// stalling requests, and it returns to Redis on its own.
package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexus-fintech/nexus/internal/breaker"
)

// Result is one decision, with what the RateLimit-* headers show.
type Result struct {
	Allowed   bool
	Limit     int
	Remaining int
	Reset     time.Duration // until the window ends
}

// Store counts hits per key and window.
type Store interface {
	// Add adds n (0 to read) to key's count in the window starting at start
	// and returns the new count.
	Add(ctx context.Context, key string, start time.Time, window time.Duration, n int64) (int64, error)
}

// Config configures a Limiter.
type Config struct {
	// Store shares counts between instances. Optional. Default: memory only.
	Store LeaseStore
	// Window length. Optional. Default: one minute.
	Window time.Duration
	// Breaker skips the shared store while it fails, and logs the state
	// changes. Optional. Default: a breaker of this limiter's own.
	Breaker *breaker.Breaker
	// Logger. Optional. Default: slog.Default().
	Logger *slog.Logger
}

// Limiter decides.
type Limiter struct {
	shared  LeaseStore
	local   *Memory
	window  time.Duration
	breaker *breaker.Breaker

	lmu        sync.RWMutex
	leases     map[string]*lease
	leaseSweep int64
}

// LeaseStore is a count shared by every instance, handed out in leases.
type LeaseStore interface {
	// Lease grants up to want more of key's budget of limit in the window
	// starting at start, and returns how many it granted and the window's
	// count after granting (every instance's).
	Lease(ctx context.Context, key string, start time.Time, window time.Duration, limit int, want int64) (granted, count int64, err error)
}

// New returns a limiter.
func New(cfg Config) *Limiter {
	l := &Limiter{shared: cfg.Store, local: NewMemory(), window: cfg.Window, breaker: cfg.Breaker, leases: map[string]*lease{}}
	if l.window == 0 {
		l.window = time.Minute
	}
	if l.breaker == nil && l.shared != nil {
		l.breaker = breaker.New(breaker.Config{Name: "shared rate-limit store", Logger: cfg.Logger,
			OpenMessage:  "rate limits: shared store unavailable; counting locally until it recovers",
			CloseMessage: "rate limits: shared store is back; counts are shared again"})
	}
	return l
}

// Hit counts one request against key and decides it.
func (l *Limiter) Hit(ctx context.Context, key string, limit int) Result {
	return l.HitAt(ctx, key, limit, time.Now())
}

// HitAt is Hit for a request that arrived at now (a caller that has read
// the clock already saves reading it again).
func (l *Limiter) HitAt(ctx context.Context, key string, limit int, now time.Time) Result {
	if l.shared != nil {
		return l.hitLeased(ctx, key, limit, now)
	}
	return l.hitLocal(ctx, key, limit, now)
}

func (l *Limiter) hitLocal(ctx context.Context, key string, limit int, now time.Time) Result {
	start := now.Truncate(l.window)
	count, _ := l.local.Add(ctx, key, start, l.window, 1)
	r := Result{Limit: limit, Reset: start.Add(l.window).Sub(now), Allowed: count <= int64(limit)}
	if rem := int64(limit) - count; rem > 0 {
		r.Remaining = int(rem)
	}
	return r
}

// lease is this instance's share of a key's budget in one window, taken
// from the shared store in batches: a request spends a local token, and
// only the request that finds none left asks the store for more. The store
// grants no more than the limit in sum, so the instances together never
// exceed it; what an instance leased and did not spend is lost to the
// others until the window ends (a batch is at most 1/500 of the limit).
type lease struct {
	mu      sync.Mutex   // held while refilling
	start   atomic.Int64 // unix nanos of the window
	tokens  atomic.Int64 // leased and not spent yet
	granted atomic.Int64 // the store's count after the last lease (every instance's)
	spent   atomic.Bool  // the store granted nothing more this window
}

// take spends a token; it returns the tokens left, or -1 when none was.
func (e *lease) take() int64 {
	for {
		t := e.tokens.Load()
		if t <= 0 {
			return -1
		}
		if e.tokens.CompareAndSwap(t, t-1) {
			return t - 1
		}
	}
}

// leaseBatch is how much of limit one lease asks for: small enough that
// little is stranded on an instance, big enough that a busy key asks the
// store rarely. Small limits lease one at a time (an exact shared count).
func leaseBatch(limit int) int64 {
	return min(max(int64(limit)/500, 1), 1000)
}

func (l *Limiter) hitLeased(ctx context.Context, key string, limit int, now time.Time) Result {
	start := now.Truncate(l.window)
	s := start.UnixNano()
	l.lmu.RLock()
	e := l.leases[key]
	l.lmu.RUnlock()
	if e == nil {
		l.lmu.Lock()
		if e = l.leases[key]; e == nil {
			e = &lease{}
			l.sweepLeases(s)
			l.leases[key] = e
		}
		l.lmu.Unlock()
	}
	for {
		if cur := e.start.Load(); cur == s {
			if t := e.take(); t >= 0 {
				rem := max(int64(limit)-e.granted.Load(), 0) + t
				return Result{Allowed: true, Limit: limit, Remaining: int(min(rem, int64(limit))), Reset: start.Add(l.window).Sub(now)}
			}
			if e.spent.Load() {
				return Result{Limit: limit, Reset: start.Add(l.window).Sub(now)}
			}
		} else if cur > s {
			// A request stamped in a past window, answered in this one: it
			// counts here rather than nowhere.
			s, start = cur, time.Unix(0, cur)
			continue
		}
		e.mu.Lock()
		if cur := e.start.Load(); cur < s {
			e.tokens.Store(0)
			e.granted.Store(0)
			e.spent.Store(false)
			e.start.Store(s)
		} else if cur > s || e.tokens.Load() > 0 || e.spent.Load() {
			e.mu.Unlock()
			continue
		}
		// Degrade, don't fail: while the shared store fails the breaker
		// skips it and counts are local.
		if !l.breaker.Allow() {
			e.mu.Unlock()
			return l.hitLocal(ctx, key, limit, now)
		}
		granted, used, err := l.shared.Lease(ctx, key, start, l.window, limit, leaseBatch(limit))
		l.breaker.Done(ctx, err)
		if err != nil {
			e.mu.Unlock()
			return l.hitLocal(ctx, key, limit, now)
		}
		e.granted.Store(used)
		if granted > 0 {
			e.tokens.Add(granted)
		} else {
			e.spent.Store(true)
		}
		e.mu.Unlock()
	}
}

// sweepLeases drops the leases of past windows, at most once a window
// (l.lmu held).
func (l *Limiter) sweepLeases(now int64) {
	if now-l.leaseSweep < int64(l.window) {
		return
	}
	l.leaseSweep = now
	for k, e := range l.leases {
		if e.start.Load() < now-int64(l.window) {
			delete(l.leases, k)
		}
	}
}

// Memory is an in-process Store.
type Memory struct {
	mu      sync.RWMutex
	buckets map[string]*bucket
	sweep   atomic.Int64
}

type bucket struct {
	start atomic.Int64 // unix nanos of the window
	count atomic.Int64
}

// NewMemory returns an empty memory store.
func NewMemory() *Memory { return &Memory{buckets: make(map[string]*bucket)} }

// Add implements Store; the hot path is a read lock and two atomics.
func (m *Memory) Add(_ context.Context, key string, start time.Time, window time.Duration, n int64) (int64, error) {
	s := start.UnixNano()
	m.mu.RLock()
	b := m.buckets[key]
	m.mu.RUnlock()
	if b == nil {
		if n == 0 {
			return 0, nil // nothing counted yet: a read needs no bucket
		}
		m.mu.Lock()
		if b = m.buckets[key]; b == nil {
			b = &bucket{}
			b.start.Store(s)
			m.buckets[key] = b
		}
		m.mu.Unlock()
		m.maybeSweep(s, window)
	}
	for {
		old := b.start.Load()
		if old == s {
			break
		}
		if old > s {
			// A request stamped in a past window, answered in this one: it
			// counts here rather than nowhere.
			break
		}
		if b.start.CompareAndSwap(old, s) {
			b.count.Store(0)
			break
		}
	}
	if n == 0 {
		return b.count.Load(), nil // a read, not a write other cores must see
	}
	return b.count.Add(n), nil
}

// maybeSweep drops buckets of past windows, at most once a window.
func (m *Memory) maybeSweep(now int64, window time.Duration) {
	last := m.sweep.Load()
	if now-last < int64(window) || !m.sweep.CompareAndSwap(last, now) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, b := range m.buckets {
		if b.start.Load() < now-int64(window) {
			delete(m.buckets, k)
		}
	}
}
