package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
)

// config is everything read from flags and NEXUS_* variables; a flag wins
// over its variable.
type config struct {
	DatabaseURL      string
	Listen           string
	Issuer           string
	MasterKey        string
	MasterKeyPrev    string // NEXUS_MASTER_KEY_PREVIOUS: still opens, during a rotation
	RedisURL         string
	TrustedProxies   []netip.Prefix
	Environments     []nexus.Environment
	JWTAudience      string
	InternalAudience string
	LogFormat        string
	LogLevel         string
	IPLimit          int
	FailedAuthLimit  int
	PasswordChecks   int
	HSTS             bool
	KeyCacheSize     int
	AuditRetention   time.Duration // 0: keep access rows forever
	retentionErr     error         // a bad NEXUS_AUDIT_RETENTION, reported by finishServe
}

// bindCommon declares the flags every subcommand shares.
func bindCommon(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.DatabaseURL, "database-url", env("NEXUS_DATABASE_URL", ""), "postgres://… or sqlite:PATH (default: embedded SQLite at data/nexus.db) [NEXUS_DATABASE_URL]")
	fs.StringVar(&c.LogFormat, "log-format", env("NEXUS_LOG_FORMAT", "text"), "text or json [NEXUS_LOG_FORMAT]")
	fs.StringVar(&c.LogLevel, "log-level", env("NEXUS_LOG_LEVEL", "info"), "debug, info, warn or error [NEXUS_LOG_LEVEL]")
}

func bindServe(fs *flag.FlagSet, c *config) (proxies, envs *string) {
	fs.StringVar(&c.Listen, "listen", env("NEXUS_LISTEN", "127.0.0.1:8080"), "address to listen on [NEXUS_LISTEN]")
	fs.StringVar(&c.Issuer, "issuer", env("NEXUS_ISSUER", ""), "public base URL (default http://LISTEN) [NEXUS_ISSUER]")
	fs.StringVar(&c.RedisURL, "redis-url", env("NEXUS_REDIS_URL", ""), "optional redis://… for shared limits and revocation [NEXUS_REDIS_URL]")
	fs.StringVar(&c.JWTAudience, "jwt-audience", env("NEXUS_JWT_AUDIENCE", "nexus-api"), "aud of partner service tokens [NEXUS_JWT_AUDIENCE]")
	fs.StringVar(&c.InternalAudience, "internal-audience", env("NEXUS_INTERNAL_AUDIENCE", "nexus-internal"), "aud of platform service tokens [NEXUS_INTERNAL_AUDIENCE]")
	c.MasterKey = os.Getenv("NEXUS_MASTER_KEY") // never a flag: flags show in ps
	c.MasterKeyPrev = os.Getenv("NEXUS_MASTER_KEY_PREVIOUS")
	fs.IntVar(&c.IPLimit, "ip-rate-limit", envInt("NEXUS_IP_RATE_LIMIT", 100), "requests per minute per IP on /oauth/* and /login [NEXUS_IP_RATE_LIMIT]")
	fs.IntVar(&c.FailedAuthLimit, "failed-auth-limit", envInt("NEXUS_FAILED_AUTH_LIMIT", 10), "failed authentications per minute per IP before lockout [NEXUS_FAILED_AUTH_LIMIT]")
	fs.IntVar(&c.PasswordChecks, "password-checks", envInt("NEXUS_PASSWORD_CHECKS", oauth.DefaultPasswordChecks()), "password checks (argon2id, 19 MiB each) running at once at /login; more wait briefly, then get 503 [NEXUS_PASSWORD_CHECKS]")
	fs.IntVar(&c.KeyCacheSize, "key-cache-size", envInt("NEXUS_KEY_CACHE_SIZE", auth.DefaultCacheSize), "API keys kept verified in memory (about 0.55 KB each); the least recently used go first [NEXUS_KEY_CACHE_SIZE]")
	fs.BoolVar(&c.HSTS, "hsts", envBool("NEXUS_HSTS"), "send Strict-Transport-Security: clients reach Nexus over TLS only, through a TLS proxy [NEXUS_HSTS=1]")
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
	if c.Issuer == "" {
		c.Issuer = "http://" + c.Listen
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	return nil
}

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

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envBool reads a boolean variable (1, true, ...); unset or anything else is
// false.
func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}

func (c *config) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
