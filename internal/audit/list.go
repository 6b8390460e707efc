package audit

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// View is the API's audit_event object.
type View struct {
	Object       string            `json:"object"`
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	Environment  nexus.Environment `json:"environment"`
	ObjectID     string            `json:"object_id"`
	CredentialID string            `json:"credential_id"`
	Actor        string            `json:"actor"`
	IP           string            `json:"ip"`
	RequestID    string            `json:"request_id"`
	Method       string            `json:"method,omitempty"`
	Path         string            `json:"path,omitempty"`
	Status       int               `json:"status,omitempty"`
	Data         json.RawMessage   `json:"data,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
}

// ListParams filter GET /v1/audit_events.
type ListParams struct {
	store.Page
	Type          string     `query:"type" validate:"omitempty,max=64"`
	CredentialID  string     `query:"credential_id" validate:"omitempty,max=64"`
	CreatedAfter  *time.Time `query:"created_after"`
	CreatedBefore *time.Time `query:"created_before"`
}

// Reader lists a tenant's events.
type Reader struct{ db *store.DB }

// NewReader returns a reader on db.
func NewReader(db *store.DB) *Reader { return &Reader{db: db} }

// List returns one page of the tenant's events, newest first.
func (r *Reader) List(ctx context.Context, t nexus.Tenant, p ListParams) ([]*View, bool, error) {
	q := r.db.NewSelect()
	if p.Type != "" {
		q = q.Where("type = ?", p.Type)
	}
	if p.CredentialID != "" {
		q = q.Where("credential_id = ?", p.CredentialID)
	}
	if p.CreatedAfter != nil {
		q = q.Where("created_at > ?", p.CreatedAfter.UTC())
	}
	if p.CreatedBefore != nil {
		q = q.Where("created_at < ?", p.CreatedBefore.UTC())
	}
	rows, more, err := store.List[Event](ctx, r.db.DB, t, p.Page, q)
	if err != nil {
		return nil, false, err
	}
	out := make([]*View, len(rows))
	for i, e := range rows {
		v := &View{Object: "audit_event", ID: e.ID, Type: e.Type, Environment: e.Environment, ObjectID: e.ObjectID,
			CredentialID: e.CredentialID, Actor: e.Actor, IP: e.IP, RequestID: e.RequestID, Method: e.Method,
			Path: e.Path, Status: e.Status, CreatedAt: e.CreatedAt}
		if e.Data != "" && e.Data != "{}" {
			v.Data = json.RawMessage(e.Data)
		}
		out[i] = v
	}
	return out, more, nil
}
