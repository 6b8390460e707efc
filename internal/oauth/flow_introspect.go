package oauth

import (
	"context"
	"database/sql"
	"errors"

	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

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
// that client (platform services see every token). An access token is
// answered from the verifier's cache when the service has one (see
// NewVerifier): revocation reaches it through the same invalidations.
func (s *Service) Introspect(ctx context.Context, tok, ownerOnly string) (*Introspection, error) {
	cred, err := credential.Parse(tok)
	if err != nil {
		return &Introspection{}, nil // not a token Nexus issued
	}
	if v := s.cache.Load(); v != nil && cred.Kind == credential.KindAccessToken {
		e, err := v.entry(ctx, tok, credential.Digest(tok))
		if err != nil || e == nil {
			return &Introspection{}, err
		}
		return s.introspection(e.token, e.refuse == nil, ownerOnly), nil
	}
	t := new(Token)
	err = store.CrossTenant(s.db.DB, "token hash at /oauth/introspect").Select(t).
		Where("token_hash = ?", credential.DigestHex(tok)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return &Introspection{}, nil
	}
	if err != nil {
		return nil, err
	}
	if t.RevokedAt != nil || (t.Kind == "rt" && t.UsedAt != nil) {
		return &Introspection{}, nil
	}
	g, err := grantIn(ctx, s.db.DB, t.tenant(), t.GrantID)
	if err != nil || g.Status != GrantActive {
		return &Introspection{}, err
	}
	// A token of a blocked client is inactive while the cause lasts.
	c, err := s.clientState(ctx, t.ClientID)
	if err != nil {
		return &Introspection{}, err
	}
	return s.introspection(t, c != nil && s.block(c) == notBlocked, ownerOnly), nil
}

// introspection is the answer for stored token t: usable says that neither
// it, its grant nor its client stops it now; expiry, the environments
// served and the asking client are checked here.
func (s *Service) introspection(t *Token, usable bool, ownerOnly string) *Introspection {
	if !usable || (ownerOnly != "" && t.ClientID != ownerOnly) || !s.now().Before(t.ExpiresAt) || !s.served[t.Environment] {
		return &Introspection{}
	}
	typ := "Bearer" // rfc7662#section-2.2: the RFC 6749 §5.1 token type
	if t.Kind == "rt" {
		typ = "refresh_token"
	}
	return &Introspection{Active: true, Scope: t.Scopes, ClientID: t.ClientID, TokenType: typ,
		Exp: t.ExpiresAt.Unix(), Iat: t.CreatedAt.Unix(), Sub: t.PartnerID, Environment: string(t.Environment), GrantID: t.GrantID}
}
