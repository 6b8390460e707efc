// Package breaker is a circuit breaker for an optional dependency (Redis):
// after a few consecutive failures it opens, and callers skip the
// dependency and use their local fallback for a cool-down; then one caller
// at a time probes it (half-open) until a call succeeds. A stalled
// dependency so costs a handful of requests one call timeout each, not
// every request. State changes are logged once each.
package breaker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// State is the breaker's state; its number is what the metrics gauge shows.
type State int32

const (
	Closed   State = iota // calls go to the dependency
	HalfOpen              // one probe is let through
	Open                  // calls are skipped until the cool-down ends
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	}
	return "open"
}

// ErrOpen is what Do returns while the breaker skips the dependency.
var ErrOpen = errors.New("breaker open: dependency skipped during its cool-down")

// Config configures a Breaker.
type Config struct {
	// Name of the dependency, in log messages. Required.
	Name string
	// Failures in a row that open the breaker. Optional. Default: 3.
	Failures int
	// CoolDown is how long an open breaker skips the dependency before a
	// probe. Optional. Default: 5 s.
	CoolDown time.Duration
	// Logger. Optional. Default: slog.Default().
	Logger *slog.Logger
	// OpenMessage and CloseMessage are logged when the breaker opens (at
	// WARN) and closes again (at INFO). Optional.
	OpenMessage, CloseMessage string
	// OnError is told of every failed call (for a metric). Optional.
	OnError func()
	// Now is the clock. Optional. Default: time.Now.
	Now func() time.Time
}

// Breaker is safe for concurrent use; a closed breaker costs one atomic
// load per call.
type Breaker struct {
	cfg      Config
	state    atomic.Int32
	fails    atomic.Int32
	openTill atomic.Int64 // unix nanos
	probing  atomic.Bool
	mu       sync.Mutex // serializes transitions and their log lines
}

// New returns a closed breaker.
func New(cfg Config) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = 3
	}
	if cfg.CoolDown <= 0 {
		cfg.CoolDown = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OpenMessage == "" {
		cfg.OpenMessage = cfg.Name + " unavailable: skipped during a cool-down"
	}
	if cfg.CloseMessage == "" {
		cfg.CloseMessage = cfg.Name + " is back"
	}
	return &Breaker{cfg: cfg}
}

// State is the current state; an open breaker whose cool-down has passed
// reports HalfOpen.
func (b *Breaker) State() State {
	if b == nil {
		return Closed
	}
	s := State(b.state.Load())
	if s == Open && b.cfg.Now().UnixNano() >= b.openTill.Load() {
		return HalfOpen
	}
	return s
}

// Allow reports whether a call may go to the dependency now. When it
// returns true the caller must report the outcome with Done.
func (b *Breaker) Allow() bool {
	if b == nil || State(b.state.Load()) == Closed {
		return true
	}
	if b.cfg.Now().UnixNano() < b.openTill.Load() {
		return false
	}
	// Cool-down over: one probe at a time; the others keep their fallback.
	return b.probing.CompareAndSwap(false, true)
}

// Done reports the outcome of an allowed call. Errors that are the
// caller's own (its context cancelled) say nothing of the dependency.
func (b *Breaker) Done(ctx context.Context, err error) {
	if b == nil {
		return
	}
	if err != nil && ctx != nil && ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
		b.probing.Store(false)
		return
	}
	if err == nil {
		b.fails.Store(0)
		if State(b.state.Load()) != Closed {
			b.mu.Lock()
			if State(b.state.Load()) != Closed {
				b.state.Store(int32(Closed))
				b.cfg.Logger.Info(b.cfg.CloseMessage)
			}
			b.mu.Unlock()
		}
		b.probing.Store(false)
		return
	}
	if b.cfg.OnError != nil {
		b.cfg.OnError()
	}
	n := b.fails.Add(1)
	if State(b.state.Load()) == Closed && n < int32(b.cfg.Failures) {
		return
	}
	b.mu.Lock()
	was := State(b.state.Load())
	b.openTill.Store(b.cfg.Now().Add(b.cfg.CoolDown).UnixNano())
	b.state.Store(int32(Open))
	if was == Closed {
		b.cfg.Logger.Warn(b.cfg.OpenMessage, "err", err, "cool_down", b.cfg.CoolDown.String())
	}
	b.mu.Unlock()
	b.probing.Store(false)
}

// Do runs call unless the breaker is open (ErrOpen) and records its outcome.
func (b *Breaker) Do(ctx context.Context, call func(context.Context) error) error {
	if !b.Allow() {
		return ErrOpen
	}
	err := call(ctx)
	b.Done(ctx, err)
	return err
}
