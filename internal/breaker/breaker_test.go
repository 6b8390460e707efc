package breaker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	var logs bytes.Buffer
	clk := &clock{t: time.Unix(1000, 0)}
	errs := 0
	b := New(Config{Name: "redis", Failures: 3, CoolDown: 5 * time.Second, Now: clk.now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnError: func() { errs++ }})
	ctx := context.Background()
	down := errors.New("i/o timeout")
	fail := func(context.Context) error { return down }
	ok := func(context.Context) error { return nil }

	for i := 0; i < 2; i++ {
		if err := b.Do(ctx, fail); err != down {
			t.Fatalf("call %d: %v", i, err)
		}
		if b.State() != Closed {
			t.Fatalf("opened after %d failures, want 3", i+1)
		}
	}
	b.Do(ctx, fail)
	if b.State() != Open {
		t.Fatalf("state %v after 3 failures, want open", b.State())
	}
	// Open: nothing reaches the dependency.
	called := false
	if err := b.Do(ctx, func(context.Context) error { called = true; return nil }); err != ErrOpen || called {
		t.Fatalf("open breaker let a call through: %v", err)
	}
	// Failing on and on while open logs nothing more.
	clk.add(5 * time.Second)
	if b.State() != HalfOpen {
		t.Fatalf("state %v after the cool-down, want half-open", b.State())
	}
	if !b.Allow() {
		t.Fatal("the probe was refused")
	}
	if b.Allow() {
		t.Fatal("a second probe was let through while the first runs")
	}
	b.Done(ctx, down)
	if b.State() != Open {
		t.Fatalf("a failed probe left the breaker %v", b.State())
	}
	clk.add(5 * time.Second)
	if err := b.Do(ctx, ok); err != nil || b.State() != Closed {
		t.Fatalf("a good probe: %v, state %v", err, b.State())
	}
	if got := strings.Count(logs.String(), "unavailable"); got != 1 {
		t.Errorf("logged the opening %d times, want once:\n%s", got, logs.String())
	}
	if got := strings.Count(logs.String(), "is back"); got != 1 {
		t.Errorf("logged the closing %d times, want once:\n%s", got, logs.String())
	}
	if errs != 4 {
		t.Errorf("OnError told %d times, want 4", errs)
	}
}

// A caller that gives up (its own context cancelled) says nothing of the
// dependency.
func TestBreakerIgnoresCallerCancellation(t *testing.T) {
	b := New(Config{Name: "redis", Failures: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	if b.State() != Closed {
		t.Fatalf("state %v", b.State())
	}
}

func TestNilBreakerAlwaysAllows(t *testing.T) {
	var b *Breaker
	if !b.Allow() || b.State() != Closed {
		t.Fatal("a nil breaker must let every call through")
	}
	b.Done(context.Background(), errors.New("x"))
}
