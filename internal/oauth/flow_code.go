package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// ExchangeCode implements the authorization_code grant (RFC 6749 §4.1.3,
// RFC 7636 §4.6). A code presented twice revokes what it issued.
func (s *Service) ExchangeCode(ctx context.Context, c *Client, code, redirectURI, verifier string) (*TokenResponse, error) {
	if b := s.block(c); b != notBlocked {
		return nil, clientError(b, c.Environment)
	}
	if code == "" {
		return nil, oerr("invalid_request", "code is required")
	}
	var out *TokenResponse
	var reused *codeRow
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		row := new(codeRow)
		err := store.CrossTenant(tx, "code hash at the token endpoint: the code names its tenant").Select(row).
			Where("code_hash = ?", digest(code)).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return oerr("invalid_grant", "the code is invalid")
		}
		if err != nil {
			return err
		}
		now := store.Now()
		res, err := store.For(tx, row.tenant()).Update((*codeRow)(nil)).Set("used_at = ?", now).
			Where("?TableAlias.code_hash = ?", row.CodeHash).Where("?TableAlias.used_at IS NULL").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			reused = row
			return nil
		}
		switch {
		case !now.Before(row.ExpiresAt):
			return oerr("invalid_grant", "the code has expired")
		case row.ClientID != c.ID:
			return oerr("invalid_grant", "the code was issued to another client")
		case row.RedirectURI != redirectURI:
			return oerr("invalid_grant", "redirect_uri does not match the authorization request")
		case row.CodeChallenge != "" && !pkceMatches(row.CodeChallenge, verifier):
			return oerr("invalid_grant", "code_verifier does not match the code_challenge")
		case row.CodeChallenge == "" && verifier != "":
			return oerr("invalid_grant", "no code_challenge was sent with the authorization request")
		}
		g, err := activeGrant(grantIn(ctx, tx, row.tenant(), row.GrantID))
		if err != nil {
			return err
		}
		scopes, _ := nexus.ParseScopeString(row.Scopes)
		out, err = s.issue(ctx, tx, g, scopes, row.CodeHash)
		return err
	})
	if err == nil && reused != nil {
		// RFC 6749 §4.1.2: a code used twice revokes the tokens it issued.
		return nil, s.revokeReused(ctx, reused.tenant(), reused.GrantID, "the code was already used; the tokens it issued are revoked")
	}
	return out, err
}

// revokeReused revokes the grant of a code or refresh token presented a
// second time (a sign that it leaked) and answers invalid_grant with msg.
func (s *Service) revokeReused(ctx context.Context, t nexus.Tenant, grantID, msg string) error {
	if err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		return s.revokeGrant(ctx, tx, t, grantID)
	}); err != nil {
		return err
	}
	return oerr("invalid_grant", msg)
}

func pkceMatches(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
