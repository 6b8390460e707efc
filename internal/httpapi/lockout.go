package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	key := s.addrs.get(s.cfg.Auth.ClientIP(r)).failKey
	res, err := s.cfg.Lockout.Reserve(ctx, key, s.cfg.FailedAuthLimit, time.Minute, at)
	if err != nil {
		return nil, err
	}
	return func(failed bool) { res.Done(context.WithoutCancel(ctx), failed) }, nil
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
