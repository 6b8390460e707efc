// Package auth is the unified authenticator: it finds the one credential in
// a request, dispatches by its kind to a verifier, and turns it into a
// nexus.Principal. API keys are verified from an in-memory cache keyed by
// the SHA-256 digest of the key, dropped on every lifecycle change.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Request is what the authenticator reads of an HTTP request. The HTTP
// layer fills it without copying header values.
type Request struct {
	// The first line of each credential header.
	Authorization  string
	XAPIKey        string
	XPartnerAPIKey string
	// Repeated holds the credential header lines after the first of their
	// name: HTTP lets a client repeat a header, and every line is as much a
	// credential as the first. Nil on nearly every request.
	Repeated []Header
	Origin   string
	RemoteIP netip.Addr
	// XForwardedFor is every X-Forwarded-For line, joined in order by
	// commas (RFC 9110 §5.3): a proxy may append its own line.
	XForwardedFor string
	// At is when the request arrived. Optional. Default: Config.Now().
	At time.Time
	// Gate admits an evaluation the cache cannot answer (an API key looked
	// up in storage), so that failed attempts can be bounded before they
	// are evaluated. Optional.
	Gate Gate
	// Gated is set by Authenticate when the Gate admitted the evaluation
	// and was told its outcome (so the caller does not count it again).
	Gated bool
}

// Gate admits evaluations of credentials: Admit reserves a slot (or
// refuses with an error that Authenticate returns as is), and done reports
// whether the credential failed.
type Gate interface {
	Admit(ctx context.Context, r *Request) (done func(failed bool), err error)
}

// Header is one header line; Name is one of the credential headers.
type Header struct{ Name, Value string }

// The credential headers of CONTRACT §2, as Header names them.
const (
	HeaderAuthorization  = "Authorization"
	HeaderXAPIKey        = "X-API-Key"
	HeaderXPartnerAPIKey = "X-Partner-API-Key"
)

// TokenVerifier verifies a bearer token of one kind (service JWTs, OAuth
// access tokens). Implementations live in their capability packages.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*nexus.Principal, error)
}

// DigestVerifier is a TokenVerifier of nx_ tokens that takes the token's
// SHA-256 digest (credential.Digest), which the authenticator has computed
// already. Optional: an OAuth verifier without it digests again.
type DigestVerifier interface {
	VerifyDigest(ctx context.Context, token string, digest [32]byte) (*nexus.Principal, error)
}

// Dropper is a verifier with a cache of its own: Authenticator.Drop passes
// every credential topic on to it (see store.TopicKey and friends).
type Dropper interface {
	Drop(topic string)
}

// Compile-time checks of this package's implementations (the verifiers of
// other packages are checked where they are wired, in internal/httpapi).
var (
	_ KeyStore = keyStore{}
	_ Dropper  = (*Authenticator)(nil)
)

// Config wires an Authenticator.
type Config struct {
	// Keys finds API keys and their partners on a cache miss. Required.
	Keys KeyStore
	// Environments the deployment serves. Optional. Default: live and test.
	Environments []nexus.Environment
	// TrustedProxies whose X-Forwarded-For is believed. Optional. Default: none.
	TrustedProxies []netip.Prefix
	// JWT verifies service tokens. Optional: without it JWTs are invalid_token.
	JWT TokenVerifier
	// OAuth verifies nx_*_at_ access tokens. Optional.
	OAuth TokenVerifier
	// MaxAge bounds how long a cached verification is trusted even without
	// an invalidation message. Optional. Default: 5 minutes.
	MaxAge time.Duration
	// CacheSize bounds how many API keys are cached; the least recently
	// used go first. Optional. Default: DefaultCacheSize.
	CacheSize int
	// OutageGrace is how long cached API-key verifications are still
	// trusted once the invalidation channel is lost (a database outage):
	// requests with a key used recently keep being authenticated, then
	// every key needs the database again. Optional. Default:
	// DefaultOutageGrace.
	OutageGrace time.Duration
	// Logger. Optional. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock of the cache's ages and of requests without At.
	// Optional. Default: time.Now (tests set it).
	Now func() time.Time
}

// Authenticator turns requests into principals.
type Authenticator struct {
	keys    KeyStore
	served  [2]bool // indexed by envIndex
	trusted []netip.Prefix
	jwt     TokenVerifier
	oauth   TokenVerifier
	log     *slog.Logger
	cache   *keyCache
	touches chan string
	hits    atomic.Uint64
	misses  atomic.Uint64
	// loads makes concurrent misses of one key one lookup: after a restart
	// a burst of a partner's requests is one evaluation (and one lockout
	// slot), not one per request.
	loads singleflight.Group
	now   func() time.Time
}

// DefaultOutageGrace is Config.OutageGrace's default.
const DefaultOutageGrace = 30 * time.Second

// New returns an authenticator. Call Run to keep its cache fresh.
func New(cfg Config) *Authenticator {
	a := &Authenticator{
		keys: cfg.Keys, trusted: cfg.TrustedProxies, jwt: cfg.JWT, oauth: cfg.OAuth, log: cfg.Logger,
		touches: make(chan string, 4096), now: cfg.Now,
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	maxAge := cfg.MaxAge
	if maxAge == 0 {
		maxAge = 5 * time.Minute
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	grace := cfg.OutageGrace
	if grace == 0 {
		grace = DefaultOutageGrace
	}
	a.cache = newKeyCache(maxAge, size, grace, a.now)
	envs := cfg.Environments
	if len(envs) == 0 {
		envs = []nexus.Environment{nexus.Live, nexus.Test}
	}
	for _, e := range envs {
		a.served[envIndex(e)] = true
	}
	return a
}

func envIndex(e nexus.Environment) int {
	if e == nexus.Live {
		return 0
	}
	return 1
}

// Serves reports whether the deployment serves env.
func (a *Authenticator) Serves(env nexus.Environment) bool { return a.served[envIndex(env)] }

var (
	errMissing   = &nexus.Error{Code: nexus.CodeMissingCredentials, Message: "no credential: send an API key or token in the Authorization header"}
	errAmbiguous = &nexus.Error{Code: nexus.CodeAmbiguousCredentials, Message: "more than one credential in the request; send exactly one"}
	errMalformed = &nexus.Error{Code: nexus.CodeMalformedCredentials, Message: "the credential is not in a recognised format"}
	errChecksum  = &nexus.Error{Code: nexus.CodeMalformedCredentials, Message: "the credential's checksum does not match; check it was copied whole"}
	errNotAuth   = &nexus.Error{Code: nexus.CodeMalformedCredentials, Message: "this secret cannot authenticate requests"}
	errScheme    = &nexus.Error{Code: nexus.CodeMalformedCredentials, Message: "unsupported Authorization scheme; use Bearer or ApiKey"}
	errJWTHeader = &nexus.Error{Code: nexus.CodeMalformedCredentials, Message: "tokens go in Authorization: Bearer"}
	errUnknown   = &nexus.Error{Code: nexus.CodeInvalidAPIKey, Message: "invalid API key"}
	errBadToken  = &nexus.Error{Code: nexus.CodeInvalidToken, Message: "invalid token"}
	errSuspended = &nexus.Error{Code: nexus.CodeAPIKeySuspended, Message: "this API key is suspended"}
	errRevoked   = &nexus.Error{Code: nexus.CodeAPIKeyRevoked, Message: "this API key has been revoked"}
	errExpired   = &nexus.Error{Code: nexus.CodeAPIKeyExpired, Message: "this API key has expired"}
	errEnv       = &nexus.Error{Code: nexus.CodeEnvironmentNotServed, Message: "this deployment does not serve the credential's environment"}
	errPartner   = &nexus.Error{Code: nexus.CodePartnerNotApproved, Message: "the partner is not approved for this environment"}
	errIP        = &nexus.Error{Code: nexus.CodeIPNotAllowed, Message: "requests from this IP address are not allowed for this API key"}
	errOrigin    = &nexus.Error{Code: nexus.CodeOriginNotAllowed, Message: "requests from this origin are not allowed for this API key"}
)

// Authenticate verifies the request's credential and returns its principal.
// When it refuses a credential it knows (a suspended, revoked or expired
// key), it returns that key's principal beside the error so that the
// refusal can be logged for its partner; such a principal authorises
// nothing.
func (a *Authenticator) Authenticate(ctx context.Context, r *Request) (*nexus.Principal, error) {
	tok, apiKeyOnly, err := extract(r)
	if err != nil {
		return nil, err
	}
	if credential.LooksLike(tok) {
		// Keys and access tokens are both found by this digest.
		d := credential.Digest(tok)
		now := r.At
		if now.IsZero() {
			now = a.now()
		}
		// A cached key was well-formed when it was stored, and the digest
		// matches only that key: the hot path skips parsing.
		if e := a.cache.get(d, now); e != nil && e != missingEntry && e.matches(d) {
			a.hits.Add(1)
			return a.checkKey(e, now, r)
		}
		c, err := credential.Parse(tok)
		if err != nil {
			if errors.Is(err, credential.ErrChecksum) {
				return nil, errChecksum
			}
			return nil, errMalformed
		}
		switch c.Kind {
		case credential.KindSecretKey, credential.KindPublishableKey:
			return a.verifyKey(ctx, d, now, r)
		case credential.KindAccessToken:
			if apiKeyOnly {
				return nil, errJWTHeader
			}
			if a.oauth == nil {
				return nil, errBadToken
			}
			if dv, ok := a.oauth.(DigestVerifier); ok {
				return a.checkPrincipal(dv.VerifyDigest(ctx, tok, d))
			}
			return a.checkPrincipal(a.oauth.Verify(ctx, tok))
		}
		return nil, errNotAuth
	}
	if strings.Count(tok, ".") == 2 {
		if apiKeyOnly {
			return nil, errJWTHeader
		}
		if a.jwt == nil {
			return nil, errBadToken
		}
		return a.checkPrincipal(a.jwt.Verify(ctx, tok))
	}
	return nil, errMalformed
}

// checkPrincipal applies the tenant rules every credential kind shares.
func (a *Authenticator) checkPrincipal(p *nexus.Principal, err error) (*nexus.Principal, error) {
	if err != nil {
		return nil, err
	}
	if !a.served[envIndex(p.Environment)] {
		return nil, errEnv
	}
	if !p.Partner.Status.Allows(p.Environment) {
		return nil, errPartner
	}
	return p, nil
}

// extract finds the one credential among the four equivalent headers of
// CONTRACT §2, on every line of them. apiKeyOnly is set when it came from a
// header meant for API keys only, where a token is out of place.
func extract(r *Request) (tok string, apiKeyOnly bool, err error) {
	var f found
	if h := r.Authorization; h != "" {
		if err := f.authorization(h); err != nil {
			return "", false, err
		}
	}
	f.add(strings.TrimSpace(r.XAPIKey), true)
	f.add(strings.TrimSpace(r.XPartnerAPIKey), true)
	for _, h := range r.Repeated {
		switch {
		case h.Value == "":
		case strings.EqualFold(h.Name, HeaderAuthorization):
			if err := f.authorization(h.Value); err != nil {
				return "", false, err
			}
		default:
			f.add(strings.TrimSpace(h.Value), true)
		}
	}
	if f.ambiguous {
		return "", false, errAmbiguous
	}
	if f.n == 0 {
		return "", false, errMissing
	}
	return f.tok, f.keyOnly, nil
}

// found collects the credentials of a request's header lines.
type found struct {
	tok       string
	n         int
	keyOnly   bool // every line was of a header for API keys only
	ambiguous bool // two different credentials
}

func (f *found) add(v string, keyOnly bool) {
	if v == "" {
		return
	}
	if f.n > 0 && v != f.tok {
		f.ambiguous = true
	}
	if f.n == 0 || !keyOnly {
		f.keyOnly = keyOnly
	}
	f.tok = v
	f.n++
}

// authorization adds the credential of one Authorization line.
func (f *found) authorization(h string) error {
	scheme, v, ok := strings.Cut(h, " ")
	v = strings.TrimSpace(v)
	switch {
	case !ok || v == "":
		return errScheme
	case strings.EqualFold(scheme, "Bearer"):
		f.add(v, false)
	case strings.EqualFold(scheme, "ApiKey"):
		f.add(v, true)
	default:
		return errScheme
	}
	return nil
}

// verifyKey verifies a key Authenticate did not find in the cache (or
// found known-missing).
func (a *Authenticator) verifyKey(ctx context.Context, d [32]byte, now time.Time, r *Request) (*nexus.Principal, error) {
	e := a.cache.get(d, now)
	if e != nil {
		a.hits.Add(1)
	} else {
		v, err, _ := a.loads.Do(string(d[:]), func() (any, error) {
			done := func(bool) {}
			if r.Gate != nil {
				var err error
				if done, err = r.Gate.Admit(ctx, r); err != nil {
					return nil, err
				}
				r.Gated = true
			}
			a.misses.Add(1)
			e, err := a.load(ctx, d)
			if err != nil {
				done(false) // storage failed, not the credential
				return nil, err
			}
			// A known key refused for its status counts against itself,
			// not against the address (the caller counts it): only an
			// unknown key is the address's failure.
			done(e == nil || !e.matches(d))
			return e, nil
		})
		if err != nil {
			return nil, err
		}
		e, _ = v.(*entry)
	}
	if e == nil || !e.matches(d) {
		return nil, errUnknown
	}
	return a.checkKey(e, now, r)
}

// checkKey applies a verified key's status and restrictions.
func (a *Authenticator) checkKey(e *entry, now time.Time, r *Request) (*nexus.Principal, error) {
	switch {
	case e.status == statusSuspended:
		return e.principal, errSuspended
	case e.status == statusRevoked:
		return e.principal, errRevoked
	case e.expiresAt != 0 && now.UnixNano() >= e.expiresAt:
		return e.principal, errExpired
	}
	p, err := a.checkPrincipal(e.principal, nil)
	if err != nil {
		return nil, err
	}
	if len(e.ips) > 0 && !allowedIP(a.ClientIP(r), e.ips) {
		return nil, errIP
	}
	// A publishable key bound to origins is for their pages only: a
	// request without Origin is no browser's, so not one of those pages'.
	if len(e.origins) > 0 && (r.Origin != "" || p.OriginBound) && !allowedOrigin(r.Origin, e.origins) {
		return nil, errOrigin
	}
	a.touch(e, now)
	return p, nil
}

// ClientIP is the caller's address: the peer, unless the peer is a trusted
// proxy, in which case X-Forwarded-For is read from the right, skipping
// further trusted proxies (the left part is whatever the client claimed).
func (a *Authenticator) ClientIP(r *Request) netip.Addr {
	return ClientIP(r.RemoteIP, r.XForwardedFor, a.trusted)
}

// ClientIP implements Authenticator.ClientIP for any trust list.
func ClientIP(remote netip.Addr, xff string, trusted []netip.Prefix) netip.Addr {
	remote = remote.Unmap()
	if xff == "" || !contains(trusted, remote) {
		return remote
	}
	ip := remote
	for xff != "" {
		var part string
		if i := strings.LastIndexByte(xff, ','); i >= 0 {
			part, xff = xff[i+1:], xff[:i]
		} else {
			part, xff = xff, ""
		}
		addr, err := netip.ParseAddr(strings.TrimSpace(part))
		if err != nil {
			return ip
		}
		ip = addr.Unmap()
		if !contains(trusted, ip) {
			return ip
		}
	}
	return ip
}

func contains(list []netip.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func allowedIP(ip netip.Addr, list []netip.Prefix) bool { return ip.IsValid() && contains(list, ip) }

func allowedOrigin(origin string, list []string) bool {
	for _, o := range list {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
