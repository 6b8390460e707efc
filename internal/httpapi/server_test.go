package httpapi

import (
	"context"
	"testing"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// reqContext answers like the contexts of nexus.WithPrincipal and
// audit.WithOrigin, and like its parent for every other key.
func TestReqContext(t *testing.T) {
	type otherKey struct{}
	parent := context.WithValue(context.Background(), otherKey{}, "parent")
	p := &nexus.Principal{CredentialID: "key_1", Actor: "key_1"}
	o := audit.Origin{CredentialID: "key_1", Actor: "key_1", IP: "192.0.2.1", RequestID: "req_1"}
	var ctx context.Context = &reqContext{Context: parent, p: p, origin: o}
	ctx, cancel := context.WithCancel(ctx) // derived contexts ask their parent
	defer cancel()
	if got := nexus.PrincipalFrom(ctx); got != p {
		t.Errorf("PrincipalFrom = %v, want %v", got, p)
	}
	if got := audit.OriginFrom(ctx); got != o {
		t.Errorf("OriginFrom = %+v, want %+v", got, o)
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
