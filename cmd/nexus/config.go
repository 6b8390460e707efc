package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nexus-fintech/nexus/internal/app"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
)

// config is everything read from flags and NEXUS_* variables; a flag wins
// over its variable. What the server needs is app.Config.
type config struct {
	app.Config
	LogFormat    string
	LogLevel     string
	retentionErr error // a bad NEXUS_AUDIT_RETENTION, reported by finishServe
}

// bindCommon declares the flags every subcommand shares.
func bindCommon(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.DatabaseURL, "database-url", env("NEXUS_DATABASE_URL", ""), "postgres://… or sqlite:PATH (default: embedded SQLite at data/nexus.db) [NEXUS_DATABASE_URL]")
	c.LogFormat, c.LogLevel = env("NEXUS_LOG_FORMAT", "text"), env("NEXUS_LOG_LEVEL", "info")
	fs.Var(oneOf(&c.LogFormat, logFormats), "log-format", "log `format`: text or json [NEXUS_LOG_FORMAT]")
	fs.Var(oneOf(&c.LogLevel, logLevels), "log-level", "log `level`: debug, info, warn or error [NEXUS_LOG_LEVEL]")
}

// Accepted values of the enumerated settings.
var (
	logFormats = []string{"text", "json"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	onOff      = []string{"on", "off"}
)

// commonEnv checks the variables every command reads; serveEnv those serve
// adds. A variable set to what its setting does not accept stops the command
// before it does anything, naming the variable and what it accepts: a typo
// must not quietly become the default.
var (
	commonEnv = []envCheck{
		{"NEXUS_LOG_FORMAT", choiceCheck(logFormats)},
		{"NEXUS_LOG_LEVEL", choiceCheck(logLevels)},
	}
	serveEnv = []envCheck{
		{"NEXUS_ACCESS_LOG", choiceCheck(onOff)},
		{"NEXUS_HSTS", boolCheck},
		{"NEXUS_IP_RATE_LIMIT", positiveCheck},
		{"NEXUS_FAILED_AUTH_LIMIT", positiveCheck},
		{"NEXUS_PASSWORD_CHECKS", positiveCheck},
		{"NEXUS_EXPIRY_WARNING_INTERVAL", durationCheck},
		{"NEXUS_KEY_CACHE_SIZE", positiveCheck},
		{"NEXUS_IDEMPOTENCY_ABANDON_AFTER", durationCheck},
	}
)

type envCheck struct {
	name  string
	check func(string) error
}

// checkEnv checks the variables of checks that are set and reports every
// invalid one.
func checkEnv(checks []envCheck) error {
	var errs []error
	for _, c := range checks {
		if v, ok := os.LookupEnv(c.name); ok && v != "" {
			if err := c.check(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func choiceCheck(allowed []string) func(string) error {
	return func(v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
		}
		return nil
	}
}

func positiveCheck(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n <= 0 {
		return fmt.Errorf("%q is not a whole number of at least 1", v)
	}
	return nil
}

func durationCheck(v string) error {
	if d, err := time.ParseDuration(v); err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 30s, 1m or 1h", v)
	}
	return nil
}

func boolCheck(v string) error {
	if _, err := strconv.ParseBool(v); err != nil {
		return fmt.Errorf("%q is not one of 1, 0, true, false", v)
	}
	return nil
}

// choice is a string flag that accepts only some values.
type choice struct {
	p       *string
	allowed []string
}

func oneOf(p *string, allowed []string) *choice { return &choice{p, allowed} }

func (c *choice) String() string {
	if c == nil || c.p == nil {
		return ""
	}
	return *c.p
}

func (c *choice) Set(v string) error {
	if err := choiceCheck(c.allowed)(v); err != nil {
		return err
	}
	*c.p = v
	return nil
}

// positive is an int flag of at least 1.
type positive struct{ p *int }

func (n *positive) String() string {
	if n == nil || n.p == nil {
		return ""
	}
	return strconv.Itoa(*n.p)
}

func (n *positive) Set(v string) error {
	if err := positiveCheck(v); err != nil {
		return err
	}
	*n.p, _ = strconv.Atoi(v)
	return nil
}

func bindServe(fs *flag.FlagSet, c *config) (proxies, envs *string) {
	fs.DurationVar(&c.IdemAbandoned, "idempotency-abandon-after", envDuration("NEXUS_IDEMPOTENCY_ABANDON_AFTER", time.Minute),
		"how long an Idempotency-Key whose first request never finished (a crashed instance) is refused as in use before a retry may run it [NEXUS_IDEMPOTENCY_ABANDON_AFTER]")
	fs.StringVar(&c.Listen, "listen", env("NEXUS_LISTEN", "127.0.0.1:8080"), "address to listen on [NEXUS_LISTEN]")
	fs.StringVar(&c.Issuer, "issuer", env("NEXUS_ISSUER", ""), "public base URL (default http://LISTEN) [NEXUS_ISSUER]")
	fs.StringVar(&c.RedisURL, "redis-url", env("NEXUS_REDIS_URL", ""), "optional redis://… for shared limits and revocation [NEXUS_REDIS_URL]")
	fs.StringVar(&c.JWTAudience, "jwt-audience", env("NEXUS_JWT_AUDIENCE", "nexus-api"), "aud of partner service tokens [NEXUS_JWT_AUDIENCE]")
	fs.StringVar(&c.InternalAudience, "internal-audience", env("NEXUS_INTERNAL_AUDIENCE", "nexus-internal"), "aud of platform service tokens [NEXUS_INTERNAL_AUDIENCE]")
	c.MasterKey = os.Getenv("NEXUS_MASTER_KEY") // never a flag: flags show in ps
	c.MasterKeyPrev = os.Getenv("NEXUS_MASTER_KEY_PREVIOUS")
	c.MetricsToken = os.Getenv("NEXUS_METRICS_TOKEN") // never a flag either
	fs.StringVar(&c.MetricsListen, "metrics-listen", env("NEXUS_METRICS_LISTEN", ""), "serve /metrics on this address of its own, not on --listen [NEXUS_METRICS_LISTEN]")
	c.IPLimit = envInt("NEXUS_IP_RATE_LIMIT", 100)
	c.FailedAuthLimit = envInt("NEXUS_FAILED_AUTH_LIMIT", 10)
	c.PasswordChecks = envInt("NEXUS_PASSWORD_CHECKS", oauth.DefaultPasswordChecks())
	fs.Var(&positive{&c.IPLimit}, "ip-rate-limit", "`n` requests per minute per IP on /oauth/*, /login and /secret-scanning/* [NEXUS_IP_RATE_LIMIT]")
	fs.Var(&positive{&c.FailedAuthLimit}, "failed-auth-limit", "`n` failed authentications per minute per IP before lockout [NEXUS_FAILED_AUTH_LIMIT]")
	fs.Var(&positive{&c.PasswordChecks}, "password-checks", "`n` password checks (argon2id, 19 MiB each) running at once at /login; more wait briefly, then get 503 [NEXUS_PASSWORD_CHECKS]")
	fs.BoolVar(&c.HSTS, "hsts", envBool("NEXUS_HSTS"), "send Strict-Transport-Security: clients reach Nexus over TLS only, through a TLS proxy (always on with --tls-cert) [NEXUS_HSTS=1]")
	fs.StringVar(&c.TLSCert, "tls-cert", env("NEXUS_TLS_CERT", ""), "PEM certificate (chain) file: serve HTTPS, TLS 1.2 or later; reloaded on SIGHUP and when the file changes [NEXUS_TLS_CERT]")
	fs.StringVar(&c.TLSKey, "tls-key", env("NEXUS_TLS_KEY", ""), "PEM private key file of --tls-cert [NEXUS_TLS_KEY]")
	c.AccessLog = env("NEXUS_ACCESS_LOG", "on")
	fs.Var(oneOf(&c.AccessLog, onOff), "access-log", "`on|off`: log a line per request at info (method, route, status, duration, request and credential id) [NEXUS_ACCESS_LOG]")
	fs.DurationVar(&c.ExpiryWarningInterval, "expiry-warning-interval", envDuration("NEXUS_EXPIRY_WARNING_INTERVAL", time.Minute), "how often keys within their policy's expiry_warning_days get their api_key.expiring event [NEXUS_EXPIRY_WARNING_INTERVAL]")
	fs.StringVar(&c.ScanKeysFile, "secret-scanning-keys", env("NEXUS_SECRET_SCANNING_KEYS", ""), "file of the public keys that sign secret-scanning reports, in GitHub's format {\"public_keys\": [{\"key_identifier\", \"key\"}]} (default: reports are refused) [NEXUS_SECRET_SCANNING_KEYS]")
	fs.IntVar(&c.KeyCacheSize, "key-cache-size", envInt("NEXUS_KEY_CACHE_SIZE", auth.DefaultCacheSize), "API keys kept verified in memory (about 0.55 KB each); the least recently used go first [NEXUS_KEY_CACHE_SIZE]")
	fs.Func("audit-retention", "how long access rows are kept: days (90d), a duration (2160h), or off; lifecycle events are kept [NEXUS_AUDIT_RETENTION]",
		func(v string) (err error) {
			c.AuditRetention, c.retentionErr = 0, nil
			c.AuditRetention, err = audit.ParseRetention(v)
			return err
		})
	c.AuditRetention = audit.DefaultRetention
	if v := os.Getenv("NEXUS_AUDIT_RETENTION"); v != "" {
		if d, err := audit.ParseRetention(v); err == nil {
			c.AuditRetention = d
		} else {
			c.retentionErr = fmt.Errorf("NEXUS_AUDIT_RETENTION: %w", err)
		}
	}
	proxies = fs.String("trusted-proxies", env("NEXUS_TRUSTED_PROXIES", ""), "comma-separated IPs/CIDRs whose X-Forwarded-For is trusted [NEXUS_TRUSTED_PROXIES]")
	envs = fs.String("environments", env("NEXUS_ENVIRONMENTS", "live,test"), "environments served [NEXUS_ENVIRONMENTS]")
	return proxies, envs
}

func (c *config) finishServe(proxies, envs string) error {
	if c.retentionErr != nil {
		return c.retentionErr
	}
	if c.IdemAbandoned <= 0 {
		return fmt.Errorf("--idempotency-abandon-after: must be a positive duration")
	}
	if err := c.readPool(); err != nil {
		return err
	}
	for _, s := range splitList(proxies) {
		p, err := parsePrefix(s)
		if err != nil {
			return fmt.Errorf("NEXUS_TRUSTED_PROXIES: %q is not an IP or CIDR", s)
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	for _, s := range splitList(envs) {
		e := nexus.Environment(s)
		if !e.Valid() {
			return fmt.Errorf("NEXUS_ENVIRONMENTS: %q is not live or test", s)
		}
		c.Environments = append(c.Environments, e)
	}
	if len(c.Environments) == 0 {
		return fmt.Errorf("NEXUS_ENVIRONMENTS: serve at least one of live, test")
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		return fmt.Errorf("NEXUS_METRICS_TOKEN: at least 16 characters (a random one: head -c24 /dev/urandom | base64)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("NEXUS_TLS_CERT and NEXUS_TLS_KEY: set both (to serve HTTPS) or neither")
	}
	if c.TLSCert != "" {
		// Every answer goes over TLS: browsers may insist on it from now on.
		c.HSTS = true
	}
	if c.Issuer == "" {
		c.Issuer = defaultIssuer(c.scheme(), c.Listen)
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	return nil
}

// defaultIssuer is the base URL of a server listening on listen, for
// clients on the same machine: an unspecified host (":8080", "0.0.0.0:8080",
// as in a container) becomes localhost, never "http://:8080". Deployments
// set NEXUS_ISSUER to their public URL.
func defaultIssuer(scheme, listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return scheme + "://" + listen
	}
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// scheme is how clients reach this server directly.
func (c *config) scheme() string { return c.Config.Scheme() }

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err == nil && p.Addr().Is4In6() && p.Bits() >= 96 {
			// Client IPs are compared unmapped, so the range must be too.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envInt reads a whole-number variable (checkEnv has refused invalid ones).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envDuration reads a duration variable (checkEnv has refused invalid ones).
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envBool reads a boolean variable (1, true, ...; checkEnv has refused
// invalid ones); unset is false.
func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}

func (c *config) logger() *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel)) // one of logLevels
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// maxPoolConns bounds NEXUS_DB_MAX_CONNS: far above any sensible pool, low
// enough to catch a typo.
const maxPoolConns = 10_000

// readPool reads the pool settings; a value that is set but wrong is an
// error naming its variable (a silently ignored setting would leave the
// fleet exhausting PostgreSQL).
func (c *config) readPool() error {
	var err error
	if c.Pool.MaxConns, err = envIntStrict("NEXUS_DB_MAX_CONNS", 1, maxPoolConns); err != nil {
		return err
	}
	if c.Pool.MaxIdleConns, err = envIntStrict("NEXUS_DB_MAX_IDLE_CONNS", 1, maxPoolConns); err != nil {
		return err
	}
	if c.Pool.MaxConns > 0 && c.Pool.MaxIdleConns > c.Pool.MaxConns {
		return fmt.Errorf("NEXUS_DB_MAX_IDLE_CONNS: %d is more than NEXUS_DB_MAX_CONNS (%d)", c.Pool.MaxIdleConns, c.Pool.MaxConns)
	}
	if v := os.Getenv("NEXUS_DB_CONN_MAX_LIFETIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("NEXUS_DB_CONN_MAX_LIFETIME: %q is not a duration such as 30m (0 for no limit)", v)
		}
		c.Pool.ConnMaxLifetime = d
	}
	return nil
}

// envIntStrict reads a whole number from min to max; unset is 0.
func envIntStrict(name string, min, max int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s: %q is not a whole number from %d to %d", name, v, min, max)
	}
	return n, nil
}
