package audit

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

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
	// StatusClass keeps access entries whose status is in this hundred
	// (2 for 2xx, 4 for 4xx, …); the dashboard's filter. Zero keeps all.
	StatusClass int `query:"-"`
	// Lifecycle keeps lifecycle events only, no access entries.
	Lifecycle bool `query:"-"`
}

// Reader lists a tenant's events.
type Reader struct{ db *store.DB }

// NewReader returns a reader on db.
func NewReader(db *store.DB) *Reader { return &Reader{db: db} }

// List returns one page of the tenant's events, newest first: lifecycle
// events from audit_events merged with access entries from access_chunks.
func (r *Reader) List(ctx context.Context, t nexus.Tenant, p ListParams) ([]*View, bool, error) {
	limit := p.Limit
	if limit == 0 {
		limit = store.DefaultLimit
	}
	if p.StartingAfter != "" {
		ok, err := r.exists(ctx, t, p.StartingAfter)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, nexus.ParamError(nexus.CodeParameterInvalid, "starting_after", "starting_after is not an object of this list")
		}
	}
	views, err := r.events(ctx, t, p, limit+1)
	if err != nil {
		return nil, false, err
	}
	if (p.Type == "" && !p.Lifecycle) || p.Type == AccessType {
		acc, err := r.access(ctx, t, p, limit+1)
		if err != nil {
			return nil, false, err
		}
		views = mergeNewestFirst(views, acc)
	}
	more := len(views) > limit
	if more {
		views = views[:limit]
	}
	return views, more, nil
}

// exists reports whether id is one of the tenant's events, of either kind.
func (r *Reader) exists(ctx context.Context, t nexus.Tenant, id string) (bool, error) {
	s := r.db.For(t)
	ok, err := s.Select((*Event)(nil)).Where("id = ?", id).Exists(ctx)
	if ok || err != nil {
		return ok, err
	}
	var chunks []AccessChunk
	if err := s.Select(&chunks).Where("id >= ?", id).Where("min_id <= ?", id).Scan(ctx); err != nil {
		return false, err
	}
	for i := range chunks {
		entries, err := ParseChunk(chunks[i].Data)
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			if e.ID == id {
				return true, nil
			}
		}
	}
	return false, nil
}

// events returns up to n lifecycle events (and access rows written before
// access_chunks existed) matching p, newest first.
func (r *Reader) events(ctx context.Context, t nexus.Tenant, p ListParams, n int) ([]*View, error) {
	var rows []Event
	q := r.db.For(t).Select(&rows)
	if p.Type != "" {
		q = q.Where("type = ?", p.Type)
	}
	if p.Lifecycle {
		q = q.Where("type <> ?", AccessType)
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
	if p.StartingAfter != "" {
		q = q.Where("id < ?", p.StartingAfter)
	}
	if err := q.OrderExpr("id DESC").Limit(int64(n)).Scan(ctx); err != nil {
		return nil, err
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
	return out, nil
}

// chunksPerRead is how many chunks access reads at a time.
const chunksPerRead = 8

// access returns up to n access entries matching p, newest first. Chunks
// are read newest (greatest id) first; it stops once n entries are newer
// than anything the next chunk can hold.
func (r *Reader) access(ctx context.Context, t nexus.Tenant, p ListParams, n int) ([]*View, error) {
	var out []*View
	sorted := func() { slices.SortFunc(out, func(a, b *View) int { return strings.Compare(b.ID, a.ID) }) }
	next := r.tenantChunks(t, p)
	if p.CredentialID != "" {
		next = r.credentialChunks(t, p)
	}
	for {
		chunks, err := next(ctx)
		if err != nil {
			return nil, err
		}
		for i := range chunks {
			c := &chunks[i]
			if len(out) >= n {
				if sorted(); out[n-1].ID > c.ID {
					return out[:n], nil
				}
			}
			entries, err := ParseChunk(c.Data)
			if err != nil {
				return nil, err
			}
			for j := range entries {
				e := &entries[j]
				if p.CredentialID != "" {
					if cred, _ := e.credential(c); cred != p.CredentialID {
						continue
					}
				}
				switch {
				case p.StartingAfter != "" && e.ID >= p.StartingAfter,
					p.CreatedAfter != nil && !e.Time().After(*p.CreatedAfter),
					p.CreatedBefore != nil && !e.Time().Before(*p.CreatedBefore),
					p.StatusClass != 0 && e.Status/100 != p.StatusClass:
					continue
				}
				out = append(out, e.view(c))
			}
		}
		if len(chunks) == 0 {
			break
		}
	}
	sorted()
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// chunkSource returns the next few chunks, by id descending; none at the
// end.
type chunkSource func(ctx context.Context) ([]AccessChunk, error)

// chunkQuery selects into chunks the tenant's chunks that may hold entries
// matching p.
func (r *Reader) chunkQuery(t nexus.Tenant, p ListParams, chunks *[]AccessChunk) *bun.SelectQuery {
	q := r.db.For(t).Select(chunks)
	if p.CreatedAfter != nil {
		q = q.Where("last_at > ?", p.CreatedAfter.UTC())
	}
	if p.CreatedBefore != nil {
		q = q.Where("first_at < ?", p.CreatedBefore.UTC())
	}
	if p.StartingAfter != "" {
		q = q.Where("min_id < ?", p.StartingAfter)
	}
	return q
}

// tenantChunks walks every chunk of the tenant.
func (r *Reader) tenantChunks(t nexus.Tenant, p ListParams) chunkSource {
	next, done := "", false // keyset over chunk ids
	return func(ctx context.Context) ([]AccessChunk, error) {
		if done {
			return nil, nil
		}
		var chunks []AccessChunk
		q := r.chunkQuery(t, p, &chunks)
		if next != "" {
			q = q.Where("id < ?", next)
		}
		if err := q.OrderExpr("id DESC").Limit(chunksPerRead).Scan(ctx); err != nil {
			return nil, err
		}
		if len(chunks) < chunksPerRead {
			done = true
		}
		if len(chunks) > 0 {
			next = chunks[len(chunks)-1].ID
		}
		return chunks, nil
	}
}

// credentialChunks walks the chunks of the buckets where p.CredentialID
// has entries, newest bucket first. Buckets hold disjoint ranges of ids, so
// that is still by id descending.
func (r *Reader) credentialChunks(t nexus.Tenant, p ListParams) chunkSource {
	var buckets []string
	belowBucket := "" // keyset over buckets
	if p.StartingAfter != "" {
		// Entries before the cursor are in its bucket or earlier ones.
		// Every entry of a chunk is of the chunk's bucket, except in chunks
		// from before the migration (one per credential and flush, filed
		// under their last entry's bucket), which span a second or so and
		// so reach at most into the next bucket.
		if suffix, ok := strings.CutPrefix(p.StartingAfter, "evt_"); ok && len(suffix) >= bucketDigits {
			belowBucket = nextBucket(nextBucket(bucketOf(suffix)))
		}
	}
	bucketsDone := false
	next := "" // keyset over the chunk ids of buckets[0]
	return func(ctx context.Context) ([]AccessChunk, error) {
		for {
			if len(buckets) == 0 {
				if bucketsDone {
					return nil, nil
				}
				q := r.db.For(t).Select((*AccessCredential)(nil)).Column("bucket").
					Where("credential_id = ?", p.CredentialID)
				if belowBucket != "" {
					q = q.Where("bucket < ?", belowBucket)
				}
				if err := q.OrderExpr("bucket DESC").Limit(chunksPerRead).Scan(ctx, &buckets); err != nil {
					return nil, err
				}
				if len(buckets) < chunksPerRead {
					bucketsDone = true
				}
				if len(buckets) == 0 {
					return nil, nil
				}
				belowBucket = buckets[len(buckets)-1]
				next = ""
			}
			var chunks []AccessChunk
			q := r.chunkQuery(t, p, &chunks).Where("bucket = ?", buckets[0])
			if next != "" {
				q = q.Where("id < ?", next)
			}
			if err := q.OrderExpr("id DESC").Limit(chunksPerRead).Scan(ctx); err != nil {
				return nil, err
			}
			if len(chunks) < chunksPerRead {
				buckets, next = buckets[1:], ""
			} else {
				next = chunks[len(chunks)-1].ID
			}
			if len(chunks) > 0 {
				return chunks, nil
			}
		}
	}
}

// mergeNewestFirst merges two lists sorted by id, descending.
func mergeNewestFirst(a, b []*View) []*View {
	out := make([]*View, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].ID > b[0].ID {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}
