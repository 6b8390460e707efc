package oauth

import (
	"context"
	"crypto/subtle"
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

// tenant is the tenant the token acts for.
func (t *Token) tenant() nexus.Tenant {
	return nexus.Tenant{PartnerID: t.PartnerID, Environment: t.Environment}
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

// activeGrant passes on a grant that was read (g, err) unless it was
// revoked.
func activeGrant(g *Grant, err error) (*Grant, error) {
	if err != nil {
		return nil, err
	}
	if g.Status != GrantActive {
		return nil, oerr("invalid_grant", "the authorization was revoked")
	}
	return g, nil
}

// grantIn reads grant id of tenant t.
func grantIn(ctx context.Context, idb bun.IDB, t nexus.Tenant, id string) (*Grant, error) {
	g := new(Grant)
	err := store.For(idb, t).Select(g).Where("?TableAlias.id = ?", id).Scan(ctx)
	return g, err
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
	if _, err := store.For(tx, g.tenant()).Insert(&rows).Exec(ctx); err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(AccessTokenTTL.Seconds()),
		RefreshToken: rt, Scope: scopes.String()}, nil
}
