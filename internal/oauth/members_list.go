package oauth

import (
	"context"
)

// ListMembers returns a partner's members, oldest first.
func (s *Service) ListMembers(ctx context.Context, partnerID string) ([]*Member, error) {
	var ms []*Member
	if err := members(s.db.DB, partnerID).Select(&ms).OrderExpr("?TableAlias.created_at, ?TableAlias.id").Scan(ctx); err != nil {
		return nil, err
	}
	for _, m := range ms {
		m.Object = "member"
	}
	return ms, nil
}
