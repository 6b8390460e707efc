package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Token is a stored access or refresh token (digest only).
type Token struct {
	bun.BaseModel `bun:"table:oauth_tokens"`

	TokenHash   string            `bun:"token_hash,pk"`
	Kind        string            `bun:"kind"` // "at" or "rt"
	GrantID     string            `bun:"grant_id"`
	ClientID    string            `bun:"client_id"`
	PartnerID   string            `bun:"partner_id"`
	Environment nexus.Environment `bun:"environment"`
	Scopes      string            `bun:"scopes"`
	CodeHash    string            `bun:"code_hash"`
	CreatedAt   time.Time         `bun:"created_at"`
	ExpiresAt   time.Time         `bun:"expires_at"`
	UsedAt      *time.Time        `bun:"used_at"`
	RevokedAt   *time.Time        `bun:"revoked_at"`
}

// TokenResponse is the token endpoint's answer (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// ClientAuth is how a client presented itself at the token endpoint.
type ClientAuth struct {
	ID, Secret string
	Basic      bool // client_secret_basic
}

// AuthenticateClient applies RFC 6749 §2.3: confidential clients prove
// their secret (basic or post); public clients send client_id only. A
// disabled client, or one whose owner is not approved, still authenticates
// (it may revoke its tokens and learn they are inactive); the grants refuse
// it.
func (s *Service) AuthenticateClient(ctx context.Context, a ClientAuth) (*Client, error) {
	if a.ID == "" {
		return nil, oerr("invalid_client", "client authentication is required")
	}
	c, err := s.clientByID(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, oerr("invalid_client", "unknown client")
	}
	switch c.Type {
	case Confidential:
		if a.Secret == "" || c.SecretHash == nil {
			return nil, oerr("invalid_client", "client authentication failed")
		}
		d := credential.DigestHex(a.Secret)
		if subtle.ConstantTimeCompare([]byte(d), []byte(*c.SecretHash)) != 1 {
			return nil, oerr("invalid_client", "client authentication failed")
		}
	case Public:
		if a.Secret != "" {
			return nil, oerr("invalid_client", "public clients have no secret")
		}
	default:
		return nil, oerr("invalid_client", "client authentication failed")
	}
	return c, nil
}

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
	var reused bool
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		row := new(codeRow)
		err := tx.NewSelect().Model(row).Where("code_hash = ?", digest(code)).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return oerr("invalid_grant", "the code is invalid")
		}
		if err != nil {
			return err
		}
		now := store.Now()
		res, err := tx.NewUpdate().Model((*codeRow)(nil)).Set("used_at = ?", now).
			Where("code_hash = ?", row.CodeHash).Where("used_at IS NULL").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			reused = true
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
		g, err := activeGrant(ctx, tx, row.GrantID)
		if err != nil {
			return err
		}
		scopes, _ := nexus.ParseScopeString(row.Scopes)
		out, err = s.issue(ctx, tx, g, scopes, row.CodeHash)
		return err
	})
	if err == nil && reused {
		// RFC 6749 §4.1.2: a code used twice revokes the tokens it issued.
		if err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
			var grantID string
			if err := tx.NewSelect().Model((*codeRow)(nil)).Column("grant_id").Where("code_hash = ?", digest(code)).Scan(ctx, &grantID); err != nil {
				return err
			}
			_, err := s.revokeGrant(ctx, tx, grantID, func(q *bun.UpdateQuery) *bun.UpdateQuery { return q })
			return err
		}); err != nil {
			return nil, err
		}
		return nil, oerr("invalid_grant", "the code was already used; the tokens it issued are revoked")
	}
	return out, err
}

func pkceMatches(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

func activeGrant(ctx context.Context, tx bun.Tx, id string) (*Grant, error) {
	g := new(Grant)
	if err := tx.NewSelect().Model(g).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, err
	}
	if g.Status != "active" {
		return nil, oerr("invalid_grant", "the authorization was revoked")
	}
	return g, nil
}

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
	var reusedGrant string
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		t := new(Token)
		err := tx.NewSelect().Model(t).Where("token_hash = ?", credential.DigestHex(refresh)).Where("kind = 'rt'").Scan(ctx)
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
		res, err := tx.NewUpdate().Model((*Token)(nil)).Set("used_at = ?", now).
			Where("token_hash = ?", t.TokenHash).Where("used_at IS NULL").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			reusedGrant = t.GrantID
			return nil
		}
		if !now.Before(t.ExpiresAt) {
			return oerr("invalid_grant", "the refresh token has expired")
		}
		g, err := activeGrant(ctx, tx, t.GrantID)
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
	if err == nil && reusedGrant != "" {
		if err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
			_, err := s.revokeGrant(ctx, tx, reusedGrant, func(q *bun.UpdateQuery) *bun.UpdateQuery { return q })
			return err
		}); err != nil {
			return nil, err
		}
		return nil, oerr("invalid_grant", "the refresh token was already used; the authorization is revoked")
	}
	return out, err
}

// issue mints an access and a refresh token for grant g.
func (s *Service) issue(ctx context.Context, tx bun.Tx, g *Grant, scopes nexus.ScopeSet, codeHash string) (*TokenResponse, error) {
	env := string(g.Environment)
	at, err := credential.New(env, credential.KindAccessToken)
	if err != nil {
		return nil, err
	}
	rt, err := credential.New(env, credential.KindRefreshToken)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	rows := []*Token{
		{TokenHash: credential.DigestHex(at), Kind: "at", ExpiresAt: now.Add(AccessTokenTTL)},
		{TokenHash: credential.DigestHex(rt), Kind: "rt", ExpiresAt: now.Add(RefreshTokenTTL)},
	}
	for _, r := range rows {
		r.GrantID, r.ClientID, r.PartnerID, r.Environment = g.ID, g.ClientID, g.PartnerID, g.Environment
		r.Scopes, r.CodeHash, r.CreatedAt = scopes.String(), codeHash, now
	}
	if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(AccessTokenTTL.Seconds()),
		RefreshToken: rt, Scope: scopes.String()}, nil
}

// Revoke implements RFC 7009 for client c: revoking either token of a grant
// revokes the grant (its other tokens included). Unknown tokens and tokens
// of other clients are ignored, as the RFC asks.
func (s *Service) Revoke(ctx context.Context, c *Client, tok string) error {
	t := new(Token)
	err := s.db.NewSelect().Model(t).Where("token_hash = ?", credential.DigestHex(tok)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && t.ClientID != c.ID) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := s.revokeGrant(ctx, tx, t.GrantID, func(q *bun.UpdateQuery) *bun.UpdateQuery { return q })
		return err
	})
}

// Introspection is the RFC 7662 answer.
type Introspection struct {
	Active      bool   `json:"active"`
	Scope       string `json:"scope,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	TokenType   string `json:"token_type,omitempty"`
	Exp         int64  `json:"exp,omitempty"`
	Iat         int64  `json:"iat,omitempty"`
	Sub         string `json:"sub,omitempty"`
	Environment string `json:"environment,omitempty"`
	GrantID     string `json:"grant_id,omitempty"`
}

// Introspect answers for tok. ownerOnly restricts the answer to tokens of
// that client (platform services see every token).
func (s *Service) Introspect(ctx context.Context, tok, ownerOnly string) (*Introspection, error) {
	t := new(Token)
	err := s.db.NewSelect().Model(t).Where("token_hash = ?", credential.DigestHex(tok)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return &Introspection{}, nil
	}
	if err != nil {
		return nil, err
	}
	if ownerOnly != "" && t.ClientID != ownerOnly {
		return &Introspection{}, nil
	}
	now := time.Now()
	if t.RevokedAt != nil || !now.Before(t.ExpiresAt) || (t.Kind == "rt" && t.UsedAt != nil) {
		return &Introspection{}, nil
	}
	g := new(Grant)
	if err := s.db.NewSelect().Model(g).Where("id = ?", t.GrantID).Scan(ctx); err != nil || g.Status != "active" {
		return &Introspection{}, err
	}
	// A token of a blocked client is inactive while the cause lasts.
	if c, err := s.clientState(ctx, s.db.DB, t.ClientID); err != nil || c == nil || s.block(c) != notBlocked {
		return &Introspection{}, err
	}
	typ := "Bearer" // rfc7662#section-2.2: the RFC 6749 §5.1 token type
	if t.Kind == "rt" {
		typ = "refresh_token"
	}
	return &Introspection{Active: true, Scope: t.Scopes, ClientID: t.ClientID, TokenType: typ,
		Exp: t.ExpiresAt.Unix(), Iat: t.CreatedAt.Unix(), Sub: t.PartnerID, Environment: string(t.Environment), GrantID: t.GrantID}, nil
}
