package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/idempotency"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// secretFields are answer fields that hold a secret shown once: they are
// never stored for replay (CONTRACT §2: the plain secret appears exactly
// once), so a replay of a create answers the object without them.
var secretFields = []string{"key", "secret", "client_secret"}

// idempotent wraps a POST handler with Idempotency-Key handling.
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
		saved, err := s.cfg.Idempotency.Begin(c.UserContext(), t, key, hash)
		if err != nil {
			return err
		}
		if saved != nil {
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Status(saved.Status).Send(saved.Body)
		}
		// From here the key is ours: it must be finished or released even
		// if the client goes away, so use a context that outlives it.
		done, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), 10*time.Second)
		defer cancel()
		if err := c.Next(); err != nil {
			if herr := s.app.ErrorHandler(c, err); herr != nil {
				_ = s.cfg.Idempotency.Abort(done, t, key)
				return herr
			}
		}
		status := c.Response().StatusCode()
		if status >= 500 {
			// Nothing happened; let the client retry with the same key.
			return s.cfg.Idempotency.Abort(done, t, key)
		}
		body := c.Response().Body()
		if r.Secret {
			body = withoutSecrets(body)
		}
		return s.cfg.Idempotency.Finish(done, t, key, status, body)
	}
}

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
