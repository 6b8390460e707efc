// Package nexus holds the core types every other package speaks: partners,
// environments, scopes, the authenticated principal and the contract's error
// codes. It imports no framework and no database driver.
package nexus

import (
	"net/netip"
	"sync/atomic"
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
// which tenant, with which scopes. It is immutable once built (but for the
// values it remembers, see derived), so a cached principal can be shared by
// concurrent requests.
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

	// derived holds values computed from the principal on first use.
	derived derived
}

// derived are values the request path computes from a principal. A
// principal lives as long as the cache entry of the verifier that built it
// (an invalidation drops the entry, and a changed partner or credential
// comes with a new principal), so they are kept here rather than in caches
// of their own, and go with it. Concurrent first uses may compute one
// twice; either result is right.
type derived struct {
	limitKey atomic.Pointer[string]
	addr     atomic.Pointer[addrText]
	view     atomic.Pointer[[]byte]
}

type addrText struct {
	addr netip.Addr
	text string
}

// Tenant is the partition the principal may see.
func (p *Principal) Tenant() Tenant {
	return Tenant{PartnerID: p.Partner.ID, Environment: p.Environment}
}

// LimitKey is the principal's rate-limit key. A platform service acts for
// many partners, and each (service, partner) pair has a count of its own
// under that partner's limit.
func (p *Principal) LimitKey() string {
	if k := p.derived.limitKey.Load(); k != nil {
		return *k
	}
	k := "cred:" + p.CredentialID
	if p.CredentialType == CredentialInternalService {
		k += ":" + p.Partner.ID
	}
	p.derived.limitKey.Store(&k)
	return k
}

// AddrString returns a.String(), remembered for the last address the
// principal was used from: a credential is mostly used from one place, and
// every request it makes records its address.
func (p *Principal) AddrString(a netip.Addr) string {
	if t := p.derived.addr.Load(); t != nil && t.addr == a {
		return t.text
	}
	t := &addrText{addr: a, text: a.String()}
	p.derived.addr.Store(t)
	return t.text
}

// View returns what encode makes of the principal (the GET /v1/partner
// answer), encoded on first use and shared by every later call: callers
// must not change it. encode must be a function of the principal alone.
func (p *Principal) View(encode func(*Principal) []byte) []byte {
	if b := p.derived.view.Load(); b != nil {
		return *b
	}
	b := encode(p)
	p.derived.view.Store(&b)
	return b
}
