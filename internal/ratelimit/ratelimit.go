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
	Store Store
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
	shared  Store
	local   *Memory
	window  time.Duration
	breaker *breaker.Breaker
}

// New returns a limiter.
func New(cfg Config) *Limiter {
	l := &Limiter{shared: cfg.Store, local: NewMemory(), window: cfg.Window, breaker: cfg.Breaker}
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
	return l.add(ctx, key, limit, 1, time.Now())
}

// HitAt is Hit for a request that arrived at now (a caller that has read
// the clock already saves reading it again).
func (l *Limiter) HitAt(ctx context.Context, key string, limit int, now time.Time) Result {
	return l.add(ctx, key, limit, 1, now)
}

// Peek decides key without counting (for lockouts).
func (l *Limiter) Peek(ctx context.Context, key string, limit int) Result {
	return l.add(ctx, key, limit, 0, time.Now())
}

// PeekAt is Peek for a request that arrived at now.
func (l *Limiter) PeekAt(ctx context.Context, key string, limit int, now time.Time) Result {
	return l.add(ctx, key, limit, 0, now)
}

func (l *Limiter) add(ctx context.Context, key string, limit int, n int64, now time.Time) Result {
	start := now.Truncate(l.window)
	count := l.count(ctx, key, start, n, now)
	r := Result{Limit: limit, Reset: start.Add(l.window).Sub(now)}
	if n == 0 {
		r.Allowed = count < int64(limit)
	} else {
		r.Allowed = count <= int64(limit)
	}
	if rem := int64(limit) - count; rem > 0 {
		r.Remaining = int(rem)
	}
	return r
}

func (l *Limiter) count(ctx context.Context, key string, start time.Time, n int64, now time.Time) int64 {
	// Degrade, don't fail: while the shared store fails the breaker skips
	// it and counts are local.
	if l.shared != nil && l.breaker.Allow() {
		c, err := l.shared.Add(ctx, key, start, l.window, n)
		l.breaker.Done(ctx, err)
		if err == nil {
			return c
		}
	}
	c, _ := l.local.Add(ctx, key, start, l.window, n)
	return c
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
