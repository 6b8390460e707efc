package ledger

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// FundingStatus is where a deposit is: pending → completed (credited) or
// pending → failed (nothing credited). One reported completed starts there.
type FundingStatus string

const (
	FundingPending   FundingStatus = "pending"
	FundingCompleted FundingStatus = "completed"
	FundingFailed    FundingStatus = "failed"
)

// Funding is a deposit into a partner's balance.
type Funding struct {
	bun.BaseModel `bun:"table:funding"`

	Object      string            `bun:"-" json:"object"`
	ID          string            `bun:"id,pk" json:"id"`
	PartnerID   string            `bun:"partner_id" json:"-"`
	Environment nexus.Environment `bun:"environment" json:"environment"`
	Amount      int64             `bun:"amount" json:"amount"`
	Currency    Currency          `bun:"currency" json:"currency"`
	Status      FundingStatus     `bun:"status" json:"status"`
	Reference   string            `bun:"reference" json:"reference"`
	CreatedAt   time.Time         `bun:"created_at" json:"created_at"`
	UpdatedAt   time.Time         `bun:"updated_at" json:"-"`
	CompletedAt *time.Time        `bun:"completed_at" json:"completed_at"`
	FailedAt    *time.Time        `bun:"failed_at" json:"failed_at"`
}

func (f *Funding) view() *Funding { f.Object = "funding"; return f }

// CreateFundingParams is a deposit as the test helper or an internal
// service reports it.
type CreateFundingParams struct {
	Amount    int64         `json:"amount" validate:"required,min=1,max=1000000000000000"`
	Currency  Currency      `json:"currency" validate:"required,oneof=btc usdc usdt"`
	Status    FundingStatus `json:"status" validate:"omitempty,oneof=pending completed"`
	Reference string        `json:"reference" validate:"max=200"`
}

// CreateFunding records a deposit; a completed one credits at once.
func (s *Service) CreateFunding(ctx context.Context, t nexus.Tenant, p CreateFundingParams) (*Funding, error) {
	if p.Status == "" {
		p.Status = FundingPending
	}
	now := store.Now()
	f := &Funding{ID: nexus.NewID("fnd"), PartnerID: t.PartnerID, Environment: t.Environment, Amount: p.Amount,
		Currency: p.Currency, Status: p.Status, Reference: p.Reference, CreatedAt: now, UpdatedAt: now}
	if p.Status == FundingCompleted {
		f.CompletedAt = &now
	}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		sc := store.For(tx, t)
		if _, err := sc.Insert(f).Exec(ctx); err != nil {
			return err
		}
		if err := record(ctx, sc, "funding.created", f.ID, map[string]any{"amount": f.Amount, "currency": f.Currency, "status": f.Status}); err != nil {
			return err
		}
		if p.Status == FundingCompleted {
			if _, err := s.move(ctx, sc, f.Currency, f.Amount, 0); err != nil {
				return err
			}
			return record(ctx, sc, "funding.completed", f.ID, nil)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f.view(), nil
}

// CompleteFunding credits a pending deposit.
func (s *Service) CompleteFunding(ctx context.Context, t nexus.Tenant, id string) (*Funding, error) {
	var f *Funding
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		sc := store.For(tx, t)
		var err error
		f, err = store.Transition[Funding](ctx, sc, store.Change{Kind: "funding", ID: id,
			To: string(FundingCompleted), From: statuses(FundingPending), Verb: "completed",
			Set: map[string]any{"completed_at": store.Now()}, Event: "funding.completed", Record: recordEvent})
		if err != nil {
			return err
		}
		_, err = s.move(ctx, sc, f.Currency, f.Amount, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	return f.view(), nil
}

// FailFunding marks a pending deposit failed; nothing was credited.
func (s *Service) FailFunding(ctx context.Context, t nexus.Tenant, id string) (*Funding, error) {
	return settle[Funding](ctx, s.db, t, store.Change{Kind: "funding", ID: id,
		To: string(FundingFailed), From: statuses(FundingPending), Verb: "failed",
		Set: map[string]any{"failed_at": store.Now()}, Event: "funding.failed", Record: recordEvent})
}

// GetFunding returns one deposit.
func (s *Service) GetFunding(ctx context.Context, t nexus.Tenant, id string) (*Funding, error) {
	return getView[Funding](ctx, s.db, t, "funding", id)
}

// FundingListParams filter the funding list.
type FundingListParams struct {
	store.Page
	Status   FundingStatus `query:"status" validate:"omitempty,oneof=pending completed failed"`
	Currency Currency      `query:"currency" validate:"omitempty,oneof=btc usdc usdt"`
}

// ListFunding returns one page of deposits, newest first.
func (s *Service) ListFunding(ctx context.Context, t nexus.Tenant, p FundingListParams) ([]*Funding, bool, error) {
	return listView[Funding](ctx, s.db, t, p.Page, map[string]string{"status": string(p.Status), "currency": string(p.Currency)})
}
