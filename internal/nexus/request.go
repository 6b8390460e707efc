package nexus

import (
	"context"
	"time"
)

// Request is what the HTTP layer knows of a request, for the packages that
// serve it: who made it, the audit origin of the changes it makes, its id
// and when it arrived. One value, attached to the request's context once,
// answers both PrincipalFrom and audit.OriginFrom.
type Request struct {
	ID    string
	Start time.Time
	// Principal is who the request authenticated as; nil for requests
	// that need no credential.
	Principal *Principal
	// Origin is what audit events of the request's changes record; the
	// zero Origin means none was set (audit.OriginFrom then answers the
	// operator).
	Origin Origin

	// ctx is the context Attach returns: part of the value, so attaching
	// costs no allocation of its own.
	ctx requestContext
}

// Origin describes who caused a change: taken from the request's principal,
// or set by the operator CLI. It lives here rather than in audit so that
// Request can carry it (audit imports nexus).
type Origin struct {
	CredentialID string
	Actor        string
	IP           string
	RequestID    string
}

type requestKey struct{}

type requestContext struct {
	context.Context
	r *Request
}

func (c *requestContext) Value(key any) any {
	if key == (requestKey{}) {
		return c.r
	}
	return c.Context.Value(key)
}

// Attach returns a context derived from parent that carries r. Attach a
// Request to one context only: a second call re-parents the first.
func (r *Request) Attach(parent context.Context) context.Context {
	r.ctx = requestContext{Context: parent, r: r}
	return &r.ctx
}

// RequestFrom returns the request ctx carries, or nil.
func RequestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// copyRequest returns a copy of ctx's request (or a new one) to change and attach:
// the request ctx carries is never changed, since other contexts share it.
func copyRequest(ctx context.Context) *Request {
	r := new(Request)
	if old := RequestFrom(ctx); old != nil {
		r.ID, r.Start, r.Principal, r.Origin = old.ID, old.Start, old.Principal, old.Origin
	}
	return r
}

// WithPrincipal returns a context carrying p, and whatever else ctx's
// request carries.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	r := copyRequest(ctx)
	r.Principal = p
	return r.Attach(ctx)
}

// WithOrigin returns a context carrying o, and whatever else ctx's request
// carries.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	r := copyRequest(ctx)
	r.Origin = o
	return r.Attach(ctx)
}

// PrincipalFrom returns the principal the request authenticated as, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	if r := RequestFrom(ctx); r != nil {
		return r.Principal
	}
	return nil
}
