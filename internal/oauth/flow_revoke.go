package oauth

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Revoke implements RFC 7009 for client c: revoking either token of a grant
// revokes the grant (its other tokens included). Unknown tokens and tokens
// of other clients are ignored, as the RFC asks.
func (s *Service) Revoke(ctx context.Context, c *Client, tok string) error {
	t := new(Token)
	err := store.CrossTenant(s.db.DB, "token hash at /oauth/revoke").Select(t).
		Where("token_hash = ?", credential.DigestHex(tok)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && t.ClientID != c.ID) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		return s.revokeGrant(ctx, tx, t.tenant(), t.GrantID)
	})
}
