// Package servicetoken lets services authenticate with signed JWTs: a
// partner's own microservices through service credentials (sc_…), and the
// platform's internal services (svc_…) registered by an operator.
package servicetoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/secretbox"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Algorithms a credential may use; the algorithm is fixed by the credential,
// never taken from a token's header (RFC 8725 §3.1).
const (
	HS256 = "HS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
	RS256 = "RS256"
)

// Credential is a partner's stored service credential.
type Credential struct {
	bun.BaseModel `bun:"table:service_credentials"`

	ID          string            `bun:"id,pk"`
	PartnerID   string            `bun:"partner_id"`
	Environment nexus.Environment `bun:"environment"`
	Name        string            `bun:"name"`
	Algorithm   string            `bun:"algorithm"`
	SecretEnc   *string           `bun:"secret_enc"`
	// SecretHash is the SHA-256 digest (hex) of an HS256 signing secret,
	// by which a leaked secret reported by a scanner is found.
	SecretHash *string    `bun:"secret_hash"`
	PublicKey  *string    `bun:"public_key"`
	Scopes     string     `bun:"scopes"`
	Status     string     `bun:"status"`
	CreatedAt  time.Time  `bun:"created_at"`
	UpdatedAt  time.Time  `bun:"updated_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

// View is the API's service_credential object. Secret is set only in the
// create answer.
type View struct {
	Object      string            `json:"object"`
	ID          string            `json:"id"`
	Environment nexus.Environment `json:"environment"`
	Name        string            `json:"name"`
	Algorithm   string            `json:"algorithm"`
	PublicKey   *string           `json:"public_key"`
	Scopes      []string          `json:"scopes"`
	Status      string            `json:"status"`
	Limits      ledger.Limits     `json:"limits"`
	CreatedAt   time.Time         `json:"created_at"`
	RevokedAt   *time.Time        `json:"revoked_at"`
	Secret      string            `json:"secret,omitempty"`
}

func (c *Credential) view() *View {
	s, _ := nexus.ParseScopeString(c.Scopes)
	return &View{Object: "service_credential", ID: c.ID, Environment: c.Environment, Name: c.Name,
		Algorithm: c.Algorithm, PublicKey: c.PublicKey, Scopes: s.Names(), Status: c.Status,
		Limits: ledger.Limits{}, CreatedAt: c.CreatedAt, RevokedAt: c.RevokedAt}
}

// views renders credentials with their money limits.
func views(ctx context.Context, idb bun.IDB, t nexus.Tenant, cs ...*Credential) ([]*View, error) {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	ls, err := ledger.LoadLimits(ctx, idb, t, ids...)
	if err != nil {
		return nil, err
	}
	out := make([]*View, len(cs))
	for i, c := range cs {
		out[i] = c.view()
		out[i].Limits = ls[c.ID]
	}
	return out, nil
}

// Service manages service credentials and platform services.
type Service struct {
	db  *store.DB
	box *secretbox.Box // nil: HS256 credentials cannot be created
}

// NewService returns the service; box encrypts HS256 signing secrets.
func NewService(db *store.DB, box *secretbox.Box) *Service { return &Service{db: db, box: box} }

// CreateParams is the body of POST /v1/service_credentials.
type CreateParams struct {
	Name      string   `json:"name" validate:"max=200"`
	Algorithm string   `json:"algorithm" validate:"required,oneof=HS256 ES256 EdDSA"`
	PublicKey string   `json:"public_key" validate:"max=10000"`
	Scopes    []string `json:"scopes" validate:"omitempty,max=20,dive,min=1,max=64"`
	// Limits are money limits by currency (ledger.ParseLimits).
	Limits json.RawMessage `json:"limits"`
}

// UpdateParams is the body of PATCH /v1/service_credentials/{id}: only the
// fields sent change.
type UpdateParams struct {
	Name *string `json:"name" validate:"omitempty,max=200"`
	// Limits replaces the credential's money limits whole; {} removes them.
	Limits json.RawMessage `json:"limits"`
}

// Create registers a service credential. For HS256 Nexus generates the
// signing secret and returns it once; ES256 and EdDSA take the partner's
// public key.
func (s *Service) Create(ctx context.Context, t nexus.Tenant, p CreateParams) (*View, error) {
	scopes, bad, ok := nexus.ParseScopes(p.Scopes)
	if !ok {
		return nil, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "scopes", Message: fmt.Sprintf("unknown scope: %q", bad)}
	}
	if scopes&nexus.InternalScopes != 0 {
		return nil, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "scopes", Message: "internal scopes are for platform services only"}
	}
	if len(p.Scopes) == 0 {
		scopes = nexus.ScopeSet(nexus.ScopeAdminAll)
	}
	limits, err := ledger.ParseLimits(p.Limits)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	c := &Credential{ID: nexus.NewID("sc"), PartnerID: t.PartnerID, Environment: t.Environment, Name: p.Name,
		Algorithm: p.Algorithm, Scopes: scopes.String(), Status: "active", CreatedAt: now, UpdatedAt: now}
	var plain string
	switch p.Algorithm {
	case HS256:
		if p.PublicKey != "" {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, "public_key", "HS256 credentials take no public key: Nexus generates the signing secret")
		}
		if s.box == nil {
			return nil, errors.New("servicetoken: no master key configured for HS256 secrets")
		}
		var err error
		if plain, err = credential.New(string(t.Environment), credential.KindSigningSecret); err != nil {
			return nil, err
		}
		sealed, err := s.box.Seal(c.ID, plain)
		if err != nil {
			return nil, err
		}
		c.SecretEnc = &sealed
		h := credential.DigestHex(plain)
		c.SecretHash = &h
	default:
		if p.PublicKey == "" {
			return nil, nexus.ParamError(nexus.CodeParameterMissing, "public_key", "%s credentials need the PEM public key of your signing key", p.Algorithm)
		}
		if _, err := parsePublicKey(p.Algorithm, p.PublicKey); err != nil {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, "public_key", "%v", err)
		}
		pk := strings.TrimSpace(p.PublicKey) + "\n"
		c.PublicKey = &pk
	}
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := store.For(tx, t).Insert(c).Exec(ctx); err != nil {
			return err
		}
		if len(limits) > 0 {
			if err := ledger.SaveLimits(ctx, tx, t, c.ID, limits); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, t, "service_credential.created", c.ID, map[string]any{"algorithm": c.Algorithm})
	})
	if err != nil {
		return nil, err
	}
	v := c.view()
	if limits != nil {
		v.Limits = limits
	}
	v.Secret = plain
	return v, nil
}

// Get returns one of the tenant's credentials.
func (s *Service) Get(ctx context.Context, t nexus.Tenant, id string) (*View, error) {
	c, err := store.Get[Credential](ctx, s.db.For(t), "service_credential", id)
	if err != nil {
		return nil, err
	}
	vs, err := views(ctx, s.db.DB, t, c)
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// Update changes a credential's name and money limits; limits apply to the
// next withdrawal its tokens make, on every instance.
func (s *Service) Update(ctx context.Context, t nexus.Tenant, id string, p UpdateParams) (*View, error) {
	limits, err := ledger.ParseLimits(p.Limits)
	if err != nil {
		return nil, err
	}
	var v *View
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		q := store.For(tx, t).Update((*Credential)(nil)).Set("updated_at = ?", store.Now()).Where("?TableAlias.id = ?", id)
		data := map[string]any{}
		if p.Name != nil {
			q = q.Set("name = ?", *p.Name)
			data["name"] = *p.Name
		}
		res, err := q.Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nexus.NotFound("service_credential", id)
		}
		if limits != nil {
			if err := ledger.SaveLimits(ctx, tx, t, id, limits); err != nil {
				return err
			}
			data["limits"] = limits
		}
		if err := audit.Record(ctx, tx, t, "service_credential.updated", id, data); err != nil {
			return err
		}
		c, err := store.Get[Credential](ctx, store.For(tx, t), "service_credential", id)
		if err != nil {
			return err
		}
		vs, err := views(ctx, tx, t, c)
		if err == nil {
			v = vs[0]
		}
		return err
	})
	return v, err
}

// List returns one page of the tenant's credentials.
func (s *Service) List(ctx context.Context, t nexus.Tenant, p store.Page) ([]*View, bool, error) {
	rows, more, err := store.List[Credential](ctx, s.db.For(t), p, s.db.NewSelect())
	if err != nil {
		return nil, false, err
	}
	ptrs := make([]*Credential, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	out, err := views(ctx, s.db.DB, t, ptrs...)
	return out, more, err
}

// Revoke ends a credential; tokens it signed stop working on every instance.
func (s *Service) Revoke(ctx context.Context, t nexus.Tenant, id string) (*View, error) {
	var v *View
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		c, err := store.Transition[Credential](ctx, store.For(tx, t), RevokeChange(id, store.Now(), recordEvent, s.db))
		if err != nil {
			return err
		}
		vs, err := views(ctx, tx, t, c)
		if err != nil {
			return err
		}
		v = vs[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// RevokeChange is the revocation of credential id at now, as a
// store.Transition: record writes its service_credential.revoked event, and
// with publisher the credential's topic is published (nil: the caller
// announces the change itself, as secret scanning does once per partner).
func RevokeChange(id string, now time.Time, record func(ctx context.Context, idb bun.IDB, t nexus.Tenant, event, id string) error, publisher *store.DB) store.Change {
	c := store.Change{Kind: "service_credential", ID: id, To: "revoked", From: []string{"active"}, Verb: "revoked",
		Set: map[string]any{"revoked_at": now}, Event: "service_credential.revoked", Record: record}
	if publisher != nil {
		c.Topic, c.Publisher = store.TopicKey(id), publisher
	}
	return c
}

// recordEvent is audit.Record without data, as store.Change.Record.
func recordEvent(ctx context.Context, idb bun.IDB, t nexus.Tenant, event, id string) error {
	return audit.Record(ctx, idb, t, event, id, nil)
}

var errRSATooSmall = errors.New("RSA public keys must be at least 2048 bits")

// parsePublicKey reads a PEM public key and checks it fits alg.
func parsePublicKey(alg, pemText string) (any, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil {
		return nil, errors.New("public_key must be a PEM-encoded public key (-----BEGIN PUBLIC KEY-----)")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("public_key is not a valid PKIX public key")
	}
	switch k := key.(type) {
	case ed25519.PublicKey:
		if alg == EdDSA {
			return k, nil
		}
	case *ecdsa.PublicKey:
		if alg == ES256 && k.Curve == elliptic.P256() {
			return k, nil
		}
	case *rsa.PublicKey:
		if alg == RS256 {
			if k.N.BitLen() < 2048 {
				return nil, errRSATooSmall
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("the public key does not fit algorithm %s (EdDSA: Ed25519; ES256: P-256; RS256: RSA ≥ 2048)", alg)
}

// algorithmOf names the JWT algorithm for a platform service's key.
func algorithmOf(pemText string) (string, any, error) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		k, err := parsePublicKey(alg, pemText)
		if err == nil {
			return alg, k, nil
		}
		if errors.Is(err, errRSATooSmall) {
			return "", nil, err
		}
	}
	return "", nil, errors.New("the public key must be Ed25519, P-256 or RSA ≥ 2048 (PEM, PKIX)")
}

// RevokeAllIn revokes, inside idb (the caller's transaction), every active
// service credential of tenant t and returns how many. The caller announces
// the change.
func RevokeAllIn(ctx context.Context, idb bun.IDB, t nexus.Tenant, now time.Time) (int, error) {
	n, err := store.MoveAll(ctx, store.For(idb, t).Update((*Credential)(nil)), "revoked", []string{"active"}, "revoked_at", now)
	return int(n), err
}

// BackfillSecretHashes records the digest of every HS256 signing secret
// created before digests were kept (it needs the master key, which a
// migration does not have), so that secret scanning finds them too. It is
// idempotent; serve runs it at start.
func (s *Service) BackfillSecretHashes(ctx context.Context) (int, error) {
	if s.box == nil {
		return 0, nil
	}
	var rows []Credential
	if err := store.CrossTenant(s.db.DB, "signing-secret digest backfill: every tenant's credentials at start").
		Select(&rows).Column("id", "partner_id", "environment", "secret_enc").
		Where("?TableAlias.secret_enc IS NOT NULL").Where("?TableAlias.secret_hash IS NULL").Scan(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		plain, err := s.box.Open(r.ID, *r.SecretEnc)
		if err != nil {
			return n, fmt.Errorf("service credential %s: %w", r.ID, err)
		}
		t := nexus.Tenant{PartnerID: r.PartnerID, Environment: r.Environment}
		if _, err := s.db.For(t).Update((*Credential)(nil)).Set("secret_hash = ?", credential.DigestHex(plain)).
			Where("?TableAlias.id = ?", r.ID).Where("?TableAlias.secret_hash IS NULL").Exec(ctx); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
