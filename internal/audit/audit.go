// Package audit records what happened to a tenant's objects. Lifecycle
// events are written in the same transaction as the change they describe, so
// there is never a change without its event nor an event without its change.
package audit

import (
	"context"
	"encoding/json"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Event is one audit row (CONTRACT §8).
type Event struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID           string            `bun:"id,pk"`
	PartnerID    string            `bun:"partner_id"`
	Environment  nexus.Environment `bun:"environment"`
	Type         string            `bun:"type"`
	ObjectID     string            `bun:"object_id"`
	CredentialID string            `bun:"credential_id"`
	Actor        string            `bun:"actor"`
	IP           string            `bun:"ip"`
	RequestID    string            `bun:"request_id"`
	Method       string            `bun:"method"`
	Path         string            `bun:"path"`
	Status       int               `bun:"status"`
	Data         string            `bun:"data"`
	CreatedAt    time.Time         `bun:"created_at"`
}

// Origin describes who caused a change: taken from the request's principal,
// or set by the operator CLI. The request value (nexus.Request) carries it.
type Origin = nexus.Origin

// WithOrigin returns a context carrying the request's origin.
func WithOrigin(ctx context.Context, o Origin) context.Context { return nexus.WithOrigin(ctx, o) }

// OriginFrom returns the origin in ctx; an empty one is the operator.
func OriginFrom(ctx context.Context) Origin {
	if r := nexus.RequestFrom(ctx); r != nil && r.Origin != (Origin{}) {
		return r.Origin
	}
	return Origin{Actor: "operator"}
}

// Record writes a lifecycle event with idb, which should be the transaction
// that makes the change.
func Record(ctx context.Context, idb bun.IDB, t nexus.Tenant, typ, objectID string, data map[string]any) error {
	o := OriginFrom(ctx)
	ev := &Event{
		ID:           nexus.NewID("evt"),
		PartnerID:    t.PartnerID,
		Environment:  t.Environment,
		Type:         typ,
		ObjectID:     objectID,
		CredentialID: o.CredentialID,
		Actor:        o.Actor,
		IP:           o.IP,
		RequestID:    o.RequestID,
		Data:         "{}",
		CreatedAt:    time.Now().UTC().Truncate(time.Microsecond),
	}
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		ev.Data = string(b)
	}
	_, err := store.For(idb, t).Insert(ev).Exec(ctx)
	return err
}

// MustJSON encodes an event's data for callers that build events in bulk;
// data holds only strings, numbers and booleans, which always encode.
func MustJSON(data map[string]any) string {
	b, err := json.Marshal(data)
	if err != nil {
		panic("audit: event data does not encode: " + err.Error())
	}
	return string(b)
}
