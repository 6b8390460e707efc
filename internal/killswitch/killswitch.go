// Package killswitch revokes every credential of one partner environment at
// once (POST /v1/credentials/revoke_all, `nexus admin partner lockdown`):
// API keys, service credentials, and the OAuth grants the partner gave, with
// their tokens. It is one transaction: either all of them stop working or
// none does.
package killswitch

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
)

// EventType is the audit event of a lockdown that revoked something.
const EventType = "credentials.revoked_all"

// Result is the answer: what the lockdown revoked. A second lockdown finds
// nothing left and says so with NothingRevoked.
type Result struct {
	Object             string            `json:"object"`
	PartnerID          string            `json:"partner_id"`
	Environment        nexus.Environment `json:"environment"`
	APIKeys            int               `json:"api_keys"`
	ServiceCredentials int               `json:"service_credentials"`
	OAuthGrants        int               `json:"oauth_grants"`
	OAuthTokens        int               `json:"oauth_tokens"`
	NothingRevoked     bool              `json:"nothing_revoked"`
	RevokedAt          *time.Time        `json:"revoked_at"` // nil when nothing was revoked
}

// Service revokes a tenant's credentials.
type Service struct{ db *store.DB }

// New returns the kill switch on db.
func New(db *store.DB) *Service { return &Service{db: db} }

// RevokeAll revokes every credential of tenant t: its API keys (the caller's
// own included, when it is one), its service credentials, and the OAuth
// grants its partner gave in t's environment with their unexpired tokens.
// The other environment is untouched. Every instance drops its cached
// verifications of the partner when the transaction commits (the partner
// topic, over PostgreSQL NOTIFY, the SQLite poll and Redis), so they refuse
// the credentials within a second. A lockdown that finds nothing to revoke
// changes nothing and writes no event.
func (s *Service) RevokeAll(ctx context.Context, t nexus.Tenant) (*Result, error) {
	r := &Result{Object: "credential_revocation", PartnerID: t.PartnerID, Environment: t.Environment}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := store.Now()
		var err error
		if r.APIKeys, err = apikey.RevokeAllIn(ctx, tx, t, now); err != nil {
			return err
		}
		if r.ServiceCredentials, err = servicetoken.RevokeAllIn(ctx, tx, t, now); err != nil {
			return err
		}
		if r.OAuthGrants, r.OAuthTokens, err = oauth.RevokeGrantsIn(ctx, tx, t, now); err != nil {
			return err
		}
		if r.APIKeys+r.ServiceCredentials+r.OAuthGrants+r.OAuthTokens == 0 {
			r.NothingRevoked = true
			return nil
		}
		r.RevokedAt = &now
		if err := audit.Record(ctx, tx, t, EventType, t.PartnerID, map[string]any{
			"environment": t.Environment, "api_keys": r.APIKeys, "service_credentials": r.ServiceCredentials,
			"oauth_grants": r.OAuthGrants, "oauth_tokens": r.OAuthTokens,
		}); err != nil {
			return err
		}
		// One topic for all of them: every cache drops the partner's
		// entries (the other environment's too, which reload once).
		return s.db.Publish(ctx, tx, store.TopicPartner(t.PartnerID))
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
