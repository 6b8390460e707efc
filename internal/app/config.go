package app

import (
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Config is everything a server needs, read and checked by the caller (the
// nexus command from flags and NEXUS_* variables, the benchmark from its
// own). Open does not read the environment.
type Config struct {
	DatabaseURL      string
	Listen           string
	Issuer           string // public base URL, without a trailing slash
	MasterKey        string
	MasterKeyPrev    string // NEXUS_MASTER_KEY_PREVIOUS: still opens, during a rotation
	RedisURL         string
	TrustedProxies   []netip.Prefix
	Environments     []nexus.Environment
	JWTAudience      string
	InternalAudience string
	IPLimit          int
	FailedAuthLimit  int
	PasswordChecks   int
	HSTS             bool
	TLSCert, TLSKey  string // PEM files: serve HTTPS directly
	AccessLog        string // on or off: a log line per request
	MetricsListen    string // /metrics on a listener of its own
	MetricsToken     string // or on the API's, to this bearer token
	// ExpiryWarningInterval is how often keys near their expiry are looked
	// for (api_key.expiring events).
	ExpiryWarningInterval time.Duration
	ScanKeysFile          string // NEXUS_SECRET_SCANNING_KEYS
	KeyCacheSize          int
	AuditRetention        time.Duration // 0: keep access rows forever
	// IdemAbandoned is how long an unfinished Idempotency-Key stays in use
	// before a retry may take it back.
	IdemAbandoned time.Duration
	// Pool sizes the database connection pool (NEXUS_DB_MAX_CONNS,
	// NEXUS_DB_MAX_IDLE_CONNS, NEXUS_DB_CONN_MAX_LIFETIME).
	Pool store.Pool

	// NoMigrate leaves pending migrations alone at start.
	NoMigrate bool
	// Demo, when set, gets a demo partner's fresh test key and a request
	// to try (nexus serve --demo).
	Demo io.Writer
	// Logger is the server's log. Optional. Default: slog.Default().
	Logger *slog.Logger
}

// Scheme is how clients reach this server directly.
func (c Config) Scheme() string {
	if c.TLSCert != "" {
		return "https"
	}
	return "http"
}
