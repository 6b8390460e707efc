package oauth

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// PartnerLookup finds the consenting partner.
type PartnerLookup interface {
	Get(ctx context.Context, id string) (nexus.Partner, error)
}

// Verifier resolves nx_*_at_ access tokens to principals for the unified
// authenticator, caching them until they expire or are revoked.
type Verifier struct {
	svc      *Service
	partners PartnerLookup

	mu    sync.RWMutex
	gen   uint64
	cache map[[32]byte]*atEntry
}

type atEntry struct {
	p                 *nexus.Principal
	exp               time.Time
	revoked           bool
	grantID, clientID string
}

// NewVerifier returns an access-token verifier.
func NewVerifier(svc *Service, partners PartnerLookup) *Verifier {
	return &Verifier{svc: svc, partners: partners, cache: make(map[[32]byte]*atEntry)}
}

var (
	errUnknown = &nexus.Error{Code: nexus.CodeInvalidToken, Message: "invalid access token"}
	errRevoked = &nexus.Error{Code: nexus.CodeTokenRevoked, Message: "the access token has been revoked"}
	errExpired = &nexus.Error{Code: nexus.CodeTokenExpired, Message: "the access token has expired"}
)

// Verify implements auth.TokenVerifier.
func (v *Verifier) Verify(ctx context.Context, tok string) (*nexus.Principal, error) {
	return v.VerifyDigest(ctx, tok, credential.Digest(tok))
}

// VerifyDigest implements auth.DigestVerifier: d is credential.Digest(tok).
func (v *Verifier) VerifyDigest(ctx context.Context, tok string, d [32]byte) (*nexus.Principal, error) {
	v.mu.RLock()
	e, gen := v.cache[d], v.gen
	v.mu.RUnlock()
	if e == nil {
		var err error
		if e, err = v.load(ctx, tok); err != nil {
			return nil, err
		}
		if e == nil {
			return nil, errUnknown
		}
		v.mu.Lock()
		if v.gen == gen {
			if len(v.cache) > 100_000 {
				clear(v.cache)
			}
			v.cache[d] = e
		}
		v.mu.Unlock()
	}
	if e.revoked {
		return nil, errRevoked
	}
	if !time.Now().Before(e.exp) {
		return nil, errExpired
	}
	return e.p, nil
}

func (v *Verifier) load(ctx context.Context, tok string) (*atEntry, error) {
	t := new(Token)
	err := v.svc.db.NewSelect().Model(t).Where("token_hash = ?", credential.DigestHex(tok)).Where("kind = 'at'").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e := &atEntry{exp: t.ExpiresAt, revoked: t.RevokedAt != nil, grantID: t.GrantID, clientID: t.ClientID}
	if !e.revoked {
		g := new(Grant)
		if err := v.svc.db.NewSelect().Model(g).Where("id = ?", t.GrantID).Scan(ctx); err != nil {
			return nil, err
		}
		e.revoked = g.Status != "active"
	}
	p, err := v.partners.Get(ctx, t.PartnerID)
	if err != nil {
		return nil, err
	}
	scopes, _ := nexus.ParseScopeString(t.Scopes)
	e.p = &nexus.Principal{Partner: p, Environment: t.Environment, Scopes: scopes, CredentialID: t.GrantID,
		CredentialType: nexus.CredentialOAuthToken, Actor: t.ClientID}
	return e, nil
}

// Drop forgets cached tokens of a grant, a client or a partner.
func (v *Verifier) Drop(topic string) {
	kind, id, _ := strings.Cut(topic, ":")
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	for d, e := range v.cache {
		if kind == "all" || (kind == "cred" && (e.grantID == id || e.clientID == id)) || (kind == "partner" && e.p.Partner.ID == id) {
			delete(v.cache, d)
		}
	}
	if kind != "cred" && kind != "partner" {
		clear(v.cache)
	}
}
