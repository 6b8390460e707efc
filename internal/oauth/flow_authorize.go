package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// AuthorizeRequest is a validated authorization request (RFC 6749 §4.1.1).
type AuthorizeRequest struct {
	Client      *Client
	RedirectURI string
	// RedirectGiven is the redirect_uri as sent ("" when omitted): the
	// token request must repeat it exactly (rfc6749#section-4.1.3).
	RedirectGiven string
	Scopes        nexus.ScopeSet
	State         string
	CodeChallenge string
}

// FatalError is an authorization error that must not redirect: the client
// or the redirect URI cannot be trusted (RFC 6749 §4.1.2.1).
type FatalError struct{ Description string }

func (e *FatalError) Error() string { return e.Description }

// ValidateAuthorize checks the query of /oauth/authorize. A *FatalError is
// shown to the user; an *Error is sent back to the (verified) redirect URI.
func (s *Service) ValidateAuthorize(ctx context.Context, q url.Values) (*AuthorizeRequest, error) {
	c, err := s.clientByID(ctx, q.Get("client_id"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, &FatalError{"The application is unknown (client_id is missing or not registered)."}
	}
	// A blocked client gets no consent: its redirect URI is not trusted
	// any more either.
	if b := s.block(c); b != notBlocked {
		return nil, clientPage(b, c.Environment)
	}
	uris := c.URIs()
	redirect := q.Get("redirect_uri")
	if redirect == "" && len(uris) == 1 {
		redirect = uris[0]
	}
	// Exact string comparison (RFC 9700 §4.1.3): no prefix, case or
	// normalisation games.
	if !slices.Contains(uris, redirect) {
		return nil, &FatalError{"The redirect URI is not registered for this application."}
	}
	r := &AuthorizeRequest{Client: c, RedirectURI: redirect, RedirectGiven: q.Get("redirect_uri"), State: q.Get("state")}
	if q.Get("response_type") != "code" {
		return r, oerr("unsupported_response_type", "response_type must be code")
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && c.Type == Public:
		return r, oerr("invalid_request", "public clients must use PKCE (code_challenge with S256)")
	case challenge != "" && method != "S256":
		return r, oerr("invalid_request", "code_challenge_method must be S256")
	case challenge != "" && !isS256(challenge):
		// Anything else could never match a verifier: the code would be
		// issued only to fail at the token endpoint.
		return r, oerr("invalid_request", "code_challenge must be an S256 challenge: BASE64URL(SHA-256(code_verifier)), 43 characters")
	}
	r.CodeChallenge = challenge
	r.Scopes = c.ScopeSet()
	if raw := strings.TrimSpace(q.Get("scope")); raw != "" {
		asked, _, ok := nexus.ParseScopes(strings.Fields(raw))
		if !ok || !c.ScopeSet().Contains(asked) || asked&^nexus.PartnerScopes != 0 {
			return r, oerr("invalid_scope", "the requested scope is unknown or exceeds what the application may ask for")
		}
		r.Scopes = asked
	}
	return r, nil
}

// isS256 reports whether challenge has the shape of BASE64URL(SHA-256(
// verifier)) (RFC 7636 §4.2): 32 bytes in unpadded base64url, 43
// characters.
func isS256(challenge string) bool {
	// The length first: the decoder skips newlines.
	if len(challenge) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(challenge)
	return err == nil && len(b) == sha256.Size
}

// Approve records a member's consent and returns a single-use code bound
// to the client, the redirect URI and the PKCE challenge.
func (s *Service) Approve(ctx context.Context, sess *Session, r *AuthorizeRequest, partnerStatus nexus.PartnerStatus) (string, error) {
	if !s.served[r.Client.Environment] {
		return "", oerr("access_denied", "this deployment does not serve the "+string(r.Client.Environment)+" environment")
	}
	if !partnerStatus.Allows(r.Client.Environment) {
		return "", oerr("access_denied", "your organisation cannot use the "+string(r.Client.Environment)+" environment")
	}
	now := store.Now()
	t := nexus.Tenant{PartnerID: sess.PartnerID, Environment: r.Client.Environment}
	g := &Grant{ID: nexus.NewID("grt"), PartnerID: t.PartnerID, Environment: t.Environment, ClientID: r.Client.ID,
		MemberID: sess.MemberID, Scopes: r.Scopes.String(), Status: "active", CreatedAt: now, UpdatedAt: now}
	code := randomToken()
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := store.For(tx, t).Insert(g).Exec(ctx); err != nil {
			return err
		}
		if _, err := store.For(tx, t).Insert(&codeRow{CodeHash: digest(code), ClientID: r.Client.ID, GrantID: g.ID,
			RedirectURI: r.RedirectGiven, CodeChallenge: r.CodeChallenge, Scopes: g.Scopes,
			CreatedAt: now, ExpiresAt: now.Add(CodeTTL)}).Exec(ctx); err != nil {
			return err
		}
		ctx = audit.WithOrigin(ctx, audit.Origin{Actor: sess.MemberID})
		return audit.Record(ctx, tx, t, "oauth_grant.created", g.ID, map[string]any{"client_id": r.Client.ID, "scopes": r.Scopes.Names()})
	})
	return code, err
}

type codeRow struct {
	bun.BaseModel `bun:"table:oauth_codes"`

	CodeHash      string            `bun:"code_hash,pk"`
	ClientID      string            `bun:"client_id"`
	GrantID       string            `bun:"grant_id"`
	RedirectURI   string            `bun:"redirect_uri"`
	CodeChallenge string            `bun:"code_challenge"`
	Scopes        string            `bun:"scopes"`
	CreatedAt     time.Time         `bun:"created_at"`
	ExpiresAt     time.Time         `bun:"expires_at"`
	UsedAt        *time.Time        `bun:"used_at"`
	PartnerID     string            `bun:"partner_id"`
	Environment   nexus.Environment `bun:"environment"`
}

// tenant is its grant's.
func (c *codeRow) tenant() nexus.Tenant {
	return nexus.Tenant{PartnerID: c.PartnerID, Environment: c.Environment}
}
