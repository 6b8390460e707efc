// Package ratelimit counts requests in fixed one-minute windows: per
// credential, per IP on the OAuth and login pages, and failed
// authentications per IP. Counts live in memory, or in Redis so that every
// instance shares them; when Redis fails the limiter falls back to local
// counts (logged) rather than failing requests, and returns to Redis on its
// own.
package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
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
	// Logger. Optional. Default: slog.Default().
	Logger *slog.Logger
	// OnFallback is told when the shared store fails and local counts are
	// used instead. Optional.
	OnFallback func()
}

// Limiter decides.
type Limiter struct {
	shared   Store
	local    *Memory
	window   time.Duration
	log      *slog.Logger
	onFall   func()
	downTill atomic.Int64 // unix nanos: skip the shared store until then
	warned   atomic.Bool
}

// New returns a limiter.
func New(cfg Config) *Limiter {
	l := &Limiter{shared: cfg.Store, local: NewMemory(), window: cfg.Window, log: cfg.Logger, onFall: cfg.OnFallback}
	if l.window == 0 {
		l.window = time.Minute
	}
	if l.log == nil {
		l.log = slog.Default()
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
	if l.shared != nil && now.UnixNano() >= l.downTill.Load() {
		c, err := l.shared.Add(ctx, key, start, l.window, n)
		if err == nil {
			if l.warned.CompareAndSwap(true, false) {
				l.log.Info("rate limits: shared store is back; counts are shared again")
			}
			return c
		}
		// Degrade, don't fail: retry the shared store in a few seconds.
		l.downTill.Store(time.Now().Add(3 * time.Second).UnixNano())
		if l.warned.CompareAndSwap(false, true) {
			l.log.Warn("rate limits: shared store unavailable; counting locally until it recovers", "err", err)
		}
		if l.onFall != nil {
			l.onFall()
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
