package httpapi

import (
	"context"
	"testing"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/dashboard"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// The dashboard is what serve mounts (checked here: this package does not
// import it).
var _ Mounter = (*dashboard.Dashboard)(nil)

// The request value permit attaches answers nexus.PrincipalFrom and
// audit.OriginFrom, and its parent for every other key.
func TestRequestContext(t *testing.T) {
	type otherKey struct{}
	parent := context.WithValue(context.Background(), otherKey{}, "parent")
	p := &nexus.Principal{CredentialID: "key_1", Actor: "key_1"}
	o := audit.Origin{CredentialID: "key_1", Actor: "key_1", IP: "192.0.2.1", RequestID: "req_1"}
	m := &reqMeta{Request: nexus.Request{ID: "req_1", Principal: p, Origin: o}}
	ctx, cancel := context.WithCancel(m.Attach(parent)) // derived contexts ask their parent
	defer cancel()
	if got := nexus.PrincipalFrom(ctx); got != p {
		t.Errorf("PrincipalFrom = %v, want %v", got, p)
	}
	if got := audit.OriginFrom(ctx); got != o {
		t.Errorf("OriginFrom = %+v, want %+v", got, o)
	}
	if got := nexus.RequestFrom(ctx); got != &m.Request {
		t.Errorf("RequestFrom = %p, want %p", got, &m.Request)
	}
	if got := ctx.Value(otherKey{}); got != "parent" {
		t.Errorf("other key = %v, want the parent's value", got)
	}
	if got := ctx.Value("missing"); got != nil {
		t.Errorf("missing key = %v, want nil", got)
	}
	if got := audit.OriginFrom(parent); got.Actor != "operator" {
		t.Errorf("OriginFrom(parent) = %+v, want the operator", got)
	}
}
