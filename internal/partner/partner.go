// Package partner manages tenants: creation and the status lifecycle.
package partner

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Row is the stored partner.
type Row struct {
	bun.BaseModel `bun:"table:partners"`

	ID        string              `bun:"id,pk"`
	Name      string              `bun:"name"`
	Status    nexus.PartnerStatus `bun:"status"`
	RateLimit int                 `bun:"rate_limit"`
	CreatedAt time.Time           `bun:"created_at"`
	UpdatedAt time.Time           `bun:"updated_at"`
}

// Partner converts the row to the domain type.
func (r *Row) Partner() nexus.Partner {
	return nexus.Partner{ID: r.ID, Name: r.Name, Status: r.Status, RateLimit: r.RateLimit, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// Service manages partners.
type Service struct{ db *store.DB }

// NewService returns a partner service on db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// CreateParams are the inputs of Create.
type CreateParams struct {
	Name      string
	Status    nexus.PartnerStatus // Optional. Default: pending.
	RateLimit int                 // Optional. Default: nexus.DefaultRateLimit.
}

// Create makes a partner.
func (s *Service) Create(ctx context.Context, p CreateParams) (nexus.Partner, error) {
	if p.Name == "" {
		return nexus.Partner{}, nexus.ParamError(nexus.CodeParameterMissing, "name", "name is required")
	}
	if p.Status == "" {
		p.Status = nexus.PartnerPending
	}
	if !p.Status.Valid() {
		return nexus.Partner{}, nexus.ParamError(nexus.CodeParameterInvalid, "status", "status must be pending, approved, inactive or rejected")
	}
	if p.RateLimit < 0 {
		return nexus.Partner{}, nexus.ParamError(nexus.CodeParameterInvalid, "rate_limit", "rate_limit must be positive")
	}
	now := store.Now()
	row := &Row{ID: nexus.NewID("ptr"), Name: p.Name, Status: p.Status, RateLimit: p.RateLimit, CreatedAt: now, UpdatedAt: now}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}
		return recordBoth(ctx, tx, row.ID, "partner.created", map[string]any{"status": row.Status})
	})
	return row.Partner(), err
}

// Get returns a partner by id.
func (s *Service) Get(ctx context.Context, id string) (nexus.Partner, error) {
	row := new(Row)
	err := s.db.NewSelect().Model(row).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nexus.Partner{}, nexus.NotFound("partner", id)
	}
	return row.Partner(), err
}

// List returns every partner, newest first.
func (s *Service) List(ctx context.Context) ([]nexus.Partner, error) {
	var rows []Row
	if err := s.db.NewSelect().Model(&rows).Order("id DESC").Scan(ctx); err != nil {
		return nil, err
	}
	out := make([]nexus.Partner, len(rows))
	for i := range rows {
		out[i] = rows[i].Partner()
	}
	return out, nil
}

// SetStatus changes a partner's status and drops every cached verification
// of its credentials, on every instance.
func (s *Service) SetStatus(ctx context.Context, id string, status nexus.PartnerStatus) (nexus.Partner, error) {
	if !status.Valid() {
		return nexus.Partner{}, nexus.ParamError(nexus.CodeParameterInvalid, "status", "status must be pending, approved, inactive or rejected")
	}
	row := new(Row)
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*Row)(nil)).
			Set("status = ?", status).Set("updated_at = ?", store.Now()).
			Where("id = ?", id).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nexus.NotFound("partner", id)
		}
		if err := tx.NewSelect().Model(row).Where("id = ?", id).Scan(ctx); err != nil {
			return err
		}
		if err := recordBoth(ctx, tx, id, "partner.status_changed", map[string]any{"status": status}); err != nil {
			return err
		}
		return s.db.Publish(ctx, tx, store.TopicPartner(id))
	})
	return row.Partner(), err
}

// recordBoth writes a partner-level event into both environments' logs, since
// a partner change concerns both.
func recordBoth(ctx context.Context, tx bun.IDB, id, typ string, data map[string]any) error {
	for _, env := range []nexus.Environment{nexus.Live, nexus.Test} {
		if err := audit.Record(ctx, tx, nexus.Tenant{PartnerID: id, Environment: env}, typ, id, data); err != nil {
			return err
		}
	}
	return nil
}
