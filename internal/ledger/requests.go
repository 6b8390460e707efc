package ledger

import (
	"context"
	"encoding/json"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// RequestStatus is where a withdrawal request is in its lifecycle (see
// requestSteps): pending → processing → completed; pending or processing →
// failed; pending → cancelled.
type RequestStatus string

const (
	RequestPending    RequestStatus = "pending"
	RequestProcessing RequestStatus = "processing"
	RequestCompleted  RequestStatus = "completed"
	RequestFailed     RequestStatus = "failed"
	RequestCancelled  RequestStatus = "cancelled"
)

// requestStep is one edge of the request lifecycle and what it does to the
// balance. A request's amount is reserved (available → pending) when it is
// created; every step but processing settles it: the amount leaves pending,
// back to available when the money did not go out (release), else for good.
type requestStep struct {
	from    []RequestStatus // the statuses the step leaves
	verb    string          // past participle for the invalid_state error
	event   string          // audit event
	settles bool            // the amount leaves pending
	release bool            // … back to available and out of the credential's daily total
	stamp   string          // timestamp column set with the status, if any
}

// requestSteps is the request lifecycle, by the status each step leads to.
var requestSteps = map[RequestStatus]requestStep{
	RequestProcessing: {from: []RequestStatus{RequestPending}, verb: "processed", event: "request.processing"},
	RequestCompleted: {from: []RequestStatus{RequestPending, RequestProcessing}, verb: "completed", event: "request.completed",
		settles: true, stamp: "completed_at"},
	RequestFailed: {from: []RequestStatus{RequestPending, RequestProcessing}, verb: "failed", event: "request.failed",
		settles: true, release: true, stamp: "failed_at"},
	RequestCancelled: {from: []RequestStatus{RequestPending}, verb: "cancelled", event: "request.cancelled",
		settles: true, release: true, stamp: "cancelled_at"},
}

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
	Status       RequestStatus     `bun:"status" json:"status"`
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
		sc := store.For(tx, t)
		a, err := store.Get[Address](ctx, sc, "address", p.AddressID)
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
		if err := reserveLimit(ctx, sc, credID, p.Currency, p.Amount, now); err != nil {
			return err
		}
		ok, err := s.move(ctx, sc, p.Currency, -p.Amount, p.Amount)
		if err != nil {
			return err
		}
		if !ok {
			return nexus.ParamError(nexus.CodeInsufficientFunds, "amount", "the available %s balance does not cover this amount", p.Currency)
		}
		if _, err := sc.Insert(r).Exec(ctx); err != nil {
			return err
		}
		return record(ctx, sc, "request.created", r.ID, map[string]any{"amount": r.Amount, "currency": r.Currency})
	})
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}

// requestMove drives a request to status to by its step in requestSteps,
// and applies the step's balance effect in the same transaction.
func (s *Service) requestMove(ctx context.Context, t nexus.Tenant, id string, to RequestStatus) (*Request, error) {
	step, ok := requestSteps[to]
	if !ok {
		panic("ledger: no request step leads to " + string(to))
	}
	var r *Request
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		sc := store.For(tx, t)
		c := store.Change{Kind: "request", ID: id, To: string(to), From: statuses(step.from...), Verb: step.verb,
			Event: step.event, Record: recordEvent}
		if step.stamp != "" {
			c.Set = map[string]any{step.stamp: store.Now()}
		}
		var err error
		if r, err = store.Transition[Request](ctx, sc, c); err != nil || !step.settles {
			return err
		}
		avail := int64(0)
		if step.release {
			// A failed or cancelled request no longer counts against
			// its credential's daily total.
			if err := releaseLimit(ctx, sc, r); err != nil {
				return err
			}
			avail = r.Amount
		}
		ok, err := s.move(ctx, sc, r.Currency, avail, -r.Amount)
		if err != nil {
			return err
		}
		if !ok {
			// The reservation made at creation is gone: a broken
			// invariant, never a caller's mistake.
			return errBrokenReservation
		}
		return nil
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
	return s.requestMove(ctx, t, id, RequestCancelled)
}

// ProcessRequest marks a pending request as being paid out.
func (s *Service) ProcessRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return s.requestMove(ctx, t, id, RequestProcessing)
}

// CompleteRequest marks a request paid out: it leaves pending for good.
func (s *Service) CompleteRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return s.requestMove(ctx, t, id, RequestCompleted)
}

// FailRequest marks a payout failed and returns its amount to available.
func (s *Service) FailRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return s.requestMove(ctx, t, id, RequestFailed)
}

// GetRequest returns one request.
func (s *Service) GetRequest(ctx context.Context, t nexus.Tenant, id string) (*Request, error) {
	return getView[Request](ctx, s.db, t, "request", id)
}

// RequestListParams filter the request list.
type RequestListParams struct {
	store.Page
	Status    RequestStatus `query:"status" validate:"omitempty,oneof=pending processing completed failed cancelled"`
	Currency  Currency      `query:"currency" validate:"omitempty,oneof=btc usdc usdt"`
	AddressID string        `query:"address_id" validate:"omitempty,max=64"`
}

// ListRequests returns one page of requests, newest first.
func (s *Service) ListRequests(ctx context.Context, t nexus.Tenant, p RequestListParams) ([]*Request, bool, error) {
	return listView[Request](ctx, s.db, t, p.Page, map[string]string{"status": string(p.Status), "currency": string(p.Currency), "address_id": p.AddressID})
}
