package oauth

import (
	"context"
)

// ListMembers returns a partner's members, oldest first.
func (s *Service) ListMembers(ctx context.Context, partnerID string) ([]*Member, error) {
	var ms []*Member
	if err := s.db.NewSelect().Model(&ms).Where("partner_id = ?", partnerID).OrderExpr("created_at, id").Scan(ctx); err != nil {
		return nil, err
	}
	for _, m := range ms {
		m.Object = "member"
	}
	return ms, nil
}
