package ledger

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// AddressStatus is whether an address can be paid to: active → archived.
type AddressStatus string

const (
	AddressActive   AddressStatus = "active"
	AddressArchived AddressStatus = "archived"
)

// Address is a payout address a partner registered.
type Address struct {
	bun.BaseModel `bun:"table:addresses"`

	Object      string            `bun:"-" json:"object"`
	ID          string            `bun:"id,pk" json:"id"`
	PartnerID   string            `bun:"partner_id" json:"-"`
	Environment nexus.Environment `bun:"environment" json:"environment"`
	Network     Network           `bun:"network" json:"network"`
	Address     string            `bun:"address" json:"address"`
	AddressKey  string            `bun:"address_key" json:"-"`
	Label       string            `bun:"label" json:"label"`
	Status      AddressStatus     `bun:"status" json:"status"`
	CreatedAt   time.Time         `bun:"created_at" json:"created_at"`
	UpdatedAt   time.Time         `bun:"updated_at" json:"-"`
	ArchivedAt  *time.Time        `bun:"archived_at" json:"archived_at"`
}

func (a *Address) view() *Address { a.Object = "address"; return a }

// CreateAddressParams is the body of POST /v1/addresses.
type CreateAddressParams struct {
	Network Network `json:"network" validate:"required,oneof=bitcoin ethereum"`
	Address string  `json:"address" validate:"required,max=100"`
	Label   string  `json:"label" validate:"max=200"`
}

// CreateAddress registers a payout address. The same address twice (per
// tenant and network, ethereum case-insensitively) is address_exists while
// the first is active.
func (s *Service) CreateAddress(ctx context.Context, t nexus.Tenant, p CreateAddressParams) (*Address, error) {
	key, err := normalizeAddress(p.Network, t.Environment, p.Address)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	a := &Address{ID: nexus.NewID("adr"), PartnerID: t.PartnerID, Environment: t.Environment, Network: p.Network,
		Address: p.Address, AddressKey: key, Label: p.Label, Status: AddressActive, CreatedAt: now, UpdatedAt: now}
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		sc := store.For(tx, t)
		if _, err := sc.Insert(a).Exec(ctx); err != nil {
			if store.IsUniqueViolation(err) {
				return nexus.ParamError(nexus.CodeAddressExists, "address", "this address is already registered on %s", p.Network)
			}
			return err
		}
		return record(ctx, sc, "address.created", a.ID, map[string]any{"network": a.Network})
	})
	if err != nil {
		return nil, err
	}
	return a.view(), nil
}

// ArchiveAddress retires an address; requests can no longer use it.
func (s *Service) ArchiveAddress(ctx context.Context, t nexus.Tenant, id string) (*Address, error) {
	return settle[Address](ctx, s.db, t, store.Change{Kind: "address", ID: id,
		To: string(AddressArchived), From: statuses(AddressActive), Verb: "archived",
		Set: map[string]any{"archived_at": store.Now()}, Event: "address.archived", Record: recordEvent})
}

// GetAddress returns one address.
func (s *Service) GetAddress(ctx context.Context, t nexus.Tenant, id string) (*Address, error) {
	return getView[Address](ctx, s.db, t, "address", id)
}

// AddressListParams filter the address list.
type AddressListParams struct {
	store.Page
	Status  AddressStatus `query:"status" validate:"omitempty,oneof=active archived"`
	Network Network       `query:"network" validate:"omitempty,oneof=bitcoin ethereum"`
}

// ListAddresses returns one page of addresses, newest first.
func (s *Service) ListAddresses(ctx context.Context, t nexus.Tenant, p AddressListParams) ([]*Address, bool, error) {
	return listView[Address](ctx, s.db, t, p.Page, map[string]string{"status": string(p.Status), "network": string(p.Network)})
}
