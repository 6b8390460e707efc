package servicetoken

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Lifetimes and leeway of CONTRACT §2.
const (
	MaxPartnerLifetime  = time.Hour
	MaxInternalLifetime = 15 * time.Minute
	Leeway              = 30 * time.Second
)

// PartnerLookup finds the partner a token acts for.
type PartnerLookup interface {
	Get(ctx context.Context, id string) (nexus.Partner, error)
}

// VerifierConfig wires a Verifier.
type VerifierConfig struct {
	Service  *Service      // Required: reads credentials and platform services.
	Partners PartnerLookup // Required.
	// Audience of partner service tokens. Optional. Default: nexus-api.
	Audience string
	// InternalAudience of platform service tokens. Optional. Default: nexus-internal.
	InternalAudience string
	// Now is the clock tokens are judged by. Optional. Default: time.Now
	// (tests pass their own to step past an expiry without sleeping).
	Now func() time.Time
}

// Verifier verifies service JWTs following RFC 8725: the key decides the
// algorithm, kid/iss/aud/exp/iat are required, lifetimes are bounded and
// permissions never exceed the credential's; tokens are read strictly (see
// jws.go).
type Verifier struct {
	cfg VerifierConfig

	mu       sync.RWMutex
	gen      uint64                   // bumped by every Drop: a verification that raced one is not cached
	keys     map[string]*keyEntry     // by kid
	tokens   map[[32]byte]*tokenEntry // by credential.Digest
	partners map[string]nexus.Partner // by id: a new token needs no query for them
}

type keyEntry struct {
	id, alg   string
	method    jwt.SigningMethod // of alg
	key       any
	internal  bool
	revoked   bool
	partnerID string // partner credentials
	env       nexus.Environment
	scopes    nexus.ScopeSet
	name      string
}

type tokenEntry struct {
	digest [32]byte
	p      *nexus.Principal
	exp    time.Time
	kid    string
}

// The authenticator holds a Verifier as its service-token verifier and
// forwards cache invalidations to its Drop.
var (
	_ auth.TokenVerifier        = (*Verifier)(nil)
	_ interface{ Drop(string) } = (*Verifier)(nil)
)

// NewVerifier returns a verifier.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Audience == "" {
		cfg.Audience = "nexus-api"
	}
	if cfg.InternalAudience == "" {
		cfg.InternalAudience = "nexus-internal"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{
		cfg:      cfg,
		keys:     make(map[string]*keyEntry),
		tokens:   make(map[[32]byte]*tokenEntry),
		partners: make(map[string]nexus.Partner),
	}
}

var errExpired = &nexus.Error{Code: nexus.CodeTokenExpired, Message: "the token has expired"}

func invalid(why string) *nexus.Error {
	return &nexus.Error{Code: nexus.CodeInvalidToken, Message: "invalid token: " + why}
}

// Verify implements auth.TokenVerifier.
func (v *Verifier) Verify(ctx context.Context, tok string) (*nexus.Principal, error) {
	// The token cache is keyed by the token's SHA-256 digest, as the API-key
	// and OAuth caches are: it holds no token, and its lookups time digests.
	d := credential.Digest(tok)
	now := v.cfg.Now()
	v.mu.RLock()
	te, gen := v.tokens[d], v.gen
	v.mu.RUnlock()
	if te != nil && subtle.ConstantTimeCompare(te.digest[:], d[:]) == 1 && now.Before(te.exp) {
		return te.p, nil
	}

	t, err := parseJWS(tok)
	if err != nil {
		return nil, err
	}
	// Only the algorithms a credential can have; none is never one.
	if methods[t.alg] == nil {
		return nil, invalid("alg must be HS256, ES256, EdDSA or RS256")
	}
	entry, err := v.key(ctx, t.kid)
	if err != nil {
		return nil, err // a storage failure is internal_error
	}
	// The credential fixes the algorithm (RFC 8725 §3.1); a header naming
	// another one (HS256 with a public key as the secret, say) is refused.
	if t.alg != entry.alg {
		return nil, invalid("alg does not match the credential's algorithm")
	}
	if entry.method.Verify(t.signingInput, t.sig, entry.key) != nil {
		return nil, invalid("the signature does not verify")
	}
	claims, err := parseClaims(t.payload)
	if err != nil {
		return nil, err
	}
	if err := checkTimes(claims, now); err != nil {
		return nil, err
	}
	p, err := v.check(ctx, entry, claims)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.tokens) > 100_000 {
		clear(v.tokens)
	}
	if v.gen == gen {
		v.tokens[d] = &tokenEntry{digest: d, p: p, exp: claims.exp, kid: entry.id}
	}
	v.mu.Unlock()
	return p, nil
}

// methods verify the algorithms a credential or platform service can have.
var methods = map[string]jwt.SigningMethod{
	HS256: jwt.SigningMethodHS256, ES256: jwt.SigningMethodES256,
	EdDSA: jwt.SigningMethodEdDSA, RS256: jwt.SigningMethodRS256,
}

// checkTimes applies RFC 7519 §4.1.4–6 with Leeway: exp and iat required,
// exp not passed, iat and nbf not ahead, and exp after iat (a token that
// expires before it is issued is valid at no instant; the leeway must not
// make it valid).
func checkTimes(c *tokenClaims, now time.Time) error {
	switch {
	case c.exp.IsZero():
		return invalid("exp is required")
	case c.iat.IsZero():
		return invalid("iat is required")
	case !now.Before(c.exp.Add(Leeway)):
		return errExpired
	case now.Before(c.iat.Add(-Leeway)):
		return invalid("iat is in the future")
	case !c.nbf.IsZero() && now.Before(c.nbf.Add(-Leeway)):
		return invalid("the token is not valid yet (nbf)")
	case !c.exp.After(c.iat):
		return invalid("exp must be after iat")
	}
	return nil
}

// check applies the rules that depend on the credential.
func (v *Verifier) check(ctx context.Context, e *keyEntry, c *tokenClaims) (*nexus.Principal, error) {
	if e.revoked {
		return nil, invalid("the credential has been revoked")
	}
	if c.iss != e.id {
		return nil, invalid("iss must equal the credential id")
	}
	aud, maxLife := v.cfg.Audience, MaxPartnerLifetime
	if e.internal {
		aud, maxLife = v.cfg.InternalAudience, MaxInternalLifetime
	}
	if !slices.Contains(c.aud, aud) {
		return nil, invalid("aud must be " + aud)
	}
	if c.exp.Sub(c.iat) > maxLife {
		return nil, invalid("exp - iat exceeds the maximum lifetime of " + maxLife.String())
	}
	scopes := e.scopes
	if len(c.permissions) > 0 {
		asked, _, ok := nexus.ParseScopes(c.permissions)
		if !ok || !e.scopes.Contains(asked) {
			return nil, invalid("permissions exceed the credential's")
		}
		scopes = asked
	}
	p := &nexus.Principal{Scopes: scopes, CredentialID: e.id}
	partnerID := e.partnerID
	if e.internal {
		if c.sub == "" {
			return nil, invalid("sub (the partner acted for) is required")
		}
		env := nexus.Environment(c.env)
		if !env.Valid() {
			return nil, invalid("env must be live or test")
		}
		partnerID, p.Environment = c.sub, env
		p.CredentialType, p.Actor = nexus.CredentialInternalService, e.name
	} else {
		if c.env != "" && nexus.Environment(c.env) != e.env {
			return nil, invalid("env does not match the credential's environment")
		}
		p.Environment = e.env
		p.CredentialType, p.Actor = nexus.CredentialServiceToken, e.id
		if c.service != "" {
			p.Actor = c.service
		}
	}
	partner, err := v.partner(ctx, partnerID)
	if err != nil {
		if nexus.CodeOf(err) == nexus.CodeResourceMissing {
			return nil, invalid("unknown partner")
		}
		return nil, err
	}
	p.Partner = partner
	return p, nil
}

// partner returns the partner a token acts for, from cache or storage.
func (v *Verifier) partner(ctx context.Context, id string) (nexus.Partner, error) {
	v.mu.RLock()
	p, ok := v.partners[id]
	gen := v.gen
	v.mu.RUnlock()
	if ok {
		return p, nil
	}
	p, err := v.cfg.Partners.Get(ctx, id)
	if err != nil {
		return p, err
	}
	v.mu.Lock()
	if v.gen == gen {
		if len(v.partners) > 100_000 {
			clear(v.partners)
		}
		v.partners[id] = p
	}
	v.mu.Unlock()
	return p, nil
}

// key returns the verification key for kid, from cache or storage.
func (v *Verifier) key(ctx context.Context, kid string) (*keyEntry, error) {
	v.mu.RLock()
	e, gen := v.keys[kid], v.gen
	v.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	e, err := v.load(ctx, kid)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.gen == gen {
		v.keys[kid] = e
	}
	v.mu.Unlock()
	return e, nil
}

var errUnknownKid = invalid("unknown kid")

func (v *Verifier) load(ctx context.Context, kid string) (*keyEntry, error) {
	// Only a credential or service id names a key. Anything else is unknown
	// without a query (PostgreSQL would fail on a NUL in it: a 500).
	if !nexus.IsID("sc", kid) && !nexus.IsID("svc", kid) {
		return nil, errUnknownKid
	}
	db := v.cfg.Service.db
	switch {
	case strings.HasPrefix(kid, "sc_"):
		c := new(Credential)
		err := store.CrossTenant(db.DB, "service credential by kid: a token names its key before its tenant is known").
			Select(c).Where("?TableAlias.id = ?", kid).Scan(ctx)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errUnknownKid
			}
			return nil, err
		}
		scopes, _ := nexus.ParseScopeString(c.Scopes)
		e := &keyEntry{id: c.ID, alg: c.Algorithm, method: methods[c.Algorithm], partnerID: c.PartnerID, env: c.Environment, scopes: scopes,
			revoked: c.Status != "active", name: c.Name}
		switch {
		case c.Algorithm == HS256 && c.SecretEnc != nil:
			if v.cfg.Service.box == nil {
				return nil, errors.New("servicetoken: HS256 credential but no master key")
			}
			secret, err := v.cfg.Service.box.Open(c.ID, *c.SecretEnc)
			if err != nil {
				return nil, err
			}
			e.key = []byte(secret)
		case c.PublicKey != nil:
			k, err := parsePublicKey(c.Algorithm, *c.PublicKey)
			if err != nil {
				return nil, err
			}
			e.key = k
		default:
			return nil, errUnknownKid
		}
		return e, nil
	case strings.HasPrefix(kid, "svc_"):
		p := new(Platform)
		if err := db.NewSelect().Model(p).Where("id = ?", kid).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errUnknownKid
			}
			return nil, err
		}
		k, err := parsePublicKey(p.Algorithm, p.PublicKey)
		if err != nil {
			return nil, err
		}
		perms, _ := nexus.ParseScopeString(p.Permissions)
		return &keyEntry{id: p.ID, alg: p.Algorithm, method: methods[p.Algorithm], key: k, internal: true, revoked: p.Status != "active",
			scopes: perms, name: p.Name}, nil
	}
	return nil, errUnknownKid
}

// Drop forgets cached keys and verified tokens for an invalidation topic.
func (v *Verifier) Drop(topic string) {
	kind, id, _ := strings.Cut(topic, ":")
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	switch kind {
	case "cred":
		delete(v.keys, id)
		for d, t := range v.tokens {
			if t.kid == id {
				delete(v.tokens, d)
			}
		}
	case "partner":
		delete(v.partners, id)
		for k, e := range v.keys {
			if e.partnerID == id {
				delete(v.keys, k)
			}
		}
		for d, t := range v.tokens {
			if t.p.Partner.ID == id {
				delete(v.tokens, d)
			}
		}
	default:
		clear(v.keys)
		clear(v.tokens)
		clear(v.partners)
	}
}
