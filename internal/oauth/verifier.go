package oauth

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"

	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// PartnerLookup finds the consenting partner.
type PartnerLookup interface {
	Get(ctx context.Context, id string) (nexus.Partner, error)
}

// Verifier resolves nx_*_at_ access tokens to principals for the unified
// authenticator, caching them until they expire or are revoked. It also
// caches the clients the token endpoints authenticate (see NewVerifier).
type Verifier struct {
	svc      *Service
	partners PartnerLookup

	mu sync.RWMutex
	// gen counts drops: an entry read from the database is cached only if
	// no drop happened meanwhile.
	gen     uint64
	cache   map[[32]byte]*atEntry
	clients map[string]*Client
}

// maxEntries bounds each cache: past it, the cache starts empty again.
const maxEntries = 100_000

// The authenticator's interfaces (the digest saves hashing twice), and its
// invalidations.
var (
	_ auth.TokenVerifier        = (*Verifier)(nil)
	_ auth.DigestVerifier       = (*Verifier)(nil)
	_ interface{ Drop(string) } = (*Verifier)(nil)
)

type atEntry struct {
	p *nexus.Principal
	// token is the stored row: its expiry, and what introspection tells.
	token *Token
	// refuse is the answer while the token may not be used (revoked, or
	// its client blocked), nil otherwise.
	refuse *nexus.Error
	// ownerID is the partner that registered the token's client.
	ownerID string
}

// NewVerifier returns an access-token verifier. From then on svc answers
// introspection of access tokens, and finds the clients of the flows and
// token endpoints, from the verifier's cache: the verifier must receive the
// invalidations (Drop), as it must for its own answers.
func NewVerifier(svc *Service, partners PartnerLookup) *Verifier {
	v := &Verifier{svc: svc, partners: partners, cache: make(map[[32]byte]*atEntry), clients: make(map[string]*Client)}
	svc.cache.Store(v)
	return v
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
	e, err := v.entry(ctx, tok, d)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errUnknown
	}
	if e.refuse != nil {
		return nil, e.refuse
	}
	if !v.svc.now().Before(e.token.ExpiresAt) {
		return nil, errExpired
	}
	return e.p, nil
}

// entry returns the cached entry of access token tok (digest d), loading it
// on a miss; nil when there is no such token. An unknown token is not
// cached: one issued later must work.
func (v *Verifier) entry(ctx context.Context, tok string, d [32]byte) (*atEntry, error) {
	v.mu.RLock()
	e, gen := v.cache[d], v.gen
	v.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	e, err := v.load(ctx, tok)
	if err != nil || e == nil {
		return nil, err
	}
	v.mu.Lock()
	// A drop since the read may have been for this token: keep the
	// possibly stale entry out.
	if v.gen == gen {
		if len(v.cache) >= maxEntries {
			clear(v.cache)
		}
		v.cache[d] = e
	}
	v.mu.Unlock()
	return e, nil
}

// client is Service.clientState through the cache: client id in any status
// with its owner's status, nil when there is none (not cached: a client
// registered later must be found). A client's status changes announce its
// topic, its owner's its partner topic.
func (v *Verifier) client(ctx context.Context, id string) (*Client, error) {
	v.mu.RLock()
	c, gen := v.clients[id], v.gen
	v.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	c, err := v.svc.clientState(ctx, id)
	if err != nil || c == nil {
		return nil, err
	}
	v.mu.Lock()
	if v.gen == gen {
		if len(v.clients) >= maxEntries {
			clear(v.clients)
		}
		v.clients[id] = c
	}
	v.mu.Unlock()
	return c, nil
}

func (v *Verifier) load(ctx context.Context, tok string) (*atEntry, error) {
	t := new(Token)
	err := store.CrossTenant(v.svc.db.DB, "access token hash: the token names its tenant").Select(t).
		Where("token_hash = ?", credential.DigestHex(tok)).Where("kind = 'at'").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e := &atEntry{token: t}
	if t.RevokedAt != nil {
		e.refuse = errRevoked
	} else {
		g, err := grantIn(ctx, v.svc.db.DB, t.tenant(), t.GrantID)
		if err != nil {
			return nil, err
		}
		if g.Status != GrantActive {
			e.refuse = errRevoked
		}
	}
	c, err := v.svc.clientState(ctx, t.ClientID)
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
		if kind == "all" || (kind == "cred" && (e.token.GrantID == id || e.token.ClientID == id)) ||
			(kind == "partner" && (e.p.Partner.ID == id || e.ownerID == id)) {
			delete(v.cache, d)
		}
	}
	switch kind {
	case "cred":
		delete(v.clients, id)
	case "partner":
		for cid, c := range v.clients {
			if c.PartnerID == id {
				delete(v.clients, cid)
			}
		}
	default:
		clear(v.cache)
		clear(v.clients)
	}
}
