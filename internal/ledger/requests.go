package ledger

import (
	"context"
	"encoding/json"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Request statuses. pending → processing → completed; pending or
// processing → failed; pending → cancelled.
const (
	RequestPending    = "pending"
	RequestProcessing = "processing"
	RequestCompleted  = "completed"
	RequestFailed     = "failed"
	RequestCancelled  = "cancelled"
)

// Request is a withdrawal request.
type Request struct {
	bun.BaseModel `bun:"table:requests"`

	Object      string            `bun:"-" json:"object"`
	ID          string            `bun:"id,pk" json:"id"`
	PartnerID   string            `bun:"partner_id" json:"-"`
	Environment nexus.Environment `bun:"environment" json:"environment"`
	Type        string            `bun:"type" json:"type"`
	Amount      int64             `bun:"amount" json:"amount"`
	Currency    Currency          `bun:"currency" json:"currency"`
	AddressID   string            `bun:"address_id" json:"address_id"`
	// CredentialID made the request: its money limits count it.
	CredentialID string            `bun:"credential_id" json:"-"`
	Status       string            `bun:"status" json:"status"`
	MetadataRaw  string            `bun:"metadata" json:"-"`
	Metadata     map[string]string `bun:"-" json:"metadata"`
	CreatedAt    time.Time         `bun:"created_at" json:"created_at"`
	UpdatedAt    time.Time         `bun:"updated_at" json:"-"`
	CompletedAt  *time.Time        `bun:"completed_at" json:"completed_at"`
	FailedAt     *time.Time        `bun:"failed_at" json:"failed_at"`
	CancelledAt  *time.Time        `bun:"cancelled_at" json:"cancelled_at"`
}

func (r *Request) view() *Request {
	r.Object = "request"
	r.Metadata = map[string]string{}
	_ = json.Unmarshal([]byte(r.MetadataRaw), &r.Metadata)
	return r
}

// CreateRequestParams is the body of POST /v1/requests.
type CreateRequestParams struct {
	Type      string            `json:"type" validate:"required,oneof=withdrawal"`
	Amount    int64             `json:"amount" validate:"required,min=1,max=1000000000000000"`
	Currency  Currency          `json:"currency" validate:"required,oneof=btc usdc usdt"`
	AddressID string            `json:"address_id" validate:"required,max=64"`
	Metadata  map[string]string `json:"metadata" validate:"omitempty,max=20,dive,keys,min=1,max=40,endkeys,max=500"`
}

// CreateRequest creates a withdrawal, reserving its amount (available →
// pending) and counting it against the calling credential's money limits in
// the same transaction, or changes nothing and answers limit_exceeded or
// insufficient_funds.
func (s *Service) CreateRequest(ctx context.Context, t nexus.Tenant, p CreateRequestParams) (*Request, error) {
	now := store.Now()
	var credID string
	if pr := nexus.PrincipalFrom(ctx); pr != nil {
		credID = pr.CredentialID
	}
	r := &Request{ID: nexus.NewID("prq"), PartnerID: t.PartnerID, Environment: t.Environment, Type: p.Type,
		Amount: p.Amount, Currency: p.Currency, AddressID: p.AddressID, CredentialID: credID, Status: RequestPending,
		MetadataRaw: toJSON(p.Metadata), CreatedAt: now, UpdatedAt: now}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		a, err := get[Address](ctx, tx, t, "address", p.AddressID)
		if err != nil {
			if nexus.CodeOf(err) == nexus.CodeResourceMissing {
				return nexus.ParamError(nexus.CodeResourceMissing, "address_id", "no such address: '%s'", p.AddressID)
			}
			return err
		}
		if a.Status != AddressActive {
			return nexus.ParamError(nexus.CodeAddressNotUsable, "address_id", "the address is archived")
		}
		if a.Network != p.Currency.Network() {
			return nexus.ParamError(nexus.CodeAddressNotUsable, "address_id", "%s moves on %s, but the address is on %s", p.Currency, p.Currency.Network(), a.Network)
		}
		// The limit's counter row is taken before the balance row, and
		// released before it (requestMove), so the two never deadlock.
		if err := reserveLimit(ctx, tx, t, credID, p.Currency, p.Amount, now); err != nil {
			return err
		}
		ok, err := s.move(ctx, tx, t, p.Currency, -p.Amount, p.Amount)
		if err != nil {
			return err
		}
		if !ok {
			return nexus.ParamError(nexus.CodeInsufficientFunds, "amount", "the available %s balance does not cover this amount", p.Currency)
		}
		if _, err := tx.NewInsert().Model(r).Exec(ctx); err != nil {
			return err
		}
		return record(ctx, tx, t, "request.created", r.ID, map[string]any{"amount": r.Amount, "currency": r.Currency})
	})
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}

// requestMove drives a request to a new status and applies its balance
// effect in the same transaction.
func (s *Service) requestMove(ctx context.Context, t nexus.Tenant, id, to, verb, event string, availBack bool, stamp string, from ...string) (*Request, error) {
	var r *Request
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		set := map[string]any{}
		if stamp != "" {
			set[stamp] = store.Now()
		}
		var err error
		r, err = transition[Request](ctx, tx, t, "request", id, to, verb, set, from...)
		if err != nil {
			return err
		}
		if availBack {
			// A failed or cancelled request no longer counts against
			// its credential's daily total.
			if err := releaseLimit(ctx, tx, t, r); err != nil {
				return err
			}
		}
		if to != RequestProcessing {
			avail := int64(0)
			if availBack {
				avail = r.Amount
			}
			ok, err := s.move(ctx, tx, t, r.Currency, avail, -r.Amount)
			if err != nil {
				return err
			}
			if !ok {
				// The reservation made at creation is gone: a broken
				// invariant, never a caller's mistake.
				return errBrokenReservation
			}
		}
		return record(ctx, tx, t, event, id, nil)
	})
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}

var errBrokenReservation = errorString("ledger: pending balance does not cover a pending request")

type errorString string

func (e errorString) Error() string { return string(e) }

// CancelRequest cancels a pending request and releases its amount.
func (s *Service) CancelRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return s.requestMove(ctx, t, id, RequestCancelled, "cancelled", "request.cancelled", true, "cancelled_at", RequestPending)
}

// ProcessRequest marks a pending request as being paid out.
func (s *Service) ProcessRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return s.requestMove(ctx, t, id, RequestProcessing, "processed", "request.processing", false, "", RequestPending)
}

// CompleteRequest marks a request paid out: it leaves pending for good.
func (s *Service) CompleteRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return s.requestMove(ctx, t, id, RequestCompleted, "completed", "request.completed", false, "completed_at", RequestPending, RequestProcessing)
}

// FailRequest marks a payout failed and returns its amount to available.
func (s *Service) FailRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return s.requestMove(ctx, t, id, RequestFailed, "failed", "request.failed", true, "failed_at", RequestPending, RequestProcessing)
}

// GetRequest returns one request.
func (s *Service) GetRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return getView[Request](ctx, s.db.DB, t, "request", id)
}

// RequestListParams filter the request list.
type RequestListParams struct {
	store.Page
	Status    string   `query:"status" validate:"omitempty,oneof=pending processing completed failed cancelled"`
	Currency  Currency `query:"currency" validate:"omitempty,oneof=btc usdc usdt"`
	AddressID string   `query:"address_id" validate:"omitempty,max=64"`
}

// ListRequests returns one page of requests, newest first.
func (s *Service) ListRequests(ctx context.Context, t nexus.Tenant, p RequestListParams) ([]*Request, bool, error) {
	return listView[Request](ctx, s.db, t, p.Page, map[string]string{"status": p.Status, "currency": string(p.Currency), "address_id": p.AddressID})
}
