package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/idempotency"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// secretFields are answer fields that hold a secret shown once: they are
// never stored for replay (CONTRACT §2: the plain secret appears exactly
// once), so a replay of a create answers the object without them.
var secretFields = []string{"key", "secret", "client_secret"}

// idempotent wraps a POST handler with Idempotency-Key handling. The
// handler runs under an ambient transaction (store.WithAmbient): its
// changes and the answer stored for the key commit together, so a crash
// or a failed write leaves both or neither, and a committed change is
// never answered with a server error.
func (s *Server) idempotent(r Route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		key := c.Get("Idempotency-Key")
		if key == "" {
			return c.Next()
		}
		if len(key) > 255 {
			return nexus.ParamError(nexus.CodeParameterInvalid, "Idempotency-Key", "Idempotency-Key must be 1 to 255 characters")
		}
		t := tenant(c)
		hash := idempotency.Hash(c.Method(), c.Path(), c.Body())
		saved, claim, err := s.cfg.Idempotency.Begin(c.UserContext(), t, key, hash)
		if err != nil {
			return err
		}
		if saved != nil {
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Status(saved.Status).Send(saved.Body)
		}
		// From here the key is ours: it must be finished or released even
		// if the client goes away (the ambient transaction outlives it too).
		ctx, amb := s.cfg.DB.WithAmbient(c.UserContext())
		defer amb.Rollback() // after a panic; a no-op once committed
		parent := c.UserContext()
		c.SetUserContext(ctx)
		err = c.Next()
		c.SetUserContext(parent)
		// The deadline bounds storing the answer, not the handler: a slow
		// request under load should commit rather than fail at the end.
		done, cancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
		defer cancel()
		if err != nil {
			if herr := s.app.ErrorHandler(c, err); herr != nil {
				_ = amb.Rollback()
				_ = s.cfg.Idempotency.Abort(done, claim)
				return herr
			}
		}
		status := c.Response().StatusCode()
		if status >= 500 {
			// Nothing is kept; let the client retry with the same key.
			_ = amb.Rollback()
			return s.cfg.Idempotency.Abort(done, claim)
		}
		body := c.Response().Body()
		if r.Secret {
			body = withoutSecrets(body)
		}
		err = amb.Commit(done, func(ctx context.Context, tx bun.Tx) error {
			return s.cfg.Idempotency.Finish(ctx, tx, claim, status, body)
		})
		if err == nil {
			return nil
		}
		// Nothing committed, or the commit's outcome is unknown: then its
		// stored answer decides, and Abort leaves a committed key alone.
		_ = s.cfg.Idempotency.Abort(done, claim)
		s.log.Warn("idempotent request rolled back: its answer could not be stored",
			"request_id", requestID(c), "path", c.Path(), "err", err)
		c.Response().ResetBody()
		if errors.Is(err, idempotency.ErrClaimLost) {
			return s.app.ErrorHandler(c, errKeyTakenBack)
		}
		return s.app.ErrorHandler(c, errNotStored)
	}
}

var (
	errNotStored = nexus.Errorf(nexus.CodeServiceUnavailable,
		"the request could not be completed; retry with the same Idempotency-Key (a change that did commit is replayed, never made twice)")
	errKeyTakenBack = &nexus.Error{Code: nexus.CodeIdempotencyKeyInUse, Param: "Idempotency-Key",
		Message: "this request ran longer than the Idempotency-Key is reserved and a retry took the key over; this attempt changed nothing"}
)

func withoutSecrets(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	for _, f := range secretFields {
		delete(m, f)
	}
	var buf bytes.Buffer
	if json.NewEncoder(&buf).Encode(m) != nil {
		return body
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
