package httpapi

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

var errUnavailable = nexus.Errorf(nexus.CodeServiceUnavailable, "the database is unavailable; retry later")

// outageLog logs requests refused because the database is unavailable at
// most once per interval, with how many there were since the last line.
type outageLog struct {
	log   *slog.Logger
	every time.Duration

	mu    sync.Mutex
	last  time.Time
	count int
}

func (o *outageLog) note(err error) {
	o.mu.Lock()
	o.count++
	now := time.Now()
	if now.Sub(o.last) < o.every {
		o.mu.Unlock()
		return
	}
	n := o.count
	o.count, o.last = 0, now
	o.mu.Unlock()
	o.log.Warn("database unavailable: requests answered 503", "requests", n, "err", err)
}

// codeStatus is the one place contract codes meet HTTP statuses (CONTRACT §4).
var codeStatus = map[nexus.Code]int{
	nexus.CodeParameterMissing: 400, nexus.CodeParameterInvalid: 400, nexus.CodeParameterUnknown: 400,
	nexus.CodeBodyInvalidJSON: 400, nexus.CodeAmbiguousCredentials: 400, nexus.CodeInvalidScopes: 400,
	nexus.CodePolicyViolation: 400,

	nexus.CodeMissingCredentials: 401, nexus.CodeMalformedCredentials: 401, nexus.CodeInvalidAPIKey: 401,
	nexus.CodeAPIKeySuspended: 401, nexus.CodeAPIKeyRevoked: 401, nexus.CodeAPIKeyExpired: 401,
	nexus.CodeInvalidToken: 401, nexus.CodeTokenExpired: 401, nexus.CodeTokenRevoked: 401,
	nexus.CodeInvalidSignature: 401,

	nexus.CodePartnerNotApproved: 403, nexus.CodeInsufficientScope: 403, nexus.CodeIPNotAllowed: 403,
	nexus.CodeOriginNotAllowed: 403, nexus.CodeEnvironmentNotServed: 403, nexus.CodeTestModeOnly: 403,

	nexus.CodeResourceMissing: 404, nexus.CodeRouteNotFound: 404,

	nexus.CodeIdempotencyKeyReused: 409, nexus.CodeIdempotencyKeyInUse: 409,
	nexus.CodeAddressExists: 409, nexus.CodeInvalidState: 409,

	nexus.CodeBodyTooLarge: 413, nexus.CodeUnsupportedMediaType: 415,
	nexus.CodeInsufficientFunds: 422, nexus.CodeAddressNotUsable: 422, nexus.CodeLimitExceeded: 422,
	nexus.CodeRateLimited: 429, nexus.CodeTooManyFailedAttempts: 429,
	nexus.CodeInternalError: 500, nexus.CodeServiceUnavailable: 503,
}

func errorType(status int) string {
	switch status {
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 429:
		return "rate_limit_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type      string     `json:"type"`
	Code      nexus.Code `json:"code"`
	Message   string     `json:"message"`
	Param     string     `json:"param,omitempty"`
	RequestID string     `json:"request_id"`
}

// fiberErrors maps what Fiber itself refuses to contract errors.
func fromFiber(fe *fiber.Error) *nexus.Error {
	switch fe.Code {
	case fiber.StatusRequestEntityTooLarge:
		return nexus.Errorf(nexus.CodeBodyTooLarge, "the request body is larger than 1 MiB")
	case fiber.StatusUnsupportedMediaType:
		return nexus.Errorf(nexus.CodeUnsupportedMediaType, "request bodies must be application/json")
	case fiber.StatusNotFound, fiber.StatusMethodNotAllowed:
		return nexus.Errorf(nexus.CodeRouteNotFound, "no such route")
	case fiber.StatusBadRequest, fiber.StatusBadGateway:
		// Fiber reports a broken or closed client connection as 502; the
		// request could not be read, which is no server fault.
		return nexus.Errorf(nexus.CodeParameterInvalid, "the request could not be read")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return nexus.Errorf(nexus.CodeParameterInvalid, "request headers are too large")
	case fiber.StatusServiceUnavailable:
		return nexus.Errorf(nexus.CodeServiceUnavailable, "the service is unavailable; retry later")
	}
	return nil
}

// errorHandler renders every error in the contract envelope. Handlers only
// return errors; nothing else chooses a status.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	outage := &outageLog{log: log, every: time.Second}
	return func(c *fiber.Ctx, err error) error {
		var ne *nexus.Error
		var fe *fiber.Error
		switch {
		case errors.As(err, &ne):
		case errors.As(err, &fe) && fe.Code == fiber.StatusRequestTimeout:
			// A read timeout, often on an idle keep-alive connection: 408
			// and close is what clients understand as "connection closed",
			// any other status would be taken as an answer to their next
			// request.
			c.Set(fiber.HeaderConnection, "close")
			return c.SendStatus(fiber.StatusRequestTimeout)
		case errors.As(err, &fe):
			ne = fromFiber(fe)
		}
		rid := requestID(c)
		if ne == nil && store.IsUnavailable(err) {
			// The database is down or too slow: the client may retry, and
			// an outage must not log an ERROR per request.
			outage.note(err)
			ne = errUnavailable
		}
		if ne == nil {
			// Unknown errors may hold SQL or internals: log them, show nothing.
			log.Error("internal error", "request_id", rid, "method", c.Method(), "path", c.Path(), "err", err)
			ne = &nexus.Error{Code: nexus.CodeInternalError, Message: "an internal error occurred; it has been logged with the request id"}
		}
		status, ok := codeStatus[ne.Code]
		if !ok {
			status = 500
		}
		switch {
		case status == 401 && (ne.Code == nexus.CodeMissingCredentials || ne.Code == nexus.CodeInvalidSignature):
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="nexus"`)
		case status == 401:
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="nexus", error="invalid_token"`)
		case ne.Code == nexus.CodeInsufficientScope:
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="nexus", error="insufficient_scope", scope="`+ne.Scope+`"`)
		case status == fiber.StatusServiceUnavailable && len(c.Response().Header.Peek(fiber.HeaderRetryAfter)) == 0:
			// Every 503 is worth retrying, and says when.
			c.Set(fiber.HeaderRetryAfter, "1")
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Response().Header.SetCanonical(headerNoSniff, valueNoSniff)
		return c.Status(status).JSON(errorBody{Error: errorDetail{
			Type: errorType(status), Code: ne.Code, Message: ne.Message, Param: ne.Param, RequestID: rid,
		}})
	}
}
