package nexus

import (
	"encoding/json"
	"net/url"
	"time"
)

// The objects of the Nexus API, as it answers them (CONTRACT §5). Ids are
// prefixed (ptr_, key_, sc_, cli_, grt_, adr_, prq_, fnd_, evt_), times are
// UTC and amounts are integers in the currency's minor units.

// Environment is live or test.
type Environment string

// Environments.
const (
	EnvironmentLive Environment = "live"
	EnvironmentTest Environment = "test"
)

// Currency is a currency Nexus holds balances in.
type Currency string

// Currencies: btc has 8 decimals (network bitcoin); usdc and usdt have 6
// (network ethereum).
const (
	CurrencyBTC  Currency = "btc"
	CurrencyUSDC Currency = "usdc"
	CurrencyUSDT Currency = "usdt"
)

// Network is a blockchain network of payout addresses.
type Network string

// Networks.
const (
	NetworkBitcoin  Network = "bitcoin"
	NetworkEthereum Network = "ethereum"
)

// Statuses of the objects that have one.
const (
	FundingStatusPending   = "pending"
	FundingStatusCompleted = "completed"
	FundingStatusFailed    = "failed"

	AddressStatusActive   = "active"
	AddressStatusArchived = "archived"

	RequestStatusPending    = "pending"
	RequestStatusProcessing = "processing"
	RequestStatusCompleted  = "completed"
	RequestStatusFailed     = "failed"
	RequestStatusCancelled  = "cancelled"

	APIKeyStatusActive    = "active"
	APIKeyStatusSuspended = "suspended"
	APIKeyStatusRevoked   = "revoked"
	APIKeyStatusExpired   = "expired"
)

// Partner is the calling partner (GET /v1/partner), with the environment
// and the credential of the call.
type Partner struct {
	Object      string            `json:"object"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Status      string            `json:"status"` // pending, approved, inactive, rejected
	Environment Environment       `json:"environment"`
	CreatedAt   time.Time         `json:"created_at"`
	Credential  PartnerCredential `json:"credential"`
}

// PartnerCredential is the credential a call was made with.
type PartnerCredential struct {
	ID string `json:"id"`
	// Type: api_key, service_token, internal_service or oauth_access_token.
	Type   string   `json:"type"`
	Scopes []string `json:"scopes"`
}

// Balance is what the partner holds in one currency.
type Balance struct {
	Object    string   `json:"object"`
	Currency  Currency `json:"currency"`
	Available int64    `json:"available"`
	Pending   int64    `json:"pending"`
}

// Funding is a deposit into the partner's balance.
type Funding struct {
	Object      string      `json:"object"`
	ID          string      `json:"id"`
	Environment Environment `json:"environment"`
	Amount      int64       `json:"amount"`
	Currency    Currency    `json:"currency"`
	Status      string      `json:"status"` // FundingStatus…
	Reference   string      `json:"reference"`
	CreatedAt   time.Time   `json:"created_at"`
	CompletedAt *time.Time  `json:"completed_at"`
	FailedAt    *time.Time  `json:"failed_at"`
}

// Address is a payout address.
type Address struct {
	Object      string      `json:"object"`
	ID          string      `json:"id"`
	Environment Environment `json:"environment"`
	Network     Network     `json:"network"`
	Address     string      `json:"address"`
	Label       string      `json:"label"`
	Status      string      `json:"status"` // AddressStatus…
	CreatedAt   time.Time   `json:"created_at"`
	ArchivedAt  *time.Time  `json:"archived_at"`
}

// Request is a withdrawal request.
type Request struct {
	Object      string            `json:"object"`
	ID          string            `json:"id"`
	Environment Environment       `json:"environment"`
	Type        string            `json:"type"` // withdrawal
	Amount      int64             `json:"amount"`
	Currency    Currency          `json:"currency"`
	AddressID   string            `json:"address_id"`
	Status      string            `json:"status"` // RequestStatus…
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   time.Time         `json:"created_at"`
	CompletedAt *time.Time        `json:"completed_at"`
	FailedAt    *time.Time        `json:"failed_at"`
	CancelledAt *time.Time        `json:"cancelled_at"`
}

// APIKey is a secret or publishable API key.
type APIKey struct {
	Object         string      `json:"object"`
	ID             string      `json:"id"`
	Type           string      `json:"type"` // secret or publishable
	Environment    Environment `json:"environment"`
	Name           string      `json:"name"`
	Prefix         string      `json:"prefix"`
	Last4          string      `json:"last4"`
	Scopes         []string    `json:"scopes"`
	Status         string      `json:"status"` // APIKeyStatus…
	AllowedIPs     []string    `json:"allowed_ips"`
	AllowedOrigins []string    `json:"allowed_origins"`
	ExpiresAt      *time.Time  `json:"expires_at"`
	LastUsedAt     *time.Time  `json:"last_used_at"`
	ReplacedBy     *string     `json:"replaced_by"`
	// Limits are the key's money limits by currency (empty: none).
	Limits Limits `json:"limits"`
	// PolicyViolations names what this live key breaks of the key policy
	// (expires_at, allowed_ips, max_active_keys); empty if nothing.
	PolicyViolations []string  `json:"policy_violations"`
	CreatedAt        time.Time `json:"created_at"`
	// Key is the plain key, present only in the answer that created it
	// (create and rotate). Store it now: Nexus cannot show it again.
	Key string `json:"key,omitempty"`
}

// ServiceCredential lets the partner's own services sign JWTs (see
// MintServiceToken).
type ServiceCredential struct {
	Object      string      `json:"object"`
	ID          string      `json:"id"`
	Environment Environment `json:"environment"`
	Name        string      `json:"name"`
	Algorithm   string      `json:"algorithm"` // HS256, ES256 or EdDSA
	PublicKey   *string     `json:"public_key"`
	Scopes      []string    `json:"scopes"`
	Status      string      `json:"status"`
	// Limits are the money limits of every token it signs (empty: none).
	Limits    Limits     `json:"limits"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	// Secret is the HS256 signing secret (nx_<env>_ss_…), present only in
	// the answer that created an HS256 credential.
	Secret string `json:"secret,omitempty"`
}

// Limit is one currency's money limits on a credential, in minor units; a
// nil field is no limit. A withdrawal over either fails with
// CodeLimitExceeded and changes nothing.
type Limit struct {
	// MaxWithdrawalAmount caps one withdrawal (0 refuses every one).
	MaxWithdrawalAmount *int64 `json:"max_withdrawal_amount,omitempty"`
	// DailyWithdrawalTotal caps the credential's withdrawals of one UTC day
	// that are not failed or cancelled.
	DailyWithdrawalTotal *int64 `json:"daily_withdrawal_total,omitempty"`
}

// Limits are a credential's money limits by currency.
type Limits map[Currency]Limit

// Int64 returns a pointer to n, for Limit fields.
func Int64(n int64) *int64 { return &n }

// OAuthClient is a third-party app registered for OAuth 2.0. Its ID is
// also its ClientID.
type OAuthClient struct {
	Object       string      `json:"object"`
	ID           string      `json:"id"`
	ClientID     string      `json:"client_id"`
	Environment  Environment `json:"environment"`
	Name         string      `json:"name"`
	Type         string      `json:"type"` // confidential or public
	RedirectURIs []string    `json:"redirect_uris"`
	Scopes       []string    `json:"scopes"`
	Status       string      `json:"status"`
	CreatedAt    time.Time   `json:"created_at"`
	DeletedAt    *time.Time  `json:"deleted_at"`
	// ClientSecret (nx_<env>_cs_…) is present only in the answer that
	// created a confidential client.
	ClientSecret string `json:"client_secret,omitempty"`
}

// OAuthGrant is an app the partner authorised.
type OAuthGrant struct {
	Object      string      `json:"object"`
	ID          string      `json:"id"`
	ClientID    string      `json:"client_id"`
	ClientName  string      `json:"client_name"`
	Environment Environment `json:"environment"`
	Scopes      []string    `json:"scopes"`
	Status      string      `json:"status"`
	CreatedAt   time.Time   `json:"created_at"`
	RevokedAt   *time.Time  `json:"revoked_at"`
}

// RevokeAllParams is the body of CredentialService.RevokeAll.
type RevokeAllParams struct {
	Environment Environment `json:"environment"` // the calling credential's
	Confirm     string      `json:"confirm"`     // the partner id, ptr_…
}

// CredentialRevocation is what the kill switch revoked. NothingRevoked is
// true (and RevokedAt nil) when nothing was left to revoke.
type CredentialRevocation struct {
	Object             string      `json:"object"`
	PartnerID          string      `json:"partner_id"`
	Environment        Environment `json:"environment"`
	APIKeys            int         `json:"api_keys"`
	ServiceCredentials int         `json:"service_credentials"`
	OAuthGrants        int         `json:"oauth_grants"`
	OAuthTokens        int         `json:"oauth_tokens"`
	NothingRevoked     bool        `json:"nothing_revoked"`
	RevokedAt          *time.Time  `json:"revoked_at"`
}

// AuditEvent is an entry of the audit log: a lifecycle change, or (type
// api.access) an authenticated request, with Method, Path and Status.
type AuditEvent struct {
	Object       string          `json:"object"`
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Environment  Environment     `json:"environment"`
	ObjectID     string          `json:"object_id"`
	CredentialID string          `json:"credential_id"`
	Actor        string          `json:"actor"`
	IP           string          `json:"ip"`
	RequestID    string          `json:"request_id"`
	Method       string          `json:"method,omitempty"`
	Path         string          `json:"path,omitempty"`
	Status       int             `json:"status,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
}

func (v *Funding) objectID() string           { return v.ID }
func (v *Address) objectID() string           { return v.ID }
func (v *Request) objectID() string           { return v.ID }
func (v *APIKey) objectID() string            { return v.ID }
func (v *ServiceCredential) objectID() string { return v.ID }
func (v *OAuthClient) objectID() string       { return v.ID }
func (v *OAuthGrant) objectID() string        { return v.ID }
func (v *AuditEvent) objectID() string        { return v.ID }

// Parameters of the create calls. Unset optional fields are not sent.

// AddressCreateParams create a payout address.
type AddressCreateParams struct {
	Network Network `json:"network"`
	// Address: ethereum 0x + 40 hex (a mixed-case one must pass its EIP-55
	// checksum); bitcoin base58 or bech32.
	Address string `json:"address"`
	Label   string `json:"label,omitempty"`
}

// RequestCreateParams create a withdrawal request; it reserves Amount or
// fails with CodeInsufficientFunds.
type RequestCreateParams struct {
	// Type defaults to "withdrawal", the only type.
	Type      string            `json:"type"`
	Amount    int64             `json:"amount"`
	Currency  Currency          `json:"currency"`
	AddressID string            `json:"address_id"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// APIKeyCreateParams create an API key.
type APIKeyCreateParams struct {
	// Type is secret (default) or publishable.
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
	// Scopes: none is full access for a secret key (admin:all), read:balances
	// for a publishable one.
	Scopes     []string   `json:"scopes,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	AllowedIPs []string   `json:"allowed_ips,omitempty"`
	// AllowedOrigins are the web origins a publishable key may be used
	// from (required for a live one).
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// Limits are money limits by currency (default none).
	Limits Limits `json:"limits,omitempty"`
}

// APIKeyUpdateParams change an API key; nil fields stay as they are.
type APIKeyUpdateParams struct {
	Name *string `json:"name,omitempty"`
	// Limits replace the key's money limits whole; a pointer to an empty
	// Limits removes them all.
	Limits *Limits `json:"limits,omitempty"`
}

// ServiceCredentialUpdateParams change a service credential; nil fields
// stay as they are.
type ServiceCredentialUpdateParams struct {
	Name *string `json:"name,omitempty"`
	// Limits replace the credential's money limits whole; a pointer to an
	// empty Limits removes them all.
	Limits *Limits `json:"limits,omitempty"`
}

// APIKeyRotateParams rotate an API key.
type APIKeyRotateParams struct {
	// GracePeriodSeconds the old key keeps working: 0 to 604800 (7 days);
	// nil for the default, 24 hours.
	GracePeriodSeconds *int `json:"grace_period_seconds,omitempty"`
	// ExpiresAt is the successor's expiry (default: the old key's, bounded
	// by the key policy).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// AllowedIPs are the successor's (default: the old key's).
	AllowedIPs []string `json:"allowed_ips,omitempty"`
}

// KeyPolicy is the key policy of one environment; nil or false fields are
// rules that are off.
type KeyPolicy struct {
	Object                         string      `json:"object"`
	Environment                    Environment `json:"environment"`
	MaxKeyLifetimeDays             *int        `json:"max_key_lifetime_days"`
	RequireExpiry                  bool        `json:"require_expiry"`
	RequireAllowedIPsForSecretKeys bool        `json:"require_allowed_ips_for_secret_keys"`
	MaxActiveKeys                  *int        `json:"max_active_keys"`
	ExpiryWarningDays              *int        `json:"expiry_warning_days"`
	UpdatedAt                      *time.Time  `json:"updated_at"`
}

// KeyPolicyParams replace the key policy whole: a nil or false field turns
// its rule off.
type KeyPolicyParams struct {
	MaxKeyLifetimeDays             *int `json:"max_key_lifetime_days,omitempty"`
	RequireExpiry                  bool `json:"require_expiry,omitempty"`
	RequireAllowedIPsForSecretKeys bool `json:"require_allowed_ips_for_secret_keys,omitempty"`
	MaxActiveKeys                  *int `json:"max_active_keys,omitempty"`
	ExpiryWarningDays              *int `json:"expiry_warning_days,omitempty"`
}

// ServiceCredentialCreateParams create a service credential.
type ServiceCredentialCreateParams struct {
	Name string `json:"name,omitempty"`
	// Algorithm: HS256 (Nexus generates the secret), ES256 or EdDSA (set
	// PublicKey, PEM).
	Algorithm string   `json:"algorithm"`
	PublicKey string   `json:"public_key,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	// Limits are money limits by currency on every token it signs.
	Limits Limits `json:"limits,omitempty"`
}

// OAuthClientCreateParams register an OAuth client.
type OAuthClientCreateParams struct {
	Name string `json:"name"`
	// Type: confidential (with a secret) or public (PKCE only).
	Type string `json:"type"`
	// RedirectURIs, matched exactly: https, or http on localhost.
	RedirectURIs []string `json:"redirect_uris"`
	// Scopes are the most the client may ask for.
	Scopes []string `json:"scopes"`
}

// FundingCreateParams simulate a deposit (test helpers).
type FundingCreateParams struct {
	Amount   int64    `json:"amount"`
	Currency Currency `json:"currency"`
	// Status: pending (default; credits nothing until completed) or
	// completed (credits at once).
	Status    string `json:"status,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// Parameters of the lists. Zero fields are not sent.

// FundingListParams filter the funding list.
type FundingListParams struct {
	ListParams
	Status   string
	Currency Currency
}

func (p *FundingListParams) values() url.Values {
	q := p.ListParams.values()
	setIf(q, "status", p.Status)
	setIf(q, "currency", string(p.Currency))
	return q
}

// AddressListParams filter the address list.
type AddressListParams struct {
	ListParams
	Status  string
	Network Network
}

func (p *AddressListParams) values() url.Values {
	q := p.ListParams.values()
	setIf(q, "status", p.Status)
	setIf(q, "network", string(p.Network))
	return q
}

// RequestListParams filter the request list.
type RequestListParams struct {
	ListParams
	Status    string
	Currency  Currency
	AddressID string
}

func (p *RequestListParams) values() url.Values {
	q := p.ListParams.values()
	setIf(q, "status", p.Status)
	setIf(q, "currency", string(p.Currency))
	setIf(q, "address_id", p.AddressID)
	return q
}

// APIKeyListParams filter the key list.
type APIKeyListParams struct {
	ListParams
	Status string
	// PolicyViolations lists only the live keys that break the key policy.
	PolicyViolations bool
	// ExpiringWithin lists only the live keys expiring within it, an ISO
	// 8601 duration such as "P7D".
	ExpiringWithin string
}

func (p *APIKeyListParams) values() url.Values {
	q := p.ListParams.values()
	setIf(q, "status", p.Status)
	if p.PolicyViolations {
		q.Set("policy_violations", "true")
	}
	setIf(q, "expiring_within", p.ExpiringWithin)
	return q
}

// AuditEventListParams filter the audit log.
type AuditEventListParams struct {
	ListParams
	Type         string
	CredentialID string
	// CreatedAfter and CreatedBefore bound created_at (exclusive).
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
}

func (p *AuditEventListParams) values() url.Values {
	q := p.ListParams.values()
	setIf(q, "type", p.Type)
	setIf(q, "credential_id", p.CredentialID)
	if p.CreatedAfter != nil {
		q.Set("created_after", p.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if p.CreatedBefore != nil {
		q.Set("created_before", p.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	return q
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
