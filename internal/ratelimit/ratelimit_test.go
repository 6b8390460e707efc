package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/breaker"
)

func TestLimiterCountsAndRefuses(t *testing.T) {
	l := New(Config{})
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		r := l.Hit(ctx, "k", 5)
		if !r.Allowed || r.Remaining != 5-i {
			t.Fatalf("hit %d: %+v", i, r)
		}
	}
	if r := l.Hit(ctx, "k", 5); r.Allowed || r.Remaining != 0 || r.Reset <= 0 || r.Reset > time.Minute {
		t.Fatalf("6th hit: %+v", r)
	}
	if r := l.Hit(ctx, "other", 5); !r.Allowed {
		t.Fatalf("another key shares the count: %+v", r)
	}
}

func TestMemoryConcurrentExact(t *testing.T) {
	m := NewMemory()
	start := time.Now().Truncate(time.Minute)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				m.Add(context.Background(), "c", start, time.Minute, 1)
			}
		}()
	}
	wg.Wait()
	if got, _ := m.Add(context.Background(), "c", start, time.Minute, 0); got != 8000 {
		t.Fatalf("count = %d, want 8000", got)
	}
	if got, _ := m.Add(context.Background(), "c", start.Add(time.Minute), time.Minute, 1); got != 1 {
		t.Fatalf("a new window starts at %d, want 1", got)
	}
}

type failing struct{}

func (failing) Lease(context.Context, string, time.Time, time.Duration, int, int64) (int64, int64, error) {
	return 0, 0, errors.New("down")
}

func TestFallsBackToLocalCounts(t *testing.T) {
	fell := 0
	b := breaker.New(breaker.Config{Name: "test", Failures: 1, OnError: func() { fell++ }})
	l := New(Config{Store: failing{}, Breaker: b})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if r := l.Hit(ctx, "k", 2); r.Allowed != (i < 2) {
			t.Fatalf("hit %d allowed=%v", i, r.Allowed)
		}
	}
	if fell != 1 {
		t.Fatalf("the store was tried %d times, want once (then the breaker skips it)", fell)
	}
}

func BenchmarkLimiterMemory(b *testing.B) {
	l := New(Config{})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Hit(ctx, "key_01abc", 1<<30)
		}
	})
}

// A request stamped just before the window turned, counted after another
// request opened the new window, still counts: a late request must not be
// a free one.
func TestLateRequestCounts(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	w := time.Minute
	now := time.Now().Truncate(w)
	if c, _ := m.Add(ctx, "k", now, w, 1); c != 1 {
		t.Fatalf("first hit of the new window: %d", c)
	}
	if c, _ := m.Add(ctx, "k", now.Add(-w), w, 1); c != 2 {
		t.Fatalf("late hit stamped in the past window counted as %d, want 2", c)
	}
}
