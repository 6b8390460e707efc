package store

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// Page is a cursor page request (CONTRACT §5 lists). Ids are time-ordered,
// so "newest first" is "id descending" and the cursor is an id.
type Page struct {
	Limit         int    `query:"limit" validate:"min=1,max=100"`
	StartingAfter string `query:"starting_after" validate:"omitempty,max=64"`
}

// DefaultLimit is the page size when none is asked for.
const DefaultLimit = 20

// SetDefaults fills what the caller did not ask for; decoders call it before
// reading the query, so an explicit limit=0 is refused rather than defaulted.
func (p *Page) SetDefaults() { p.Limit = DefaultLimit }

// List runs q (a select already filtered by anything but the tenant) on T's
// table for one page of s's tenant. A cursor that is not one of the tenant's
// own rows is refused rather than silently paging someone else's order.
func List[T any](ctx context.Context, s Scope, p Page, q *bun.SelectQuery) ([]T, bool, error) {
	limit := p.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	var rows []T
	q = scoped(q.Model(&rows), s.t)
	if p.StartingAfter != "" {
		ok, err := s.Select((*T)(nil)).Where("?TableAlias.id = ?", p.StartingAfter).Exists(ctx)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, nexus.ParamError(nexus.CodeParameterInvalid, "starting_after", "starting_after is not an object of this list")
		}
		q = q.Where("?TableAlias.id < ?", p.StartingAfter)
	}
	if err := q.OrderExpr("?TableAlias.id DESC").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, false, err
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	return rows, more, nil
}
