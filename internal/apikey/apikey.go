// Package apikey issues and manages API keys (CONTRACT §2): secret and
// publishable, scoped, with a lifecycle, rotation with grace and allowlists.
// Only SHA-256 digests of keys are stored.
package apikey

import (
	"net/netip"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// Type is secret (server-side) or publishable (browser-safe, read only).
type Type string

const (
	Secret      Type = "secret"
	Publishable Type = "publishable"
)

// Status is the stored lifecycle state; "expired" is derived from expires_at.
type Status string

const (
	Active    Status = "active"
	Suspended Status = "suspended"
	Revoked   Status = "revoked"
	Expired   Status = "expired"
)

// Row is the stored key.
type Row struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID          string            `bun:"id,pk"`
	PartnerID   string            `bun:"partner_id"`
	Environment nexus.Environment `bun:"environment"`
	Type        Type              `bun:"type"`
	Name        string            `bun:"name"`
	Prefix      string            `bun:"prefix"`
	Last4       string            `bun:"last4"`
	KeyHash     string            `bun:"key_hash"`
	Scopes      string            `bun:"scopes"`
	Status      Status            `bun:"status"`
	// AllowedIPs and AllowedOrigins are stored as JSON arrays in text
	// columns; never nil (that would store null rather than []).
	AllowedIPs     []string   `bun:"allowed_ips"`
	AllowedOrigins []string   `bun:"allowed_origins"`
	ExpiresAt      *time.Time `bun:"expires_at"`
	LastUsedAt     *time.Time `bun:"last_used_at"`
	ReplacedBy     *string    `bun:"replaced_by"`
	// ExpiryWarnedAt is when the api_key.expiring event was written.
	ExpiryWarnedAt *time.Time `bun:"expiry_warned_at"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
}

// EffectiveStatus is the status callers see: an active key past its
// expires_at is expired.
func (r *Row) EffectiveStatus(now time.Time) Status {
	if r.Status == Active && r.ExpiresAt != nil && !now.Before(*r.ExpiresAt) {
		return Expired
	}
	return r.Status
}

// ScopeSet parses the stored scopes.
func (r *Row) ScopeSet() nexus.ScopeSet {
	s, _ := nexus.ParseScopeString(r.Scopes)
	return s
}

// IPs parses the allowlist.
func (r *Row) IPs() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(r.AllowedIPs))
	for _, s := range r.AllowedIPs {
		if p, err := nexus.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Origins returns the origin allowlist.
func (r *Row) Origins() []string { return r.AllowedOrigins }

// Key is the API's view of a key. Plain is set only in the answer that
// created it.
type Key struct {
	Object         string            `json:"object"`
	ID             string            `json:"id"`
	Type           Type              `json:"type"`
	Environment    nexus.Environment `json:"environment"`
	Name           string            `json:"name"`
	Prefix         string            `json:"prefix"`
	Last4          string            `json:"last4"`
	Scopes         []string          `json:"scopes"`
	Status         Status            `json:"status"`
	AllowedIPs     []string          `json:"allowed_ips"`
	AllowedOrigins []string          `json:"allowed_origins"`
	ExpiresAt      *time.Time        `json:"expires_at"`
	LastUsedAt     *time.Time        `json:"last_used_at"`
	ReplacedBy     *string           `json:"replaced_by"`
	Limits         ledger.Limits     `json:"limits"`
	// PolicyViolations names the rules of the key policy this live key
	// breaks (expires_at, allowed_ips, max_active_keys); empty if none.
	PolicyViolations []string  `json:"policy_violations"`
	CreatedAt        time.Time `json:"created_at"`
	Plain            string    `json:"key,omitempty"`
}

// View renders the row for callers.
func (r *Row) View() *Key {
	k := &Key{
		Object: "api_key", ID: r.ID, Type: r.Type, Environment: r.Environment, Name: r.Name,
		Prefix: r.Prefix, Last4: r.Last4, Scopes: r.ScopeSet().Names(), Status: r.EffectiveStatus(time.Now()),
		ExpiresAt: r.ExpiresAt, LastUsedAt: r.LastUsedAt, ReplacedBy: r.ReplacedBy, CreatedAt: r.CreatedAt,
		AllowedIPs: append([]string{}, r.AllowedIPs...), AllowedOrigins: append([]string{}, r.AllowedOrigins...),
		Limits: ledger.Limits{}, PolicyViolations: []string{},
	}
	return k
}
