package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// Scope is a handle on one tenant's rows: every query it builds carries the
// tenant's partner_id and environment, and inserts are stamped with them.
// Capability packages read and change tenant tables only through a Scope
// (or, for the few lookups that must cross tenants, through CrossTenant), so
// forgetting a tenant condition is not something a handler can do. The test
// harness checks it on every query (TenancyCheck).
type Scope struct {
	idb bun.IDB
	t   nexus.Tenant
}

// For returns the tenant-scoped handle on idb (a *bun.DB or a transaction)
// for tenant t.
func For(idb bun.IDB, t nexus.Tenant) Scope { return Scope{idb: idb, t: t} }

// For is For(db.DB, t).
func (db *DB) For(t nexus.Tenant) Scope { return Scope{idb: db.DB, t: t} }

// Tenant is the tenant this handle serves.
func (s Scope) Tenant() nexus.Tenant { return s.t }

// IDB is the handle's connection or transaction, for queries that touch no
// tenant table (or go through CrossTenant).
func (s Scope) IDB() bun.IDB { return s.idb }

// scopedMark is in every query a Scope builds (in its partner_id condition,
// which bun keeps in count and exists queries where it drops comments, and
// as the comment of inserts); TenancyCheck accepts a tenant-table query only
// with it and both tenant conditions, or with crossTenantMark.
const (
	scopedMark      = "nexus:tenant"
	crossTenantMark = "nexus:cross-tenant"
)

// Select starts a select on model's table, restricted to the tenant.
func (s Scope) Select(model any) *bun.SelectQuery {
	return scoped(s.idb.NewSelect().Model(model), s.t)
}

// Update starts an update of model's table, restricted to the tenant.
func (s Scope) Update(model any) *bun.UpdateQuery {
	return scoped(s.idb.NewUpdate().Model(model), s.t)
}

// Delete starts a delete from model's table, restricted to the tenant.
func (s Scope) Delete(model any) *bun.DeleteQuery {
	return scoped(s.idb.NewDelete().Model(model), s.t)
}

// Insert starts an insert of model (a pointer to a row or to a slice of
// rows), stamping each row's partner_id and environment with the tenant's.
func (s Scope) Insert(model any) *bun.InsertQuery {
	s.stamp(model)
	return s.idb.NewInsert().Model(model).Comment(scopedMark)
}

// stamp sets the tenant columns of model's rows. A model without them is a
// programming error: it panics in every test that inserts one.
func (s Scope) stamp(model any) {
	v := reflect.Indirect(reflect.ValueOf(model))
	switch v.Kind() {
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			s.stampRow(reflect.Indirect(v.Index(i)))
		}
	case reflect.Struct:
		s.stampRow(v)
	default:
		panic(fmt.Sprintf("store: Insert of %T: want a pointer to a row or a slice of rows", model))
	}
}

func (s Scope) stampRow(v reflect.Value) {
	table := s.idb.Dialect().Tables().Get(v.Type())
	cols, ok := tenantTables[table.Name]
	if !ok {
		panic("store: " + table.Name + " is not a tenant table")
	}
	set := func(col, val string) {
		f := table.LookupField(col)
		if f == nil {
			panic("store: " + table.Name + " has no column " + col)
		}
		f.Value(v).SetString(val)
	}
	set("partner_id", s.t.PartnerID)
	if cols == partnerAndEnvironment {
		set("environment", string(s.t.Environment))
	}
}

// scoped adds the tenant conditions to a query on a tenant table.
func scoped[Q interface {
	Where(string, ...any) Q
	GetTableName() string
}](q Q, t nexus.Tenant) Q {
	q = q.Where("?TableAlias.partner_id = ? /* "+scopedMark+" */", t.PartnerID)
	if tenantTables[q.GetTableName()] == partnerOnly {
		return q
	}
	return q.Where("?TableAlias.environment = ?", string(t.Environment))
}

// CrossTenant is the one escape hatch from Scope, for the lookups that must
// find a row before its tenant is known: a secret's digest, a token's hash,
// an OAuth client id, a signing key's kid, and batched last-used stamps.
// why names which; grep for CrossTenant to review them all.
func CrossTenant(idb bun.IDB, why string) Cross {
	return Cross{idb: idb, mark: crossTenantMark + ": " + why}
}

// Cross builds queries marked as crossing tenants on purpose.
type Cross struct {
	idb  bun.IDB
	mark string
}

// Select starts a select marked as crossing tenants; model may be nil
// for a query that names its table with TableExpr.
func (c Cross) Select(model any) *bun.SelectQuery {
	q := c.idb.NewSelect()
	if model != nil {
		q = q.Model(model)
	}
	// In a condition too: bun drops the comment when it counts.
	return q.Comment(c.mark).Where("TRUE /* " + c.mark + " */")
}

// Update starts an update marked as crossing tenants; model may be nil.
func (c Cross) Update(model any) *bun.UpdateQuery {
	q := c.idb.NewUpdate()
	if model != nil {
		q = q.Model(model)
	}
	return q.Comment(c.mark)
}

// Delete starts a delete marked as crossing tenants; model may be nil.
func (c Cross) Delete(model any) *bun.DeleteQuery {
	q := c.idb.NewDelete()
	if model != nil {
		q = q.Model(model)
	}
	return q.Comment(c.mark)
}

// Insert starts an insert marked as crossing tenants (rows of several
// tenants in one statement).
func (c Cross) Insert(model any) *bun.InsertQuery {
	return c.idb.NewInsert().Model(model).Comment(c.mark)
}

// Raw runs hand-written SQL marked as crossing tenants.
func (c Cross) Raw(query string, args ...any) *bun.RawQuery {
	return c.idb.NewRaw("/* "+c.mark+" */ "+query, args...)
}

// Get returns the tenant's row of M with this id, or resource_missing naming
// kind.
func Get[M any](ctx context.Context, s Scope, kind, id string) (*M, error) {
	row := new(M)
	err := s.Select(row).Where("?TableAlias.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nexus.NotFound(kind, id)
	}
	if err != nil {
		return nil, err
	}
	return row, nil
}

// Change is a status transition of one row (see Transition).
type Change struct {
	// Kind names the object in errors ("api key", "request").
	Kind string
	// ID is the row's id.
	ID string
	// To is the new status; From the statuses it may leave.
	To   string
	From []string
	// Verb is the past participle in an invalid_state error ("revoked").
	Verb string
	// Set are further columns to set with the status.
	Set map[string]any
	// Where narrows the update further (a key that expired cannot be
	// suspended, say). Optional.
	Where func(*bun.UpdateQuery) *bun.UpdateQuery
	// Status reads the row's status as the caller should see it, for the
	// invalid_state message. Optional: the status column as stored.
	Status func(row any) string
	// Event is the audit event recorded with the change (through Record).
	// Optional.
	Event string
	// Record writes the audit event in the transaction. Required with Event.
	Record func(ctx context.Context, idb bun.IDB, t nexus.Tenant, event, id string) error
	// Topic is published after the change commits, to drop caches.
	// Optional. Publishing needs Publisher.
	Topic     string
	Publisher *DB
}

// Transition moves a row from one of c.From to c.To as one conditional
// update in s's transaction, reads it back, and tells a missing row (404)
// from one in another status (409 invalid_state); then records c.Event and
// publishes c.Topic. updated_at is set with the status.
func Transition[M any](ctx context.Context, s Scope, c Change) (*M, error) {
	q := s.Update((*M)(nil)).Where("?TableAlias.id = ?", c.ID)
	for col, v := range c.Set {
		q = q.Set("? = ?", bun.Ident(col), v)
	}
	if c.Where != nil {
		q = c.Where(q)
	}
	n, err := MoveAll(ctx, q, c.To, c.From, "", Now())
	if err != nil {
		return nil, err
	}
	row, err := Get[M](ctx, s, c.Kind, c.ID)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		var status string
		if c.Status != nil {
			status = c.Status(row)
		} else {
			status = storedStatus(s.idb, row)
		}
		return nil, nexus.InvalidState(c.Kind, status, c.Verb)
	}
	if c.Event != "" {
		if err := c.Record(ctx, s.idb, s.t, c.Event, c.ID); err != nil {
			return nil, err
		}
	}
	if c.Topic != "" {
		if err := c.Publisher.Publish(ctx, s.idb, c.Topic); err != nil {
			return nil, err
		}
	}
	return row, nil
}

// MoveAll is the batch form of Transition, for revoking many rows at once
// (a kill switch, a secret-scanning report): one statement moves every row
// q selects (an update from a Scope or CrossTenant, already narrowed) whose
// status is one of from to status to, setting updated_at and, when stamp
// names a column (revoked_at, deleted_at), that column to now. It returns
// how many rows moved; their events and topics are the caller's.
func MoveAll[S ~string](ctx context.Context, q *bun.UpdateQuery, to S, from []S, stamp string, now time.Time) (int64, error) {
	q = q.Set("status = ?", to).Set("updated_at = ?", now).Where("?TableAlias.status IN (?)", bun.In(from))
	if stamp != "" {
		q = q.Set("? = ?", bun.Ident(stamp), now)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// storedStatus reads the status column of a row through bun's schema.
func storedStatus(idb bun.IDB, row any) string {
	v := reflect.Indirect(reflect.ValueOf(row))
	table := idb.Dialect().Tables().Get(v.Type())
	if f := table.LookupField("status"); f != nil {
		return fmt.Sprint(f.Value(v).Interface())
	}
	return "unknown"
}
