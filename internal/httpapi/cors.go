package httpapi

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
)

// CORS for publishable keys in web pages (the Fetch standard's CORS
// protocol). A preflight carries no credential, so it cannot tell who asks:
// it lets any web origin send the request, and the answer to the request
// itself grants the origin only when the credential is a publishable key
// whose allowed_origins lists it (Authenticate has checked that). Secret
// keys, service tokens and OAuth tokens never get a grant: a browser keeps
// their answers from the page.
//
// No Access-Control-Allow-Credentials: the key travels in a header, and
// cookies must never reach the API from another site's page.

// Header names and values as fasthttp's normalization writes them, set
// without normalizing again.
var (
	headerVary          = []byte("Vary")
	headerAllowOrigin   = []byte("Access-Control-Allow-Origin")
	headerExposeHeaders = []byte("Access-Control-Expose-Headers")
	varyOrigin          = []byte("Origin")
	// What a page may read of an answer besides the CORS-safelisted headers.
	exposedHeaders = []byte("X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After")
)

const (
	corsAllowMethods = "GET, POST, PUT, DELETE"
	// Every header a client may authenticate or send a body with.
	corsAllowHeaders = "Authorization, Content-Type, Idempotency-Key, X-API-Key, X-Partner-API-Key"
	// How long a browser may reuse a preflight answer, in seconds
	// (Chromium caps it at 7200).
	corsMaxAge = "7200"
)

// preflight answers OPTIONS on any /v1 path: 204, and for a web origin the
// methods and headers the API accepts.
func preflight(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.SetCanonical(headerVary, varyOrigin)
	// "null" is the origin of sandboxed frames and local files, shared by
	// every such page: nothing to grant.
	if origin := c.Request().Header.Peek(fiber.HeaderOrigin); len(origin) > 0 && string(origin) != "null" {
		h.SetCanonical(headerAllowOrigin, origin)
		h.Set(fiber.HeaderAccessControlAllowMethods, corsAllowMethods)
		h.Set(fiber.HeaderAccessControlAllowHeaders, corsAllowHeaders)
		h.Set(fiber.HeaderAccessControlMaxAge, corsMaxAge)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// corsGrant lets the page of origin read this answer.
func corsGrant(c *fiber.Ctx, origin string) {
	h := &c.Response().Header
	h.SetCanonical(headerAllowOrigin, utils.UnsafeBytes(origin))
	h.SetCanonical(headerExposeHeaders, exposedHeaders)
}
