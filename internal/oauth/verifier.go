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
	p   *nexus.Principal
	exp time.Time
	// refuse is the answer while the token may not be used (revoked, or
	// its client blocked), nil otherwise.
	refuse                     *nexus.Error
	grantID, clientID, ownerID string
}

// NewVerifier returns an access-token verifier.
func NewVerifier(svc *Service, partners PartnerLookup) *Verifier {
	return &Verifier{svc: svc, partners: partners, cache: make(map[[32]byte]*atEntry)}
}

var (
	errUnknown = &nexus.Error{Code: nexus.CodeInvalidToken, Message: "invalid access token"}
	errRevoked = &nexus.Error{Code: nexus.CodeTokenRevoked, Message: "the access token has been revoked"}
	errExpired = &nexus.Error{Code: nexus.CodeTokenExpired, Message: "the access token has expired"}
	// A blocked client's tokens are invalid_token, not partner_not_approved:
	// the partner they act for is fine, the app holding them is not.
	errClientOff    = &nexus.Error{Code: nexus.CodeInvalidToken, Message: "the OAuth client this access token was issued to is disabled"}
	errOwnerBlocked = &nexus.Error{Code: nexus.CodeInvalidToken, Message: "the partner that registered this access token's OAuth client is not approved"}
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
	if e.refuse != nil {
		return nil, e.refuse
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
	e := &atEntry{exp: t.ExpiresAt, grantID: t.GrantID, clientID: t.ClientID}
	if t.RevokedAt != nil {
		e.refuse = errRevoked
	} else {
		g := new(Grant)
		if err := v.svc.db.NewSelect().Model(g).Where("id = ?", t.GrantID).Scan(ctx); err != nil {
			return nil, err
		}
		if g.Status != "active" {
			e.refuse = errRevoked
		}
	}
	c, err := v.svc.clientState(ctx, v.svc.db.DB, t.ClientID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		e.refuse = errRevoked
	} else {
		// The owner's status changes announce its partner topic.
		e.ownerID = c.PartnerID
		if e.refuse == nil {
			// An environment not served is the authenticator's answer
			// (environment_not_served), as for every credential.
			switch v.svc.block(c) {
			case clientOff:
				e.refuse = errClientOff
			case ownerNotApproved:
				e.refuse = errOwnerBlocked
			}
		}
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

// Drop forgets cached tokens of a grant, a client, or a partner (the one
// they act for or the one that registered their client).
func (v *Verifier) Drop(topic string) {
	kind, id, _ := strings.Cut(topic, ":")
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	for d, e := range v.cache {
		if kind == "all" || (kind == "cred" && (e.grantID == id || e.clientID == id)) ||
			(kind == "partner" && (e.p.Partner.ID == id || e.ownerID == id)) {
			delete(v.cache, d)
		}
	}
	if kind != "cred" && kind != "partner" {
		clear(v.cache)
	}
}
