// Package nexus holds the core types every other package speaks: partners,
// environments, scopes, the authenticated principal and the contract's error
// codes. It imports no framework and no database driver.
package nexus

import (
	"context"
	"time"
)

// Environment separates live money from sandbox data. Every credential and
// every partner-owned row belongs to exactly one.
type Environment string

const (
	Live Environment = "live"
	Test Environment = "test"
)

// Valid reports whether e is one of the two environments.
func (e Environment) Valid() bool { return e == Live || e == Test }

// PartnerStatus is the onboarding lifecycle of a tenant.
type PartnerStatus string

const (
	PartnerPending  PartnerStatus = "pending"
	PartnerApproved PartnerStatus = "approved"
	PartnerInactive PartnerStatus = "inactive"
	PartnerRejected PartnerStatus = "rejected"
)

// Valid reports whether s is a known partner status.
func (s PartnerStatus) Valid() bool {
	switch s {
	case PartnerPending, PartnerApproved, PartnerInactive, PartnerRejected:
		return true
	}
	return false
}

// Allows reports whether a partner in status s may use environment env
// (CONTRACT §1: pending partners get the sandbox only).
func (s PartnerStatus) Allows(env Environment) bool {
	switch s {
	case PartnerApproved:
		return true
	case PartnerPending:
		return env == Test
	}
	return false
}

// DefaultRateLimit is the per-credential requests per minute when the partner
// has no setting of its own.
const DefaultRateLimit = 6000

// Partner is a tenant.
type Partner struct {
	ID        string
	Name      string
	Status    PartnerStatus
	RateLimit int // requests per minute per credential; 0 means DefaultRateLimit
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Tenant names the partition a row lives in. Store functions on tenant data
// take one explicitly, so no query can forget it.
type Tenant struct {
	PartnerID   string
	Environment Environment
}

// CredentialType names the kind of credential a principal authenticated with.
type CredentialType string

const (
	CredentialAPIKey          CredentialType = "api_key"
	CredentialServiceToken    CredentialType = "service_token"
	CredentialInternalService CredentialType = "internal_service"
	CredentialOAuthToken      CredentialType = "oauth_access_token"
	// CredentialMember is a person signed in to the dashboard.
	CredentialMember CredentialType = "member"
)

// Principal is what the authenticator makes of any credential: who acts, for
// which tenant, with which scopes. It is immutable once built, so a cached
// principal can be shared by concurrent requests.
type Principal struct {
	Partner        Partner
	Environment    Environment
	Scopes         ScopeSet
	CredentialID   string
	CredentialType CredentialType
	// Actor is what the audit log shows: the key id, the service name or
	// the OAuth client id.
	Actor string
	// OriginBound is set for a publishable key with allowed_origins: the
	// authenticator has matched the request's Origin against them, and
	// only such a credential gets a CORS grant.
	OriginBound bool
}

// Tenant is the partition the principal may see.
func (p *Principal) Tenant() Tenant {
	return Tenant{PartnerID: p.Partner.ID, Environment: p.Environment}
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the request authenticated as, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
