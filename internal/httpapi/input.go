package httpapi

import (
	"bytes"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
)

// What no request may carry is refused here, before routing: a compressed
// body, and a NUL byte.
//
// No Nexus input may hold a NUL byte: PostgreSQL refuses it in text (the
// query fails, which was a 500), SQLite would store what PostgreSQL
// refuses, and C-string consumers truncate at it. The request line, the
// headers (cookies included) and the form bodies of the OAuth and sign-in
// pages are checked here; JSON bodies by decodeBody, which knows their
// fields; a JWT's header by the service-token verifier.

var (
	nul    = "\x00"
	pctNUL = []byte("%00")
)

// credentialHeaders carry a credential: a NUL there is a malformed
// credential (401), not a bad parameter.
var credentialHeaders = []string{fiber.HeaderAuthorization, "X-Api-Key", "X-Partner-Api-Key"}

// readsForm reports whether the route at path reads its body as a form
// (whatever its Content-Type says: POST /oauth/authorize parses any body).
func readsForm(path string) bool {
	return strings.HasPrefix(path, "/oauth/") || path == "/login" || path == "/logout"
}

var (
	headerContentEncoding = []byte(fiber.HeaderContentEncoding)
	errEncodedBody        = nexus.Errorf(nexus.CodeUnsupportedMediaType, "request bodies must not be compressed: send them without Content-Encoding")
)

// refusedInput returns why the request is refused before routing, nil when
// it is not. The common case is a few byte scans.
func (s *Server) refusedInput(c *fiber.Ctx) *nexus.Error {
	// Fiber inflates a body as its Content-Encoding says, without a bound:
	// 1 MiB of gzip is a gigabyte in memory.
	if len(c.Request().Body()) > 0 {
		if ce := c.Request().Header.PeekBytes(headerContentEncoding); len(ce) > 0 && !bytes.EqualFold(ce, []byte("identity")) {
			return errEncodedBody
		}
	}
	return s.findNUL(c)
}

// findNUL returns the error for the first NUL in the request, nil when it
// has none.
func (s *Server) findNUL(c *fiber.Ctx) *nexus.Error {
	h := &c.Request().Header
	uri := h.RequestURI()
	form := readsForm(c.Path())
	if !hasNUL(uri) && bytes.IndexByte(h.RawHeaders(), 0) < 0 && (!form || !hasNUL(c.Body())) {
		return nil
	}
	path, query, _ := bytes.Cut(uri, []byte("?"))
	if hasNUL(path) {
		name := s.pathParam(string(path))
		return nexus.ParamError(nexus.CodeParameterInvalid, name, "the path parameter %s must not contain NUL characters (%%00)", name)
	}
	if hasNUL(query) {
		// Parsed here: fasthttp gives no query at all for a raw NUL.
		q, _ := url.ParseQuery(string(query))
		if e := valuesNUL(q); e != nil {
			return e
		}
		return nexus.Errorf(nexus.CodeParameterInvalid, "the query string must not contain NUL characters (%%00)")
	}
	if e := headerNUL(c); e != nil {
		return e
	}
	if form {
		return formNUL(c)
	}
	return nil
}

// hasNUL reports a NUL byte, raw or percent-encoded.
func hasNUL(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 || bytes.Contains(b, pctNUL) }

// nulParam is the error for a query or form parameter holding a NUL. A
// name that holds one itself is shown percent-encoded.
func nulParam(name string) *nexus.Error {
	name = strings.ReplaceAll(name, nul, "%00")
	return nexus.ParamError(nexus.CodeParameterInvalid, name, "%s must not contain NUL characters (%%00)", name)
}

func headerNUL(c *fiber.Ctx) *nexus.Error {
	h := &c.Request().Header
	for _, name := range credentialHeaders {
		if bytes.IndexByte(h.Peek(name), 0) >= 0 {
			return nexus.Errorf(nexus.CodeMalformedCredentials, "the credential contains a NUL character")
		}
	}
	if e := firstNUL("cookie", h.VisitAllCookie); e != nil {
		return e
	}
	if e := firstNUL("header", h.VisitAll); e != nil {
		return e
	}
	if bytes.IndexByte(h.RawHeaders(), 0) >= 0 {
		// In a line fasthttp did not keep as a header.
		return nexus.Errorf(nexus.CodeParameterInvalid, "the request headers must not contain NUL characters")
	}
	return nil
}

// firstNUL returns the error for the first name and value visit gives that
// holds a NUL; what says what they are ("header", "cookie").
func firstNUL(what string, visit func(func(k, v []byte))) *nexus.Error {
	var e *nexus.Error
	visit(func(k, v []byte) {
		if e == nil && (bytes.IndexByte(k, 0) >= 0 || bytes.IndexByte(v, 0) >= 0) {
			name := strings.ReplaceAll(string(k), nul, "%00")
			e = nexus.ParamError(nexus.CodeParameterInvalid, name, "the %s %s must not contain NUL characters", what, name)
		}
	})
	return e
}

// formNUL finds the form field holding a NUL.
func formNUL(c *fiber.Ctx) *nexus.Error {
	var fields url.Values
	if mf, err := c.MultipartForm(); err == nil {
		fields = mf.Value
	} else {
		// Parsed as the OAuth handlers parse it (formValues).
		fields, _ = url.ParseQuery(string(c.Body()))
	}
	if e := valuesNUL(fields); e != nil {
		return e
	}
	// A raw NUL outside any field (in a part's headers, or in a file).
	if bytes.IndexByte(c.Body(), 0) >= 0 {
		return nexus.Errorf(nexus.CodeParameterInvalid, "the form must not contain NUL characters")
	}
	return nil
}

// valuesNUL finds the parameter holding a NUL, in the order of the names.
func valuesNUL(vs url.Values) *nexus.Error {
	names := make([]string, 0, len(vs))
	for k := range vs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if strings.Contains(k, nul) || slices.ContainsFunc(vs[k], func(v string) bool { return strings.Contains(v, nul) }) {
			return nulParam(k)
		}
	}
	return nil
}

// pathParam names the route parameter of path that holds a NUL ("id",
// "currency"), or "path" when no route's parameter does.
func (s *Server) pathParam(path string) string {
	segs := strings.Split(path, "/")
	for _, r := range s.Routes() {
		pat := strings.Split(r.Path, "/")
		if len(pat) != len(segs) {
			continue
		}
		name := ""
		for i, p := range pat {
			if strings.HasPrefix(p, ":") {
				if name == "" && hasNUL([]byte(segs[i])) {
					name = p[1:]
				}
			} else if p != segs[i] {
				name = ""
				break
			}
		}
		if name != "" {
			return name
		}
	}
	return "path"
}

// refuseInput answers e in the form the route's clients read: RFC 6749
// §5.2 on the OAuth endpoints for apps, an HTML page on the browser pages,
// the error envelope elsewhere.
func (s *Server) refuseInput(c *fiber.Ctx, e *nexus.Error) error {
	switch c.Path() {
	case "/oauth/token", "/oauth/revoke", "/oauth/introspect":
		return oauthError(c, &oauth.Error{Code: "invalid_request", Description: e.Message, Status: fiber.StatusBadRequest}, false)
	case "/oauth/authorize", "/login", "/logout":
		return s.render(c, fiber.StatusBadRequest, "error.html", pageData{Title: "Bad request", Error: "The request could not be accepted: " + e.Message + "."})
	}
	return e
}
