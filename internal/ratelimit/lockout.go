package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexus-fintech/nexus/internal/breaker"
)

// Lockout counts failed authentications per key (a client address, an
// account, a credential) in fixed windows, and locks a key out for the rest
// of its window once its failures reach the limit.
//
// An evaluation that could fail (a password check, a key looked up in
// storage) first reserves a slot, so that no more than the limit is ever
// evaluated per key and window, however many arrive at once: the failures
// counted plus the evaluations in flight never exceed it. An evaluation
// that finds every slot in flight waits for one to end. With a shared
// store the reservation is made there too, so the bound holds across
// instances; locks are announced to every instance (OnLock and Learn), so
// that checking one (Locked) never leaves the process.
type Lockout struct {
	shared  LockStore
	breaker *breaker.Breaker
	onLock  func(key string, until time.Time)
	// MaxWait bounds how long a reservation waits for a slot in flight.
	maxWait time.Duration

	mu     sync.Mutex
	states map[string]*lockState
	sweep  int64

	lmu    sync.RWMutex
	locks  map[string]int64 // key -> unix nanos it is locked until
	nlocks atomic.Int32     // len(locks): the common "none" answer takes no lock
}

// LockStore is the shared side of a Lockout (Redis).
type LockStore interface {
	// Reserve takes a slot of key's window: status 1 reserved, 0 every
	// slot left is in flight, -1 locked; failures is the window's count.
	Reserve(ctx context.Context, key string, start time.Time, window time.Duration, limit int) (status int, failures int64, err error)
	// Settle ends a reservation (release) and/or counts a failure, and
	// records the lock when the failures reach limit; it returns the count.
	Settle(ctx context.Context, key string, start time.Time, window time.Duration, limit int, release, failed bool) (int64, error)
	// Locks lists the keys locked now, with when their locks end.
	Locks(ctx context.Context, now time.Time) (map[string]time.Time, error)
}

type lockState struct {
	start    int64 // unix nanos of the window
	window   time.Duration
	failures int64 // this window's, as last known (the shared count when there is one)
	inflight int64
	wake     chan struct{} // closed when a slot is released
}

// LockoutConfig configures a Lockout.
type LockoutConfig struct {
	// Store shares counts and locks between instances. Optional.
	Store LockStore
	// Breaker skips the store while it fails. Optional.
	Breaker *breaker.Breaker
	// OnLock is told when this instance sees a key reach its limit (to
	// announce it to the other instances). Optional.
	OnLock func(key string, until time.Time)
	// MaxWait bounds the wait for a slot in flight. Optional. Default: 2 s.
	MaxWait time.Duration
}

// NewLockout returns a lockout.
func NewLockout(cfg LockoutConfig) *Lockout {
	l := &Lockout{shared: cfg.Store, breaker: cfg.Breaker, onLock: cfg.OnLock, maxWait: cfg.MaxWait,
		states: map[string]*lockState{}, locks: map[string]int64{}}
	if l.maxWait <= 0 {
		l.maxWait = 2 * time.Second
	}
	return l
}

// Refusal is a reservation refused: the key is locked out (Locked), or
// every slot stayed in flight for the longest wait.
type Refusal struct {
	Locked bool
	Reset  time.Duration // until the window ends
}

func (r *Refusal) Error() string {
	if r.Locked {
		return "too many failed attempts"
	}
	return "too many attempts in flight"
}

// Locked reports whether key is locked out at now, and until when. It
// takes no lock while nothing is locked.
func (l *Lockout) Locked(key string, now time.Time) (time.Duration, bool) {
	if l.nlocks.Load() == 0 {
		return 0, false
	}
	l.lmu.RLock()
	until, ok := l.locks[key]
	l.lmu.RUnlock()
	if !ok || now.UnixNano() >= until {
		return 0, false
	}
	return time.Duration(until - now.UnixNano()), true
}

// Learn records a lock another instance announced (or the store listed).
func (l *Lockout) Learn(key string, until time.Time) {
	u := until.UnixNano()
	if u <= time.Now().UnixNano() {
		return
	}
	l.lmu.Lock()
	defer l.lmu.Unlock()
	if old, ok := l.locks[key]; ok && old >= u {
		return
	}
	if len(l.locks) > 1024 {
		now := time.Now().UnixNano()
		for k, v := range l.locks {
			if v <= now {
				delete(l.locks, k)
			}
		}
	}
	l.locks[key] = u
	l.nlocks.Store(int32(len(l.locks)))
}

// Load learns every lock the shared store holds (at start, and after the
// announcements may have been missed).
func (l *Lockout) Load(ctx context.Context) error {
	if l.shared == nil {
		return nil
	}
	var locks map[string]time.Time
	err := l.breaker.Do(ctx, func(ctx context.Context) (err error) {
		locks, err = l.shared.Locks(ctx, time.Now())
		return err
	})
	for k, u := range locks {
		l.Learn(k, u)
	}
	return err
}

func (l *Lockout) lock(key string, s *lockState, announce bool) {
	until := time.Unix(0, s.start).Add(s.window)
	l.Learn(key, until)
	if announce && l.onLock != nil {
		l.onLock(key, until)
	}
}

// state returns key's state for the window of now (l.mu held).
func (l *Lockout) state(key string, now time.Time, window time.Duration) *lockState {
	start := now.Truncate(window).UnixNano()
	s := l.states[key]
	if s == nil {
		if len(l.states) > 4096 && now.UnixNano()-l.sweep > int64(time.Minute) {
			l.sweep = now.UnixNano()
			for k, x := range l.states {
				if x.inflight == 0 && x.start+int64(x.window) <= now.UnixNano() {
					delete(l.states, k)
				}
			}
		}
		s = &lockState{start: start, window: window, wake: make(chan struct{})}
		l.states[key] = s
	} else if s.start < start {
		s.start, s.window, s.failures = start, window, 0 // in-flight ones carry over
	}
	return s
}

// Reservation is a slot taken for one evaluation; end it with Done.
type Reservation struct {
	l      *Lockout
	key    string
	limit  int
	s      *lockState
	start  time.Time // the window in the shared store
	shared bool      // reserved in the shared store too
}

// Reserve takes a slot for one evaluation of key, whose failures are
// limited to limit per window; it refuses with a *Refusal.
func (l *Lockout) Reserve(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (*Reservation, error) {
	deadline := time.Now().Add(l.maxWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if reset, locked := l.Locked(key, now); locked {
		return nil, &Refusal{Locked: true, Reset: reset}
	}
	for {
		l.mu.Lock()
		s := l.state(key, now, window)
		reset := time.Duration(s.start + int64(s.window) - now.UnixNano())
		if s.failures >= int64(limit) {
			l.mu.Unlock()
			return nil, &Refusal{Locked: true, Reset: reset}
		}
		if s.failures+s.inflight < int64(limit) {
			s.inflight++
			r := &Reservation{l: l, key: key, limit: limit, s: s, start: time.Unix(0, s.start)}
			l.mu.Unlock()
			status, err := r.reserveShared(ctx, window)
			if err != nil || status == 1 {
				return r, nil // reserved (locally only when the store failed)
			}
			r.release(false)
			if status < 0 {
				return nil, &Refusal{Locked: true, Reset: reset}
			}
			// Every slot is in flight on other instances: ask again soon.
			if !sleepUntil(ctx, deadline, 10*time.Millisecond) {
				return nil, &Refusal{Reset: reset}
			}
			continue
		}
		// Every slot is in flight here: wait for one to end.
		wake := s.wake
		l.mu.Unlock()
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, &Refusal{Reset: reset}
		}
		t := time.NewTimer(wait)
		select {
		case <-wake:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil, &Refusal{Reset: reset}
		case <-t.C:
			return nil, &Refusal{Reset: reset}
		}
	}
}

func sleepUntil(ctx context.Context, deadline time.Time, d time.Duration) bool {
	if time.Until(deadline) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reserveShared reserves in the shared store; status 1 when there is none
// or it failed (local counts stand in).
func (r *Reservation) reserveShared(ctx context.Context, window time.Duration) (int, error) {
	l := r.l
	if l.shared == nil || !l.breaker.Allow() {
		return 1, nil
	}
	status, failures, err := l.shared.Reserve(ctx, r.key, r.start, window, r.limit)
	l.breaker.Done(ctx, err)
	if err != nil {
		return 1, err
	}
	l.mu.Lock()
	if failures > r.s.failures && r.s.start == r.start.UnixNano() {
		r.s.failures = failures
	}
	l.mu.Unlock()
	if status < 0 {
		l.lock(r.key, r.s, false)
	}
	r.shared = status == 1
	return status, nil
}

// release ends the local part of the reservation (l.mu not held).
func (r *Reservation) release(failed bool) int64 {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	s := r.s
	s.inflight--
	if failed && s.start == r.start.UnixNano() {
		s.failures++
	}
	close(s.wake)
	s.wake = make(chan struct{})
	return s.failures
}

// Done ends the evaluation: failed counts it as a failed attempt, else the
// slot is given back. It reports whether the key is now locked out.
func (r *Reservation) Done(ctx context.Context, failed bool) bool {
	if r == nil {
		return false
	}
	local := r.release(failed)
	if r.shared && r.l.breaker.State() == breaker.Closed {
		return r.l.settleShared(ctx, r.key, r.s, r.start, r.limit, true, failed)
	}
	if failed && local >= int64(r.limit) {
		r.l.mu.Lock()
		r.l.lock(r.key, r.s, true)
		r.l.mu.Unlock()
		return true
	}
	return false
}

// Fail counts a failed attempt that needed no reservation (nothing was
// evaluated: a malformed or already known credential). It reports whether
// the key is now locked out, and until when.
func (l *Lockout) Fail(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	s := l.state(key, now, window)
	s.failures++
	local := s.failures
	start := time.Unix(0, s.start)
	reset := time.Duration(s.start + int64(s.window) - now.UnixNano())
	l.mu.Unlock()
	if l.shared != nil && l.breaker.Allow() {
		if l.settleShared(ctx, key, s, start, limit, false, true) {
			return reset, true
		}
		return 0, false
	}
	if local >= int64(limit) {
		l.mu.Lock()
		l.lock(key, s, local == int64(limit))
		l.mu.Unlock()
		return reset, true
	}
	return 0, false
}

// settleShared settles in the shared store (the breaker allowed the call,
// or the reservation was made there) and locks when the count says so.
func (l *Lockout) settleShared(ctx context.Context, key string, s *lockState, start time.Time, limit int, release, failed bool) bool {
	f, err := l.shared.Settle(ctx, key, start, s.window, limit, release, failed)
	l.breaker.Done(ctx, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if failed && s.failures >= int64(limit) {
			l.lock(key, s, false)
			return true
		}
		return false
	}
	if f > s.failures && s.start == start.UnixNano() {
		s.failures = f
	}
	if failed && f >= int64(limit) {
		// The failure that reached the limit announces the lock.
		l.lock(key, s, f == int64(limit))
		return true
	}
	return false
}

// ErrRefused matches every *Refusal with errors.Is.
var ErrRefused = errors.New("refused")

func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// lockKey is the shared store's key of key's window.
func lockKey(key string, start time.Time) string {
	return KeyPrefix + "fail:" + key + ":" + strconv.FormatInt(start.Unix(), 10)
}
