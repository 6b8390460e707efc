package oauth

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"testing"
	"time"
)

// firstDummyAlloc is what the first dummyHash call allocated, right after
// the package loaded: the 19 MiB of argon2id if it hashes then, next to
// nothing if the hash was made when the package loaded.
var firstDummyAlloc uint64

func TestMain(m *testing.M) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	dummyHash()
	runtime.ReadMemStats(&after)
	firstDummyAlloc = after.TotalAlloc - before.TotalAlloc
	os.Exit(m.Run())
}

// The dummy argon2id hash costs ~90 ms and 19 MiB: it is made on the first
// login of an unknown email, not by every start of the binary.
func TestDummyHashLazy(t *testing.T) {
	if firstDummyAlloc < argonBytes {
		t.Fatalf("the first dummyHash call allocated %d bytes, less than one argon2id hash (%d): it was made when the package loaded", firstDummyAlloc, argonBytes)
	}
	h := dummyHash()
	if h == "" || dummyHash() != h || !checkPassword(h, "nexus-timing-equaliser") {
		t.Fatalf("dummyHash() = %q: want one stable, valid argon2id hash", h)
	}
}

func TestPasswordChecksFor(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, tc := range []struct {
		limit int64
		want  int
	}{
		{math.MaxInt64, 4}, // no GOMEMLIMIT
		{0, 4},
		{4 << 30, 4},
		{4 * 4 * 19 * mib, 4},
		{4*4*19*mib - 1, 3},
		{200 * mib, 2},
		{100 * mib, 1},
		{10 * mib, 1}, // never none: sign-in must stay possible
	} {
		if got := passwordChecksFor(tc.limit); got != tc.want {
			t.Errorf("passwordChecksFor(%d MiB) = %d, want %d", tc.limit/mib, got, tc.want)
		}
	}
}

func TestPasswordSlots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewPasswordSlots(2, 0)
	r1, ok1 := s.Acquire(ctx)
	r2, ok2 := s.Acquire(ctx)
	if !ok1 || !ok2 {
		t.Fatal("two slots: the first two acquisitions failed")
	}
	if _, ok := s.Acquire(ctx); ok {
		t.Fatal("a third check got a slot of two")
	}
	r1()
	r3, ok := s.Acquire(ctx)
	if !ok {
		t.Fatal("a released slot was not given again")
	}
	r2()
	r3()

	// A waiting check gets the slot another gives back.
	w := NewPasswordSlots(1, time.Hour)
	held, _ := w.Acquire(ctx)
	got := make(chan bool)
	go func() {
		release, ok := w.Acquire(ctx)
		if ok {
			release()
		}
		got <- ok
	}()
	held()
	if !<-got {
		t.Fatal("a waiting check did not get the released slot")
	}

	// A waiting check gives up with its request.
	held, _ = w.Acquire(ctx)
	defer held()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := w.Acquire(cctx); ok {
		t.Fatal("a check whose request ended got a slot")
	}
}

// With every slot held, Login answers ErrBusy for a known email and an
// unknown one alike, opens no session, and works again once a slot is
// free; no login keeps its slot.
func TestLoginBusy(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	slots := NewPasswordSlots(1, 0)
	f.svc = New(f.db, Config{PasswordSlots: slots})
	if _, err := f.svc.CreateMember(f.ctx, f.user.ID, "alice@example.com", "long enough password"); err != nil {
		t.Fatal(err)
	}
	sessions := func() int {
		n, err := f.cross("counts every session").Select((*session)(nil)).Count(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}

	release, ok := slots.Acquire(f.ctx)
	if !ok {
		t.Fatal("no free slot at start")
	}
	for _, email := range []string{"alice@example.com", "nobody@example.com"} {
		if tok, err := f.svc.Login(f.ctx, email, "long enough password"); !errors.Is(err, ErrBusy) || tok != "" {
			t.Errorf("Login(%s) with every slot held = %q, %v; want ErrBusy", email, tok, err)
		}
	}
	if n := sessions(); n != 0 {
		t.Fatalf("%d sessions opened while busy", n)
	}
	release()

	for _, tc := range []struct{ email, pw string }{
		{"nobody@example.com", "long enough password"},
		{"alice@example.com", "wrong password!"},
		{"alice@example.com", "long enough password"},
	} {
		if _, err := f.svc.Login(f.ctx, tc.email, tc.pw); errors.Is(err, ErrBusy) {
			t.Fatalf("Login(%s) after the slot was freed: %v", tc.email, err)
		}
	}
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	if r, ok := slots.Acquire(f.ctx); !ok {
		t.Fatal("a login kept its slot")
	} else {
		r()
	}
}
