package apikey

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Service issues and manages keys.
type Service struct{ db *store.DB }

// NewService returns a key service on db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// CreateParams is the body of POST /v1/api_keys.
type CreateParams struct {
	Type           Type       `json:"type" validate:"omitempty,oneof=secret publishable"`
	Name           string     `json:"name" validate:"max=200"`
	Scopes         []string   `json:"scopes" validate:"omitempty,max=20,dive,min=1,max=64"`
	ExpiresAt      *time.Time `json:"expires_at"`
	AllowedIPs     []string   `json:"allowed_ips" validate:"omitempty,max=100"`
	AllowedOrigins []string   `json:"allowed_origins" validate:"omitempty,max=100"`
	// Limits are money limits by currency (ledger.ParseLimits).
	Limits json.RawMessage `json:"limits"`
}

// UpdateParams is the body of PATCH /v1/api_keys/{id}: only the fields sent
// change.
type UpdateParams struct {
	Name *string `json:"name" validate:"omitempty,max=200"`
	// Limits replaces the key's money limits whole; {} removes them.
	Limits json.RawMessage `json:"limits"`
}

// RotateParams is the body of POST /v1/api_keys/{id}/rotate.
type RotateParams struct {
	// GracePeriodSeconds is how long the old key keeps working.
	// Optional. Default: 86400 (24 h). Range 0 to 604800 (7 days).
	GracePeriodSeconds *int `json:"grace_period_seconds" validate:"omitempty,min=0,max=604800"`
	// ExpiresAt is the successor's expiry. Optional. Default: the old
	// key's, capped by the key policy's max_key_lifetime_days (and that
	// bound when the old key never expires).
	ExpiresAt *time.Time `json:"expires_at"`
	// AllowedIPs are the successor's. Optional. Default: the old key's.
	AllowedIPs []string `json:"allowed_ips" validate:"omitempty,max=100"`
}

const defaultGrace = 24 * time.Hour

// Create issues a key for tenant t. The returned key carries Plain, the only
// time the secret exists outside the caller's hands.
func (s *Service) Create(ctx context.Context, t nexus.Tenant, p CreateParams) (*Key, error) {
	if p.Type == Publishable && t.Environment == nexus.Live && len(p.AllowedOrigins) == 0 {
		// A live publishable key lives in web pages: without origins any
		// page could spend its rate limit and read what its scopes allow.
		return nil, nexus.ParamError(nexus.CodeParameterMissing, "allowed_origins", "live publishable keys must list the allowed_origins of the pages that use them")
	}
	limits, err := ledger.ParseLimits(p.Limits)
	if err != nil {
		return nil, err
	}
	row, plain, err := newRow(t, p)
	if err != nil {
		return nil, err
	}
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		pol, err := s.lockPolicy(ctx, tx, t)
		if err != nil {
			return err
		}
		if err := pol.checkKey(row.CreatedAt, row.Type, row.ExpiresAt, row.AllowedIPs); err != nil {
			return err
		}
		if err := pol.checkCount(ctx, tx, t, row.CreatedAt); err != nil {
			return err
		}
		if _, err := store.For(tx, t).Insert(row).Exec(ctx); err != nil {
			return err
		}
		if len(limits) > 0 {
			if err := ledger.SaveLimits(ctx, tx, t, row.ID, limits); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, t, "api_key.created", row.ID, map[string]any{"type": row.Type, "scopes": row.ScopeSet().Names()})
	})
	if err != nil {
		return nil, err
	}
	k := row.View()
	if limits != nil {
		k.Limits = limits
	}
	k.Plain = plain
	return k, nil
}

// views renders rows with their money limits.
func views(ctx context.Context, idb bun.IDB, t nexus.Tenant, rows ...*Row) ([]*Key, error) {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	ls, err := ledger.LoadLimits(ctx, idb, t, ids...)
	if err != nil {
		return nil, err
	}
	pol, err := loadPolicy(ctx, idb, t, false)
	if err != nil {
		return nil, err
	}
	vs, err := pol.violations(ctx, idb, t, store.Now())
	if err != nil {
		return nil, err
	}
	out := make([]*Key, len(rows))
	for i, r := range rows {
		out[i] = r.View()
		out[i].Limits = ls[r.ID]
		if v := vs[r.ID]; v != nil {
			out[i].PolicyViolations = v
		}
	}
	return out, nil
}

func view(ctx context.Context, idb bun.IDB, t nexus.Tenant, row *Row) (*Key, error) {
	ks, err := views(ctx, idb, t, row)
	if err != nil {
		return nil, err
	}
	return ks[0], nil
}

// Update changes a key's name and money limits. Limits apply to the next
// withdrawal the key makes, on every instance: they are read in the
// transaction that reserves the amount, never from a cache.
func (s *Service) Update(ctx context.Context, t nexus.Tenant, id string, p UpdateParams) (*Key, error) {
	limits, err := ledger.ParseLimits(p.Limits)
	if err != nil {
		return nil, err
	}
	var k *Key
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := s.get(ctx, tx, t, id); err != nil {
			return err
		}
		data := map[string]any{}
		q := store.For(tx, t).Update((*Row)(nil)).Set("updated_at = ?", store.Now()).Where("?TableAlias.id = ?", id)
		if p.Name != nil {
			q = q.Set("name = ?", *p.Name)
			data["name"] = *p.Name
		}
		if _, err := q.Exec(ctx); err != nil {
			return err
		}
		if limits != nil {
			if err := ledger.SaveLimits(ctx, tx, t, id, limits); err != nil {
				return err
			}
			data["limits"] = limits
		}
		if err := audit.Record(ctx, tx, t, "api_key.updated", id, data); err != nil {
			return err
		}
		row, err := s.get(ctx, tx, t, id)
		if err != nil {
			return err
		}
		k, err = view(ctx, tx, t, row)
		return err
	})
	return k, err
}

func newRow(t nexus.Tenant, p CreateParams) (*Row, string, error) {
	if p.Type == "" {
		p.Type = Secret
	}
	scopes, err := checkScopes(p.Type, p.Scopes)
	if err != nil {
		return nil, "", err
	}
	now := store.Now()
	if p.ExpiresAt != nil {
		e := p.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !e.After(now) {
			return nil, "", nexus.ParamError(nexus.CodeParameterInvalid, "expires_at", "expires_at must be in the future")
		}
		p.ExpiresAt = &e
	}
	ips, err := checkIPs(p.AllowedIPs)
	if err != nil {
		return nil, "", err
	}
	origins, err := checkOrigins(p.AllowedOrigins)
	if err != nil {
		return nil, "", err
	}
	kind := credential.KindSecretKey
	if p.Type == Publishable {
		kind = credential.KindPublishableKey
	}
	plain, err := credential.New(string(t.Environment), kind)
	if err != nil {
		return nil, "", err
	}
	c, err := credential.Parse(plain)
	if err != nil {
		return nil, "", err
	}
	return &Row{
		ID: nexus.NewID("key"), PartnerID: t.PartnerID, Environment: t.Environment, Type: p.Type, Name: p.Name,
		Prefix: c.Prefix(), Last4: c.Last4(), KeyHash: credential.DigestHex(plain), Scopes: scopes.String(),
		Status: Active, AllowedIPs: ips, AllowedOrigins: origins, ExpiresAt: p.ExpiresAt, CreatedAt: now, UpdatedAt: now,
	}, plain, nil
}

// checkScopes applies CONTRACT §2: a secret key without scopes has
// admin:all; a publishable key holds read scopes only, read:balances unless
// others are asked for (what a page shows most, and nothing more).
func checkScopes(typ Type, names []string) (nexus.ScopeSet, error) {
	set, bad, ok := nexus.ParseScopes(names)
	if !ok {
		return 0, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "scopes", Message: fmt.Sprintf("unknown scope: %q", bad)}
	}
	if set&nexus.InternalScopes != 0 {
		return 0, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "scopes", Message: "internal scopes are for platform services only"}
	}
	switch typ {
	case Publishable:
		if len(names) == 0 {
			return nexus.ScopeSet(nexus.ScopeReadBalances), nil
		}
		if set&^nexus.ReadScopes != 0 {
			return 0, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "scopes", Message: "publishable keys may hold read scopes only"}
		}
	default:
		if len(names) == 0 {
			return nexus.ScopeSet(nexus.ScopeAdminAll), nil
		}
	}
	return set, nil
}

// checkIPs returns the allowlist as given (never nil), or the parameter
// error naming the first entry that is no IP address or CIDR range.
func checkIPs(ips []string) ([]string, error) {
	for i, s := range ips {
		if _, err := nexus.ParsePrefix(s); err != nil {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, fmt.Sprintf("allowed_ips[%d]", i), "not an IP address or CIDR range: %q", s)
		}
	}
	return append([]string{}, ips...), nil
}

// checkOrigins returns the origins as scheme://host[:port] (never nil), or
// the parameter error naming the first entry that is no origin.
func checkOrigins(origins []string) ([]string, error) {
	out := make([]string, len(origins))
	for i, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, fmt.Sprintf("allowed_origins[%d]", i), "not an origin (scheme://host[:port]): %q", o)
		}
		out[i] = u.Scheme + "://" + u.Host
	}
	return out, nil
}

// Get returns one of the tenant's keys.
func (s *Service) Get(ctx context.Context, t nexus.Tenant, id string) (*Key, error) {
	row, err := s.get(ctx, s.db.DB, t, id)
	if err != nil {
		return nil, err
	}
	return view(ctx, s.db.DB, t, row)
}

func (s *Service) get(ctx context.Context, idb bun.IDB, t nexus.Tenant, id string) (*Row, error) {
	return store.Get[Row](ctx, store.For(idb, t), "api_key", id)
}

// ListParams filter the key list.
type ListParams struct {
	store.Page
	Status Status `query:"status" validate:"omitempty,oneof=active suspended revoked expired"`
	// PolicyViolations "true" lists only the live keys that break the key
	// policy.
	PolicyViolations string `query:"policy_violations" validate:"omitempty,oneof=true false"`
	// ExpiringWithin (an ISO 8601 duration: P7D, PT12H) lists only the
	// live keys that expire within it.
	ExpiringWithin string `query:"expiring_within" validate:"omitempty,max=32"`
}

// List returns one page of the tenant's keys, newest first.
func (s *Service) List(ctx context.Context, t nexus.Tenant, p ListParams) ([]*Key, bool, error) {
	q := s.db.NewSelect()
	now := store.Now()
	switch p.Status {
	case Active:
		q = q.Where("status = 'active'").WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("expires_at IS NULL").WhereOr("expires_at > ?", now)
		})
	case Expired:
		q = q.Where("status = 'active'").Where("expires_at <= ?", now)
	case Suspended, Revoked:
		q = q.Where("status = ?", p.Status)
	}
	if p.ExpiringWithin != "" {
		d, ok := parseISODuration(p.ExpiringWithin)
		if !ok {
			return nil, false, nexus.ParamError(nexus.CodeParameterInvalid, "expiring_within", "expiring_within must be an ISO 8601 duration of weeks, days, hours, minutes or seconds, such as P7D or PT12H")
		}
		q = q.Where("status = ?", Active).Where("replaced_by IS NULL").Where("expires_at > ?", now).Where("expires_at <= ?", now.Add(d))
	}
	if p.PolicyViolations == "true" {
		pol, err := loadPolicy(ctx, s.db.DB, t, false)
		if err != nil {
			return nil, false, err
		}
		vs, err := pol.violations(ctx, s.db.DB, t, now)
		if err != nil {
			return nil, false, err
		}
		if len(vs) == 0 {
			q = q.Where("1 = 0")
		} else {
			ids := make([]string, 0, len(vs))
			for id := range vs {
				ids = append(ids, id)
			}
			q = q.Where("id IN (?)", bun.In(ids))
		}
	}
	rows, more, err := store.List[Row](ctx, s.db.For(t), p.Page, q)
	if err != nil {
		return nil, false, err
	}
	ptrs := make([]*Row, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	out, err := views(ctx, s.db.DB, t, ptrs...)
	return out, more, err
}

// transition moves a key from one of the statuses in from to status to
// (store.Transition), with its event and cache drop.
func (s *Service) transition(ctx context.Context, t nexus.Tenant, id string, to Status, event, verb string, from ...Status) (*Key, error) {
	var k *Key
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := store.Now()
		c := store.Change{
			// Kind names the key as GET does: a missing key's 404 is the
			// same whatever the route (and a foreign key's with it).
			Kind: "api_key", ID: id, To: string(to), Verb: verb,
			// The status the caller sees: an active key past its expiry is
			// expired.
			Status: func(row any) string { return string(row.(*Row).EffectiveStatus(now)) },
			Event:  event, Record: recordEvent,
			Topic: store.TopicKey(id), Publisher: s.db,
		}
		for _, f := range from {
			c.From = append(c.From, string(f))
		}
		if to == Suspended {
			// An expired key is no longer active: it cannot be suspended.
			c.Where = func(q *bun.UpdateQuery) *bun.UpdateQuery { return unexpired(q, now) }
		}
		row, err := store.Transition[Row](ctx, store.For(tx, t), c)
		if err != nil {
			return err
		}
		k, err = view(ctx, tx, t, row)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// unexpired narrows an update to keys that have not expired at now.
func unexpired(q *bun.UpdateQuery, now time.Time) *bun.UpdateQuery {
	return q.WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Where("?TableAlias.expires_at IS NULL").WhereOr("?TableAlias.expires_at > ?", now)
	})
}

// recordEvent is audit.Record without data, as store.Change.Record.
func recordEvent(ctx context.Context, idb bun.IDB, t nexus.Tenant, event, id string) error {
	return audit.Record(ctx, idb, t, event, id, nil)
}

// Suspend stops an active key until it is reactivated.
func (s *Service) Suspend(ctx context.Context, t nexus.Tenant, id string) (*Key, error) {
	return s.transition(ctx, t, id, Suspended, "api_key.suspended", "suspended", Active)
}

// Reactivate lifts a suspension.
func (s *Service) Reactivate(ctx context.Context, t nexus.Tenant, id string) (*Key, error) {
	return s.transition(ctx, t, id, Active, "api_key.reactivated", "reactivated", Suspended)
}

// Revoke ends a key for good.
func (s *Service) Revoke(ctx context.Context, t nexus.Tenant, id string) (*Key, error) {
	return s.transition(ctx, t, id, Revoked, "api_key.revoked", "revoked", Active, Suspended)
}

// Rotate issues a successor with the same type, name, scopes, allowlists
// and expires_at (a rotation is no way to outlive an expiry); the old key
// keeps working for the grace period and then expires.
func (s *Service) Rotate(ctx context.Context, t nexus.Tenant, id string, p RotateParams) (*Key, error) {
	grace := defaultGrace
	if p.GracePeriodSeconds != nil {
		grace = time.Duration(*p.GracePeriodSeconds) * time.Second
	}
	var newRowV *Row
	var k *Key
	var plain string
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		old, err := s.get(ctx, tx, t, id)
		if err != nil {
			return err
		}
		now := store.Now()
		if st := old.EffectiveStatus(now); st != Active {
			return nexus.InvalidState("api key", string(st), "rotated")
		}
		if old.ReplacedBy != nil {
			return nexus.Errorf(nexus.CodeInvalidState, "this api key was already rotated; rotate its successor %s", *old.ReplacedBy)
		}
		pol, err := s.lockPolicy(ctx, tx, t)
		if err != nil {
			return err
		}
		expires := old.ExpiresAt
		if p.ExpiresAt != nil {
			expires = p.ExpiresAt
		} else if limit, ok := pol.maxExpiry(now); ok && (expires == nil || expires.After(limit)) {
			// The successor keeps its predecessor's expiry, or the
			// policy's bound when that is sooner (or there is none).
			expires = &limit
		}
		ips := old.AllowedIPs
		if p.AllowedIPs != nil {
			ips = p.AllowedIPs
		}
		newRowV, plain, err = newRow(t, CreateParams{
			Type: old.Type, Name: old.Name, Scopes: old.ScopeSet().Names(),
			AllowedIPs: ips, AllowedOrigins: old.AllowedOrigins, ExpiresAt: expires,
		})
		if err != nil {
			return err
		}
		// A rotation replaces one live key by another: it is checked
		// like a creation, but never against max_active_keys.
		if err := pol.checkKey(now, newRowV.Type, newRowV.ExpiresAt, newRowV.AllowedIPs); err != nil {
			return err
		}
		if _, err := store.For(tx, t).Insert(newRowV).Exec(ctx); err != nil {
			return err
		}
		if err := ledger.CopyLimits(ctx, tx, t, id, newRowV.ID); err != nil {
			return err
		}
		until := now.Add(grace)
		if old.ExpiresAt != nil && old.ExpiresAt.Before(until) {
			until = *old.ExpiresAt
		}
		res, err := store.For(tx, t).Update((*Row)(nil)).
			Set("expires_at = ?", until).Set("replaced_by = ?", newRowV.ID).Set("updated_at = ?", now).
			Where("?TableAlias.id = ?", id).Where("?TableAlias.status = ?", Active).Where("?TableAlias.replaced_by IS NULL").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nexus.Errorf(nexus.CodeInvalidState, "the api key changed while rotating; retry")
		}
		if err := audit.Record(ctx, tx, t, "api_key.rotated", id, map[string]any{"replaced_by": newRowV.ID, "old_expires_at": until}); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, t, "api_key.created", newRowV.ID, map[string]any{"rotated_from": id}); err != nil {
			return err
		}
		if k, err = view(ctx, tx, t, newRowV); err != nil {
			return err
		}
		return s.db.Publish(ctx, tx, store.TopicKey(id))
	})
	if err != nil {
		return nil, err
	}
	k.Plain = plain
	return k, nil
}

// Lookup finds a key by the digest of its secret, across tenants: it is how
// the authenticator learns which tenant a request belongs to.
func (s *Service) Lookup(ctx context.Context, digestHex string) (*Row, error) {
	row := new(Row)
	err := store.CrossTenant(s.db.DB, "api key by secret digest: the digest names its tenant").Select(row).
		Where("?TableAlias.key_hash = ?", digestHex).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return row, err
}

// TouchLastUsed writes last_used_at for a batch of keys at once; the
// authenticator calls it off the request path at most once a minute per key.
func (s *Service) TouchLastUsed(ctx context.Context, at time.Time, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := store.CrossTenant(s.db.DB, "last-used batching: one write for the keys of many tenants").Update((*Row)(nil)).
		Set("last_used_at = ?", at).Where("?TableAlias.id IN (?)", bun.In(ids)).Exec(ctx)
	return err
}

// RevokeAllIn revokes, inside idb (the caller's transaction), every key of
// tenant t that still works or is suspended, and returns how many. Keys
// already expired keep their status: they no longer work. The caller
// announces the change (one partner topic rather than a topic per key).
func RevokeAllIn(ctx context.Context, idb bun.IDB, t nexus.Tenant, now time.Time) (int, error) {
	q := unexpired(store.For(idb, t).Update((*Row)(nil)), now)
	n, err := store.MoveAll(ctx, q, Revoked, []Status{Active, Suspended}, "", now)
	return int(n), err
}
