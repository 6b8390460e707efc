package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// lockouts are a memory-only lockout and, when storetest has a Redis, one
// on Redis.
func lockouts(t *testing.T) map[string]func() *Lockout {
	out := map[string]func() *Lockout{"memory": func() *Lockout { return NewLockout(LockoutConfig{}) }}
	if u := storetest.MaybeRedisURL(t); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		out["redis"] = func() *Lockout { return NewLockout(LockoutConfig{Store: NewRedis(c)}) }
	}
	return out
}

func uniqueKey(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "test:" + t.Name() + ":" + hex.EncodeToString(b)
}

// N concurrent attempts that all fail: no more than the limit are ever
// evaluated, the rest are refused without evaluation. (Before slots were
// reserved, every one of them was evaluated.)
func TestLockoutEvaluatesAtMostLimitConcurrently(t *testing.T) {
	for name, mk := range lockouts(t) {
		t.Run(name, func(t *testing.T) {
			const limit, n = 10, 40
			for _, instances := range []int{1, 2} {
				ls := make([]*Lockout, instances)
				for i := range ls {
					ls[i] = mk()
				}
				if name == "memory" && instances > 1 {
					continue // separate memories share nothing
				}
				key := uniqueKey(t)
				var evaluated, refused atomic.Int64
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						l := ls[i%instances]
						r, err := l.Reserve(context.Background(), key, limit, time.Minute, time.Now())
						if err != nil {
							if !errors.Is(err, ErrRefused) {
								t.Error(err)
							}
							refused.Add(1)
							return
						}
						evaluated.Add(1)
						time.Sleep(time.Millisecond) // the password check
						r.Done(context.Background(), true)
					}()
				}
				close(start)
				wg.Wait()
				if got := evaluated.Load(); got != limit {
					t.Errorf("%d instance(s): %d of %d failing attempts evaluated, want exactly the limit %d", instances, got, n, limit)
				}
				if refused.Load() != n-limit {
					t.Errorf("%d instance(s): %d refused, want %d", instances, refused.Load(), n-limit)
				}
				for _, l := range ls {
					if _, locked := l.Locked(key, time.Now()); !locked {
						t.Errorf("%d instance(s): the key is not locked after %d failures", instances, limit)
					}
				}
			}
		})
	}
}

// Successful evaluations give their slot back: many at once, far more than
// the limit, all pass (those beyond the limit wait for a slot).
func TestLockoutSuccessesGiveSlotsBack(t *testing.T) {
	for name, mk := range lockouts(t) {
		t.Run(name, func(t *testing.T) {
			l := mk()
			key := uniqueKey(t)
			var wg sync.WaitGroup
			var refused atomic.Int64
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := l.Reserve(context.Background(), key, 3, time.Minute, time.Now())
					if err != nil {
						refused.Add(1)
						return
					}
					r.Done(context.Background(), false)
				}()
			}
			wg.Wait()
			if refused.Load() != 0 {
				t.Fatalf("%d successful attempts refused", refused.Load())
			}
			// Two failures, then a success, then one failure: locked at 3.
			for i, failed := range []bool{true, true, false, true} {
				r, err := l.Reserve(context.Background(), key, 3, time.Minute, time.Now())
				if err != nil {
					t.Fatalf("attempt %d refused: %v", i, err)
				}
				r.Done(context.Background(), failed)
			}
			_, err := l.Reserve(context.Background(), key, 3, time.Minute, time.Now())
			var ref *Refusal
			if !errors.As(err, &ref) || !ref.Locked || ref.Reset <= 0 {
				t.Fatalf("after 3 failures: %v, want a lock refusal", err)
			}
		})
	}
}

// Failures counted without a reservation lock too, and the lock is
// announced once, with the window's end.
func TestLockoutFailAnnouncesOnce(t *testing.T) {
	announced := 0
	var until time.Time
	l := NewLockout(LockoutConfig{OnLock: func(_ string, u time.Time) { announced++; until = u }})
	now := time.Now()
	for i := 0; i < 5; i++ {
		_, locked := l.Fail(context.Background(), "k", 3, time.Minute, now)
		if locked != (i >= 2) {
			t.Fatalf("failure %d: locked=%v", i+1, locked)
		}
	}
	if announced != 1 || !until.Equal(now.Truncate(time.Minute).Add(time.Minute)) {
		t.Fatalf("announced %d times, until %v", announced, until)
	}
	other := NewLockout(LockoutConfig{})
	if _, locked := other.Locked("k", now); locked {
		t.Fatal("locked before learning")
	}
	other.Learn("k", until)
	if _, locked := other.Locked("k", now); !locked {
		t.Fatal("a learned lock is not applied")
	}
	if _, locked := other.Locked("k", until); locked {
		t.Fatal("a lock outlived its window")
	}
}

func BenchmarkLockoutLockedNone(b *testing.B) {
	l := NewLockout(LockoutConfig{})
	now := time.Now()
	for b.Loop() {
		l.Locked("fail:203.0.113.9", now)
	}
}

// Two instances leasing one key's budget from Redis at once: together they
// allow exactly the limit, however the leases interleave.
func TestLeasesNeverExceedTheLimit(t *testing.T) {
	u := storetest.RedisURL(t)
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	for _, limit := range []int{30, 5000} {
		key := uniqueKey(t)
		ls := []*Limiter{New(Config{Store: NewRedis(c)}), New(Config{Store: NewRedis(c)})}
		now := time.Now()
		if now.Add(5*time.Second).Truncate(time.Minute) != now.Truncate(time.Minute) {
			now = now.Add(5 * time.Second) // one window for the whole test
		}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < limit*13/10/8; i++ {
					if ls[g%2].HitAt(context.Background(), key, limit, now).Allowed {
						allowed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		// Never more than the limit. Slightly fewer is allowed: a lease
		// whose answer timed out on a loaded machine is lost until the
		// window ends (at most a lease per timeout, 0.2% of the limit).
		if got := allowed.Load(); got > int64(limit) || got < int64(limit)*99/100 {
			t.Errorf("limit %d: two instances allowed %d in sum, want the limit (at most, and within 1%%)", limit, got)
		}
	}
}
