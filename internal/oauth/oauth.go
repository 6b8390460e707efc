// Package oauth is Nexus's OAuth 2.0 authorization server for third-party
// apps (CONTRACT §7): clients registered by partners, members who log in and
// consent, the authorization code flow with PKCE (RFC 6749, RFC 7636),
// refresh-token rotation with reuse detection, revocation (RFC 7009) and
// introspection (RFC 7662). Codes, tokens, client secrets and session ids
// are stored only as SHA-256 digests.
package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Lifetimes of CONTRACT §7.
const (
	CodeTTL         = 60 * time.Second
	AccessTokenTTL  = time.Hour
	RefreshTokenTTL = 30 * 24 * time.Hour
	SessionTTL      = 12 * time.Hour
	// SessionIdle ends a session nobody used for this long.
	SessionIdle = 30 * time.Minute
)

// SessionCookie is the name of the member session cookie, set by /login
// and read by the consent pages and the dashboard.
const SessionCookie = "nexus_session"

// Error is an RFC 6749 §5.2 error (and §4.1.2.1 for redirects).
type Error struct {
	Code        string // invalid_request, invalid_client, invalid_grant, …
	Description string
	Status      int // HTTP status for token-endpoint answers
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func oerr(code, desc string) *Error {
	status := 400
	if code == "invalid_client" {
		status = 401
	}
	return &Error{Code: code, Description: desc, Status: status}
}

// Config configures the authorization server.
type Config struct {
	// Environments the deployment serves: no grant, code or token is issued
	// for a client of another. Optional. Default: live and test.
	Environments []nexus.Environment
	// PasswordSlots bounds concurrent password checks at /login. Optional.
	// Default: NewPasswordSlots(DefaultPasswordChecks(), DefaultPasswordWait).
	PasswordSlots *PasswordSlots
}

// Service is the authorization server's storage and rules.
type Service struct {
	db        *store.DB
	served    map[nexus.Environment]bool
	passwords *PasswordSlots
	// cache is the access-token verifier Introspect answers from (set by
	// NewVerifier), nil for none.
	cache atomic.Pointer[Verifier]
	// now tells the time expiry is checked against (tests move it).
	now func() time.Time
}

// NewService returns the OAuth service on db with the default Config.
func NewService(db *store.DB) *Service { return New(db, Config{}) }

// New returns the OAuth service on db.
func New(db *store.DB, cfg Config) *Service {
	envs := cfg.Environments
	if len(envs) == 0 {
		envs = []nexus.Environment{nexus.Live, nexus.Test}
	}
	s := &Service{db: db, served: make(map[nexus.Environment]bool, len(envs)), passwords: cfg.PasswordSlots, now: time.Now}
	for _, e := range envs {
		s.served[e] = true
	}
	if s.passwords == nil {
		s.passwords = NewPasswordSlots(DefaultPasswordChecks(), DefaultPasswordWait)
	}
	return s
}

func digest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// randomToken returns 32 random bytes, base64url: session ids and codes.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
