package httpapi

import (
	"bytes"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"

	"github.com/nexus-fintech/nexus/internal/auth"
)

// credentialHeader returns the first line of the credential header name and
// appends its further lines to more. (fasthttp's Peek sees the first line
// only; a second line could otherwise carry a credential nobody checks.)
// The values alias the request buffer, as Peek's do.
func credentialHeader(h *fasthttp.RequestHeader, name string, more *[]auth.Header) string {
	lines := h.PeekAll(name) // reused by the next PeekAll: read it now
	if len(lines) == 0 {
		return ""
	}
	for _, v := range lines[1:] {
		*more = append(*more, auth.Header{Name: name, Value: utils.UnsafeString(v)})
	}
	return utils.UnsafeString(lines[0])
}

// forwardedFor is every X-Forwarded-For line joined in order by commas, as
// RFC 9110 §5.3 combines field lines: a proxy that adds a line of its own
// (HAProxy does) puts the address it saw on the last one, and that is the
// one a client cannot forge.
func forwardedFor(h *fasthttp.RequestHeader) string {
	lines := h.PeekAll(fiber.HeaderXForwardedFor)
	switch len(lines) {
	case 0:
		return ""
	case 1:
		return utils.UnsafeString(lines[0])
	}
	return string(bytes.Join(lines, []byte(",")))
}
