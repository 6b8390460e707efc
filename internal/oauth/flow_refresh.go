package oauth

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Refresh implements the refresh_token grant (RFC 6749 §6) with rotation:
// every use returns a new refresh token; presenting a used one revokes the
// whole grant (RFC 9700 §4.14.2). scope may narrow, never widen.
func (s *Service) Refresh(ctx context.Context, c *Client, refresh, scope string) (*TokenResponse, error) {
	if b := s.block(c); b != notBlocked {
		return nil, clientError(b, c.Environment)
	}
	if refresh == "" {
		return nil, oerr("invalid_request", "refresh_token is required")
	}
	var out *TokenResponse
	var reused *Token
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		t := new(Token)
		err := store.CrossTenant(tx, "refresh token hash at the token endpoint").Select(t).
			Where("token_hash = ?", credential.DigestHex(refresh)).Where("kind = 'rt'").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return oerr("invalid_grant", "the refresh token is invalid")
		}
		if err != nil {
			return err
		}
		if t.ClientID != c.ID {
			return oerr("invalid_grant", "the refresh token was issued to another client")
		}
		now := store.Now()
		if t.RevokedAt != nil {
			return oerr("invalid_grant", "the refresh token was revoked")
		}
		res, err := store.For(tx, t.tenant()).Update((*Token)(nil)).Set("used_at = ?", now).
			Where("?TableAlias.token_hash = ?", t.TokenHash).Where("?TableAlias.used_at IS NULL").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			reused = t
			return nil
		}
		if !now.Before(t.ExpiresAt) {
			return oerr("invalid_grant", "the refresh token has expired")
		}
		g, err := activeGrant(grantIn(ctx, tx, t.tenant(), t.GrantID))
		if err != nil {
			return err
		}
		scopes, _ := nexus.ParseScopeString(t.Scopes)
		if raw := strings.TrimSpace(scope); raw != "" {
			asked, _, ok := nexus.ParseScopes(strings.Fields(raw))
			if !ok || !scopes.Contains(asked) {
				return oerr("invalid_scope", "a refresh may narrow the scope, never widen it")
			}
			scopes = asked
		}
		out, err = s.issue(ctx, tx, g, scopes, t.CodeHash)
		return err
	})
	if err == nil && reused != nil {
		return nil, s.revokeReused(ctx, reused.tenant(), reused.GrantID, "the refresh token was already used; the authorization is revoked")
	}
	return out, err
}
