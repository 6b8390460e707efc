package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/ratelimit"
)

// addrGate reserves a failed-authentication slot of the client address
// before the authenticator evaluates a credential its cache cannot answer:
// however many arrive at once, no more than the limit are evaluated.
type addrGate struct{ s *Server }

func (g *addrGate) Admit(ctx context.Context, r *auth.Request) (func(bool), error) {
	s := g.s
	at := r.At
	if at.IsZero() {
		at = time.Now()
	}
	res, err := s.cfg.Lockout.Reserve(ctx, failKey(s.cfg.Auth.ClientIP(r)), s.cfg.FailedAuthLimit, time.Minute, at)
	if err != nil {
		return nil, err
	}
	return func(failed bool) { res.Done(context.WithoutCancel(ctx), failed) }, nil
}

// failKey is the failed-authentication lockout key of a client address.
func failKey(a netip.Addr) string { return failPrefix + a.String() }

const failPrefix = "fail:"

// addrLocked reports whether the lockout refuses a, as Lockout.Locked of
// its failKey. Every credentialed request asks: the key is built in a
// buffer of the stack, and the string Locked does not keep is converted
// without a heap allocation when it is short (every IPv4 address).
func (s *Server) addrLocked(a netip.Addr, now time.Time) (time.Duration, bool) {
	var buf [64]byte
	k := a.AppendTo(append(buf[:0], failPrefix...))
	return s.cfg.Lockout.Locked(string(k), now)
}

// tooManyFailed answers 429 too_many_failed_attempts with Retry-After.
func tooManyFailed(c *fiber.Ctx, reset time.Duration, what string) error {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfter(ratelimit.Result{Reset: reset})))
	return nexus.Errorf(nexus.CodeTooManyFailedAttempts, "too many failed authentications from this %s; retry after the window resets", what)
}

// refused answers a reservation the lockout refused.
func refused(c *fiber.Ctx, ref *ratelimit.Refusal, what string) error {
	if ref.Locked {
		return tooManyFailed(c, ref.Reset, what)
	}
	c.Set(fiber.HeaderRetryAfter, "1")
	return nexus.Errorf(nexus.CodeRateLimited, "too many authentications in flight from this %s; retry in a second", what)
}

// accountKey is the lockout key of a sign-in email: a digest, so that no
// address is kept in Redis, and the same for every spelling that names
// one account.
func accountKey(email string) string {
	d := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "account:" + hex.EncodeToString(d[:16])
}
