// Package ledger keeps partners' money: balances, funding (deposits),
// payout addresses and withdrawal requests. Money moves only by conditional
// updates inside one transaction (DESIGN rule 4), so the rules of CONTRACT §5
// hold under any concurrency on PostgreSQL and SQLite alike:
//
//	available = completed funding − requests not failed or cancelled
//	pending   = requests pending or processing
//	available ≥ 0
package ledger

import (
	"context"
	"encoding/json"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Currency is a supported asset; amounts are integers in its minor units.
type Currency string

const (
	BTC  Currency = "btc"
	USDC Currency = "usdc"
	USDT Currency = "usdt"
)

// currencyOrder is Currencies as an array, whose length is a constant.
var currencyOrder = [...]Currency{BTC, USDC, USDT}

const numCurrencies = len(currencyOrder)

// Currencies lists every supported currency, in display order.
var Currencies = currencyOrder[:]

// Network is the network a currency moves on.
func (c Currency) Network() Network {
	if c == BTC {
		return Bitcoin
	}
	return Ethereum
}

// Valid reports whether c is supported.
func (c Currency) Valid() bool { return c == BTC || c == USDC || c == USDT }

// MaxAmount bounds every amount (10^15 minor units).
const MaxAmount = 1_000_000_000_000_000

// Service is the ledger.
type Service struct {
	db    *store.DB
	cache *balanceCache
}

// NewService returns a ledger on db. Its balances cache forgets a tenant
// right after any commit on db that changed the tenant's balances; the
// server wires the invalidation bus to Drop for other processes' changes.
func NewService(db *store.DB) *Service {
	s := &Service{db: db, cache: newBalanceCache(balanceMaxAge)}
	db.OnLocalPublish(s.Drop)
	return s
}

// Balance is one currency's balance.
type Balance struct {
	bun.BaseModel `bun:"table:balances"`

	Object      string            `bun:"-" json:"object"`
	PartnerID   string            `bun:"partner_id,pk" json:"-"`
	Environment nexus.Environment `bun:"environment,pk" json:"-"`
	Currency    Currency          `bun:"currency,pk" json:"currency"`
	Available   int64             `bun:"available" json:"available"`
	Pending     int64             `bun:"pending" json:"pending"`
	UpdatedAt   time.Time         `bun:"updated_at" json:"-"`
}

// Balances returns every currency's balance, zero included, for display:
// it may come from the cache (see balanceMaxAge), so nothing that decides
// whether money moves may use it. The values are the caller's own.
func (s *Service) Balances(ctx context.Context, t nexus.Tenant) ([]*Balance, error) {
	e, err := s.balances(ctx, t)
	if err != nil {
		return nil, err
	}
	// Two allocations for the whole answer: the hit path is the hot one.
	vals := make([]Balance, numCurrencies)
	out := make([]*Balance, numCurrencies)
	for i, c := range currencyOrder {
		vals[i] = Balance{Object: "balance", Currency: c, Available: e.amounts[i].available, Pending: e.amounts[i].pending}
		out[i] = &vals[i]
	}
	return out, nil
}

// Balance returns one currency's balance, as Balances does.
func (s *Service) Balance(ctx context.Context, t nexus.Tenant, c Currency) (*Balance, error) {
	for i, cc := range currencyOrder {
		if cc != c {
			continue
		}
		e, err := s.balances(ctx, t)
		if err != nil {
			return nil, err
		}
		return &Balance{Object: "balance", Currency: c, Available: e.amounts[i].available, Pending: e.amounts[i].pending}, nil
	}
	return nil, nexus.NotFound("currency", string(c))
}

// balances returns the tenant's cached balances, reading them on a miss
// (one read for all the requests that miss together).
func (s *Service) balances(ctx context.Context, t nexus.Tenant) (*balanceEntry, error) {
	if e := s.cache.get(t); e != nil {
		return e, nil
	}
	e, f, lead := s.cache.begin(t)
	switch {
	case e != nil:
		return e, nil
	case lead:
		var err error
		defer func() { s.cache.land(t, f, e, err) }()
		e, err = s.readBalances(ctx, t)
		return e, err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err == nil {
		return f.e, nil
	}
	// The leader's failure may be its own (its context ended): try once
	// more for this caller, without caching.
	return s.readBalances(ctx, t)
}

// readBalances reads the tenant's balances from the database.
func (s *Service) readBalances(ctx context.Context, t nexus.Tenant) (*balanceEntry, error) {
	e := &balanceEntry{loadedAt: s.cache.now()} // aged from before the read
	var rows []Balance
	if err := s.db.For(t).Select(&rows).Scan(ctx); err != nil {
		return nil, err
	}
	for _, r := range rows {
		for i, c := range currencyOrder {
			if r.Currency == c {
				e.amounts[i].available, e.amounts[i].pending = r.Available, r.Pending
			}
		}
	}
	return e, nil
}

// move applies deltas to a balance row of s's tenant in one conditional
// update, in s's transaction. A negative availDelta only applies while
// available covers it; it reports false when it did not (insufficient
// funds). The row is created on first credit. It announces
// store.TopicBalances in the same transaction, so that every balances cache
// forgets the tenant once it commits (a refused move rolls the announcement
// back with it). The announcement goes first: after the update it would
// lengthen the time the balance row stays locked, which is what bounds one
// tenant's write rate.
func (s *Service) move(ctx context.Context, sc store.Scope, c Currency, availDelta, pendDelta int64) (bool, error) {
	if err := s.db.Publish(ctx, sc.IDB(), store.TopicBalances(sc.Tenant())); err != nil {
		return false, err
	}
	now := store.Now()
	if availDelta > 0 && pendDelta == 0 {
		_, err := sc.Insert(&Balance{Currency: c, UpdatedAt: now}).On("CONFLICT DO NOTHING").Exec(ctx)
		if err != nil {
			return false, err
		}
	}
	q := sc.Update((*Balance)(nil)).
		Set("available = available + ?", availDelta).
		Set("pending = pending + ?", pendDelta).
		Set("updated_at = ?", now).
		Where("currency = ?", c)
	if availDelta < 0 {
		q = q.Where("available >= ?", -availDelta)
	}
	if pendDelta < 0 {
		q = q.Where("pending >= ?", -pendDelta)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// viewed is a ledger row that renders itself for callers.
type viewed[M any] interface {
	*M
	view() *M
}

// getView returns one of the tenant's rows, rendered.
func getView[M any, P viewed[M]](ctx context.Context, db *store.DB, t nexus.Tenant, kind, id string) (*M, error) {
	row, err := store.Get[M](ctx, db.For(t), kind, id)
	if err != nil {
		return nil, err
	}
	return P(row).view(), nil
}

// listView returns one page of the tenant's rows matching every non-empty
// filter (column = value), newest first, rendered.
func listView[M any, P viewed[M]](ctx context.Context, db *store.DB, t nexus.Tenant, page store.Page, filters map[string]string) ([]*M, bool, error) {
	q := db.NewSelect()
	for col, v := range filters {
		if v != "" {
			q = q.Where("? = ?", bun.Ident(col), v)
		}
	}
	rows, more, err := store.List[M](ctx, db.For(t), page, q)
	out := make([]*M, len(rows))
	for i := range rows {
		out[i] = P(&rows[i]).view()
	}
	return out, more, err
}

// settle runs a transition that moves no money (c: the status change, its
// timestamp and its audit event) in a transaction of its own.
func settle[M any, P viewed[M]](ctx context.Context, db *store.DB, t nexus.Tenant, c store.Change) (*M, error) {
	var row *M
	err := db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		row, err = store.Transition[M](ctx, store.For(tx, t), c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return P(row).view(), nil
}

// statuses turns a typed status list into the strings store.Change wants.
func statuses[S ~string](ss ...S) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func toJSON(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func record(ctx context.Context, sc store.Scope, typ, id string, data map[string]any) error {
	return audit.Record(ctx, sc.IDB(), sc.Tenant(), typ, id, data)
}

// recordEvent is audit.Record of an event without data, as store.Change
// records a transition's.
func recordEvent(ctx context.Context, idb bun.IDB, t nexus.Tenant, event, id string) error {
	return audit.Record(ctx, idb, t, event, id, nil)
}
