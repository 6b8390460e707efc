package httpapi

import (
	"fmt"
	"runtime/debug"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// A panic ends its request, never the process (fasthttp does not recover
// one). It is caught at two depths: around each route's handler, where it
// becomes an internal error that the layers outside finish like any other
// (the idempotency key is released, the access log records the 500), and
// in requestMeta for whatever runs outside a handler.

var errPanic = &nexus.Error{Code: nexus.CodeInternalError, Message: "an internal error occurred; it has been logged with the request id"}

// recovering returns h with its panics turned into errPanic.
func (s *Server) recovering(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = s.panicked(c, v)
			}
		}()
		return h(c)
	}
}

// panicked logs a recovered panic once, with its stack, counts it, and drops
// whatever the handler had written of its answer.
func (s *Server) panicked(c *fiber.Ctx, v any) error {
	m := meta(c)
	s.metrics.panics.Inc()
	s.log.Error("panic serving a request", "request_id", m.ID, "method", c.Method(), "path", c.Path(),
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	c.Response().Reset()
	s.answerHeaders(c, m)
	return errPanic
}
