package apikey

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Key policies (issue 16 §2): a partner's rules for the keys of one
// environment. Creating or rotating a key that breaks them is refused with
// policy_violation; tightening them never touches a live key, it lists the
// keys that break them instead.

// Policy is a tenant's key policy; the zero policy allows everything.
type Policy struct {
	bun.BaseModel `bun:"table:key_policies"`

	Object      string            `bun:"-" json:"object"`
	PartnerID   string            `bun:"partner_id,pk" json:"-"`
	Environment nexus.Environment `bun:"environment,pk" json:"environment"`
	// MaxKeyLifetimeDays: keys must expire within this many days of their
	// creation (nil: no bound).
	MaxKeyLifetimeDays *int `bun:"max_key_lifetime_days" json:"max_key_lifetime_days"`
	// RequireExpiry: every key needs an expires_at.
	RequireExpiry bool `bun:"require_expiry" json:"require_expiry"`
	// RequireAllowedIPsForSecretKeys: secret keys need allowed_ips.
	RequireAllowedIPsForSecretKeys bool `bun:"require_allowed_ips_for_secret_keys" json:"require_allowed_ips_for_secret_keys"`
	// MaxActiveKeys bounds the keys that are active, unexpired and not
	// rotated away (nil: no bound).
	MaxActiveKeys *int `bun:"max_active_keys" json:"max_active_keys"`
	// ExpiryWarningDays: a key this close to its expires_at is listed as
	// expiring and gets one api_key.expiring audit event (nil: none).
	ExpiryWarningDays *int       `bun:"expiry_warning_days" json:"expiry_warning_days"`
	UpdatedAt         *time.Time `bun:"updated_at" json:"updated_at"`
}

// PolicyParams is the body of PUT /v1/policy: the whole policy, an absent
// or null field being no rule.
type PolicyParams struct {
	MaxKeyLifetimeDays             *int  `json:"max_key_lifetime_days" validate:"omitempty,min=1,max=3650"`
	RequireExpiry                  *bool `json:"require_expiry"`
	RequireAllowedIPsForSecretKeys *bool `json:"require_allowed_ips_for_secret_keys"`
	MaxActiveKeys                  *int  `json:"max_active_keys" validate:"omitempty,min=1,max=10000"`
	ExpiryWarningDays              *int  `json:"expiry_warning_days" validate:"omitempty,min=1,max=365"`
}

// GetPolicy returns the tenant's key policy (the zero policy, with a null
// updated_at, when none was ever set).
func (s *Service) GetPolicy(ctx context.Context, t nexus.Tenant) (*Policy, error) {
	return loadPolicy(ctx, s.db.DB, t, false)
}

// lockPolicy is loadPolicy holding the row: PostgreSQL only, as SQLite
// write transactions already run one at a time.
func (s *Service) lockPolicy(ctx context.Context, tx bun.Tx, t nexus.Tenant) (*Policy, error) {
	return loadPolicy(ctx, tx, t, s.db.Dialect == store.Postgres)
}

// loadPolicy reads the tenant's policy; lock holds its row until the
// transaction ends (PostgreSQL; SQLite transactions are serial anyway), so
// that concurrent creations count the active keys one after the other.
func loadPolicy(ctx context.Context, idb bun.IDB, t nexus.Tenant, lock bool) (*Policy, error) {
	p := &Policy{Object: "key_policy", PartnerID: t.PartnerID, Environment: t.Environment}
	q := store.For(idb, t).Select(p)
	if lock {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	p.Object = "key_policy"
	return p, nil
}

// PutPolicy replaces the tenant's key policy. Live keys are left alone:
// those that break the new policy are listed by policy_violations=true.
func (s *Service) PutPolicy(ctx context.Context, t nexus.Tenant, in PolicyParams) (*Policy, error) {
	now := store.Now()
	p := &Policy{Object: "key_policy", PartnerID: t.PartnerID, Environment: t.Environment,
		MaxKeyLifetimeDays: in.MaxKeyLifetimeDays, MaxActiveKeys: in.MaxActiveKeys, ExpiryWarningDays: in.ExpiryWarningDays,
		RequireExpiry: in.RequireExpiry != nil && *in.RequireExpiry, UpdatedAt: &now,
		RequireAllowedIPsForSecretKeys: in.RequireAllowedIPsForSecretKeys != nil && *in.RequireAllowedIPsForSecretKeys}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := store.For(tx, t).Insert(p).On("CONFLICT (partner_id, environment) DO UPDATE").
			Set("max_key_lifetime_days = EXCLUDED.max_key_lifetime_days").
			Set("require_expiry = EXCLUDED.require_expiry").
			Set("require_allowed_ips_for_secret_keys = EXCLUDED.require_allowed_ips_for_secret_keys").
			Set("max_active_keys = EXCLUDED.max_active_keys").
			Set("expiry_warning_days = EXCLUDED.expiry_warning_days").
			Set("updated_at = EXCLUDED.updated_at").Exec(ctx)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, t, "key_policy.updated", "", map[string]any{"policy": p})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// maxExpiry is the latest expires_at the policy allows a key created at now.
func (p *Policy) maxExpiry(now time.Time) (time.Time, bool) {
	if p.MaxKeyLifetimeDays == nil {
		return time.Time{}, false
	}
	return now.AddDate(0, 0, *p.MaxKeyLifetimeDays), true
}

// checkKey refuses a new key (created or rotated at now) that breaks the
// policy, naming the parameter at fault.
func (p *Policy) checkKey(now time.Time, typ Type, expiresAt *time.Time, ips []string) error {
	limit, bounded := p.maxExpiry(now)
	if expiresAt == nil && (p.RequireExpiry || bounded) {
		return nexus.ParamError(nexus.CodePolicyViolation, "expires_at", "the key policy requires keys to expire%s: set expires_at", p.lifetimeText())
	}
	if bounded && expiresAt.After(limit) {
		return nexus.ParamError(nexus.CodePolicyViolation, "expires_at", "the key policy requires keys to expire%s: expires_at must be at most %s", p.lifetimeText(), limit.Format(time.RFC3339))
	}
	if p.RequireAllowedIPsForSecretKeys && typ == Secret && len(ips) == 0 {
		return nexus.ParamError(nexus.CodePolicyViolation, "allowed_ips", "the key policy requires secret keys to list allowed_ips")
	}
	return nil
}

func (p *Policy) lifetimeText() string {
	if p.MaxKeyLifetimeDays == nil {
		return ""
	}
	return fmt.Sprintf(" within %d days (max_key_lifetime_days)", *p.MaxKeyLifetimeDays)
}

// checkCount refuses one more active key when the policy's maximum is
// reached. It is not a parameter's fault, so the error names none.
func (p *Policy) checkCount(ctx context.Context, tx bun.Tx, t nexus.Tenant, now time.Time) error {
	if p.MaxActiveKeys == nil {
		return nil
	}
	n, err := liveKeys(store.For(tx, t), (*Row)(nil), now).Count(ctx)
	if err != nil {
		return err
	}
	if n >= int64(*p.MaxActiveKeys) {
		return nexus.Errorf(nexus.CodePolicyViolation, "the key policy allows at most %d active keys (max_active_keys) and %d are active: revoke one first", *p.MaxActiveKeys, n)
	}
	return nil
}

// liveKeys selects into model the tenant's keys that work and were not
// rotated away: the keys a policy counts and judges.
func liveKeys(s store.Scope, model any, now time.Time) *bun.SelectQuery {
	return s.Select(model).Where("?TableAlias.status = ?", Active).Where("?TableAlias.replaced_by IS NULL").
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("?TableAlias.expires_at IS NULL").WhereOr("?TableAlias.expires_at > ?", now)
		})
}

// violations names the rules each live key of the tenant breaks, by key
// id: "expires_at" (no expiry, or one beyond max_key_lifetime_days of its
// creation), "allowed_ips" (a secret key without them) and
// "max_active_keys" (the newest keys beyond the maximum).
func (p *Policy) violations(ctx context.Context, idb bun.IDB, t nexus.Tenant, now time.Time) (map[string][]string, error) {
	out := map[string][]string{}
	if p.MaxKeyLifetimeDays == nil && !p.RequireExpiry && !p.RequireAllowedIPsForSecretKeys && p.MaxActiveKeys == nil {
		return out, nil
	}
	var rows []Row
	if err := liveKeys(store.For(idb, t), &rows, now).OrderExpr("?TableAlias.id ASC").Scan(ctx); err != nil {
		return nil, err
	}
	for i := range rows {
		r := &rows[i]
		var v []string
		if r.ExpiresAt == nil && (p.RequireExpiry || p.MaxKeyLifetimeDays != nil) {
			v = append(v, "expires_at")
		} else if limit, ok := p.maxExpiry(r.CreatedAt); ok && r.ExpiresAt.After(limit) {
			v = append(v, "expires_at")
		}
		if p.RequireAllowedIPsForSecretKeys && r.Type == Secret && len(r.AllowedIPs) == 0 {
			v = append(v, "allowed_ips")
		}
		if p.MaxActiveKeys != nil && i >= *p.MaxActiveKeys {
			v = append(v, "max_active_keys")
		}
		if len(v) > 0 {
			out[r.ID] = v
		}
	}
	return out, nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d{1,5})W)?(?:(\d{1,5})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,8})M)?(?:(\d{1,9})S)?)?$`)

// parseISODuration reads an ISO 8601 duration of weeks, days, hours,
// minutes and seconds (P7D, PT12H, P1W2DT3H); years and months, whose
// length varies, are refused.
func parseISODuration(s string) (time.Duration, bool) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || s[len(s)-1] == 'T' {
		return 0, false
	}
	units := []time.Duration{7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, u := range units {
		if m[i+1] != "" {
			n, _ := strconv.ParseInt(m[i+1], 10, 64)
			d += time.Duration(n) * u
		}
	}
	return d, d > 0
}

// WarnExpiring writes one api_key.expiring audit event for every live key
// that is, at now, within its tenant's expiry_warning_days of expiring and
// was not warned of yet. Each warning is a conditional update of the key
// (expiry_warned_at IS NULL) in the event's transaction, so any number of
// instances running this together warn once. It returns how many keys it
// warned of.
func (s *Service) WarnExpiring(ctx context.Context, now time.Time) (int, error) {
	var pols []Policy
	if err := store.CrossTenant(s.db.DB, "expiry warnings: the job serves every tenant with a policy").Select(&pols).
		Where("?TableAlias.expiry_warning_days IS NOT NULL").Scan(ctx); err != nil {
		return 0, err
	}
	ctx = audit.WithOrigin(ctx, audit.Origin{Actor: "nexus"})
	warned := 0
	for _, p := range pols {
		t := nexus.Tenant{PartnerID: p.PartnerID, Environment: p.Environment}
		var rows []Row
		err := liveKeys(s.db.For(t), &rows, now).Where("?TableAlias.expiry_warned_at IS NULL").
			Where("?TableAlias.expires_at <= ?", now.AddDate(0, 0, *p.ExpiryWarningDays)).Scan(ctx)
		if err != nil {
			return warned, err
		}
		for _, r := range rows {
			did := false
			err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
				res, err := store.For(tx, t).Update((*Row)(nil)).Set("expiry_warned_at = ?", now).
					Where("?TableAlias.id = ?", r.ID).Where("?TableAlias.expiry_warned_at IS NULL").Exec(ctx)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					return nil // another instance warned first
				}
				did = true
				return audit.Record(ctx, tx, t, "api_key.expiring", r.ID, map[string]any{"expires_at": r.ExpiresAt, "expiry_warning_days": *p.ExpiryWarningDays})
			})
			if err != nil {
				return warned, err
			}
			if did {
				warned++
			}
		}
	}
	return warned, nil
}

// RunExpiryWarnings calls WarnExpiring every interval until ctx ends, with
// the time clock gives (time.Now in production; tests pass their own).
func (s *Service) RunExpiryWarnings(ctx context.Context, interval time.Duration, clock func() time.Time, onErr func(error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := s.WarnExpiring(ctx, clock().UTC()); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
