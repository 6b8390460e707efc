package oauth

import (
	"context"
	"errors"
	"math"
	"runtime/debug"
	"time"
)

// ErrBusy is Login's answer when every password-check slot stayed busy for
// the brief wait: the caller should try again in a moment.
var ErrBusy = errors.New("too many sign-ins at once; try again in a moment")

// DefaultPasswordWait is how long a sign-in waits for a free slot before
// ErrBusy: about two argon2id checks.
const DefaultPasswordWait = 200 * time.Millisecond

// argonBytes is the memory one argon2id check holds.
const argonBytes = argonMemory << 10

// DefaultPasswordChecks is how many password checks may run at once: 4
// (76 MiB of argon2id memory), fewer when a Go memory limit (GOMEMLIMIT)
// is set and a quarter of it holds fewer checks.
func DefaultPasswordChecks() int { return passwordChecksFor(debug.SetMemoryLimit(-1)) }

func passwordChecksFor(memLimit int64) int {
	const most = 4
	if memLimit <= 0 || memLimit == math.MaxInt64 {
		return most
	}
	return int(max(1, min(most, memLimit/4/argonBytes)))
}

// PasswordSlots bounds the password checks running at once. Each argon2id
// check allocates 19 MiB: unbounded, concurrent sign-ins were a memory
// amplifier (16 at once held 300 MiB). A check waits briefly for a slot,
// never in a queue without bound.
type PasswordSlots struct {
	slots chan struct{}
	wait  time.Duration
}

// NewPasswordSlots allows n checks at once (at least 1); a check waits at
// most wait for a slot.
func NewPasswordSlots(n int, wait time.Duration) *PasswordSlots {
	return &PasswordSlots{slots: make(chan struct{}, max(n, 1)), wait: wait}
}

// Acquire takes a slot, waiting at most the configured time (or until ctx
// ends). ok is false when none came free; otherwise release gives it back.
func (p *PasswordSlots) Acquire(ctx context.Context) (release func(), ok bool) {
	release = func() { <-p.slots }
	select {
	case p.slots <- struct{}{}:
		return release, true
	default:
	}
	if p.wait <= 0 {
		return nil, false
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}
