package oauth

import (
	"context"
	"database/sql"
	"errors"
	"time"

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
