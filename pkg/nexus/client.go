package nexus

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Defaults of a Client.
const (
	// DefaultTimeout bounds each attempt of a call (connecting, sending,
	// waiting for and reading the answer) when the Client makes its own
	// HTTP client; see WithTimeout. A call's retries each get their own, and
	// the call's context bounds the whole.
	DefaultTimeout    = 30 * time.Second
	DefaultMaxRetries = 3
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	defaultUserAgent  = "nexus-go"
	maxResponseBytes  = 16 << 20
)

// Client calls the Nexus partner API. It is safe for concurrent use. Its
// fields group the endpoints by resource: c.Requests.Create(ctx, …).
//
// Every call retries on 429, 500, 502, 503, 504 and on network errors, with
// exponential backoff and full jitter, waiting Retry-After when the answer
// carries one. Every call is safe to retry: GET and DELETE are idempotent,
// and each POST carries an Idempotency-Key, generated once per call and sent
// again on each of its retries, so a retried POST never acts twice.
type Client struct {
	Partner            *PartnerService
	Balances           *BalanceService
	Funding            *FundingService
	Addresses          *AddressService
	Requests           *RequestService
	APIKeys            *APIKeyService
	KeyPolicy          *KeyPolicyService
	ServiceCredentials *ServiceCredentialService
	OAuthClients       *OAuthClientService
	OAuthGrants        *OAuthGrantService
	Credentials        *CredentialService
	AuditEvents        *AuditEventService
	Usage              *UsageService
	TestHelpers        *TestHelperService

	baseURL     string
	baseErr     error // why baseURL cannot be used; every call returns it
	credential  string
	timeout     time.Duration
	tokenSource oauth2.TokenSource
	httpClient  *http.Client
	maxRetries  int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	userAgent   string

	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// jitter returns a random duration in [0, n]; tests may replace it.
	jitter func(n time.Duration) time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the API's base URL, such as "https://nexus.example.com"
// (an absolute http or https URL; a trailing slash is ignored). It is
// required: there is no default, so that a client never sends a credential
// to a server nobody chose.
func WithBaseURL(u string) Option {
	return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") }
}

// WithTimeout bounds each attempt of a call (default DefaultTimeout; 0 for
// none, leaving only the context's deadline). It applies to the Client's
// own HTTP client: one given with WithHTTPClient keeps its own Timeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = max(d, 0) }
}

// WithHTTPClient sets the HTTP client the Client sends requests with
// (default: a client with DefaultTimeout over http.DefaultTransport). An
// *http.Client from oauth2.Config.Client works too, with an empty
// credential. Give it a Timeout: a call waits as long as it lets it.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.httpClient = h
		}
	}
}

// WithMaxRetries sets how many times a call is retried after its first
// attempt (default 3; 0 disables retries).
func WithMaxRetries(n int) Option {
	return func(c *Client) { c.maxRetries = max(n, 0) }
}

// WithBackoff sets the retry backoff: the wait before retry n (from 0) is
// random in [0, min(max, min·2ⁿ)] (full jitter). max also caps the wait a
// Retry-After header asks for. Defaults: 500 ms and 30 s.
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return func(c *Client) {
		c.minBackoff = max(minDelay, 0)
		c.maxBackoff = max(maxDelay, c.minBackoff)
	}
}

// WithUserAgent sets the User-Agent header (default "nexus-go").
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithTokenSource authenticates every request with a token from ts
// (Authorization: <type> <access token>), asked for afresh on each attempt,
// so an OAuth token is refreshed when it expires. It takes precedence over
// the credential given to NewClient. Use it for OAuth access tokens
// (oauth2.Config.TokenSource) or for service JWTs minted on demand.
func WithTokenSource(ts oauth2.TokenSource) Option {
	return func(c *Client) { c.tokenSource = ts }
}

// NewClient returns a client of the Nexus at WithBaseURL (required)
// authenticating with credential, sent as "Authorization: Bearer
// <credential>": an API key (nx_<env>_sk_…), an OAuth access token or a
// service JWT. An empty credential sends no Authorization header (for an
// HTTP client that adds its own, or WithTokenSource).
//
// Without WithBaseURL, or with one that is not an absolute http or https
// URL, every call fails with an error saying so (ErrBaseURL), before
// sending anything.
func NewClient(credential string, opts ...Option) *Client {
	c := &Client{
		credential: credential,
		timeout:    DefaultTimeout,
		maxRetries: DefaultMaxRetries,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		userAgent:  defaultUserAgent,
		sleep:      sleepCtx,
		jitter:     fullJitter,
	}
	for _, o := range opts {
		o(c)
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: c.timeout}
	}
	c.baseErr = checkBaseURL(c.baseURL)
	c.Partner = &PartnerService{c}
	c.Balances = &BalanceService{c}
	c.Funding = &FundingService{c}
	c.Addresses = &AddressService{c}
	c.Requests = &RequestService{c}
	c.APIKeys = &APIKeyService{c}
	c.KeyPolicy = &KeyPolicyService{c}
	c.ServiceCredentials = &ServiceCredentialService{c}
	c.OAuthClients = &OAuthClientService{c}
	c.OAuthGrants = &OAuthGrantService{c}
	c.Credentials = &CredentialService{c}
	c.AuditEvents = &AuditEventService{c}
	c.Usage = &UsageService{c}
	c.TestHelpers = &TestHelperService{c}
	return c
}

// ErrBaseURL is the error of every call of a Client without a usable base
// URL (see WithBaseURL); errors.Is finds it.
var ErrBaseURL = errors.New("nexus: the client needs a base URL: NewClient(key, nexus.WithBaseURL(\"https://…\"))")

func checkBaseURL(base string) error {
	if base == "" {
		return ErrBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w (%q is not an absolute http or https URL)", ErrBaseURL, base)
	}
	return nil
}

// NewClientWithTokenSource returns a client authenticating every request
// with a token from ts (see WithTokenSource).
func NewClientWithTokenSource(ts oauth2.TokenSource, opts ...Option) *Client {
	return NewClient("", append([]Option{WithTokenSource(ts)}, opts...)...)
}

// RequestOption configures one call.
type RequestOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
	info           *ResponseInfo
}

// WithIdempotencyKey sends key as the POST's Idempotency-Key (1 to 255
// characters) instead of a generated one: reuse it when retrying the same
// logical operation later (after a crash, say) so that Nexus replays the
// first answer rather than acting twice. Ignored by GET and DELETE calls.
func WithIdempotencyKey(key string) RequestOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// ResponseInfo describes the last attempt of a call; see CaptureResponse.
type ResponseInfo struct {
	// StatusCode is the HTTP status of the last answer (0 if none came).
	StatusCode int
	// RequestID is the answer's X-Request-Id.
	RequestID string
	// IdempotencyKey is the key the POST was sent with.
	IdempotencyKey string
	// Replayed is true when Nexus replayed an earlier answer to the same
	// Idempotency-Key (Idempotent-Replayed: true).
	Replayed bool
	// Attempts is how many requests the call sent (1 + retries).
	Attempts int
	// Header is the header of the last answer.
	Header http.Header
}

// CaptureResponse fills *info with what the call's last answer said, error
// or not.
func CaptureResponse(info *ResponseInfo) RequestOption {
	return func(o *callOptions) { o.info = info }
}

// call describes one logical API call.
type call struct {
	method string
	path   string     // escaped
	query  url.Values // optional
	body   any        // optional, JSON-encoded
	out    any        // optional, JSON-decoded from a 2xx answer
}

// do runs a call with its retries.
func (c *Client) do(ctx context.Context, k call, opts []RequestOption) error {
	if c.baseErr != nil {
		return c.baseErr
	}
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	info := o.info
	if info == nil {
		info = new(ResponseInfo)
	}
	*info = ResponseInfo{}

	var payload []byte
	if k.body != nil {
		b, err := json.Marshal(k.body)
		if err != nil {
			return fmt.Errorf("nexus: encoding request body: %w", err)
		}
		payload = b
	}
	if k.method == http.MethodPost {
		info.IdempotencyKey = o.idempotencyKey
		if info.IdempotencyKey == "" {
			info.IdempotencyKey = NewIdempotencyKey()
		}
	}
	u := c.baseURL + k.path
	if len(k.query) > 0 {
		u += "?" + k.query.Encode()
	}

	for attempt := 0; ; attempt++ {
		info.Attempts = attempt + 1
		status, header, body, err := c.send(ctx, k.method, u, payload, info.IdempotencyKey)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil || !retryableNetErr(err) || attempt >= c.maxRetries {
				return err
			}
			wait = c.backoff(attempt)
		} else {
			info.StatusCode, info.Header = status, header
			info.RequestID = header.Get("X-Request-Id")
			info.Replayed = header.Get("Idempotent-Replayed") == "true"
			if status >= 200 && status < 300 {
				if k.out != nil && len(bytes.TrimSpace(body)) > 0 {
					if err := json.Unmarshal(body, k.out); err != nil {
						return fmt.Errorf("nexus: decoding %s %s answer (request %s): %w", k.method, k.path, info.RequestID, err)
					}
				}
				return nil
			}
			apiErr := decodeError(status, header, body)
			if !retryableStatus(status) || attempt >= c.maxRetries {
				return apiErr
			}
			err = apiErr
			if d, ok := retryAfter(header.Get("Retry-After"), time.Now()); ok {
				wait = min(d, c.maxBackoff)
			} else {
				wait = c.backoff(attempt)
			}
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("nexus: %w; last attempt: %w", serr, err)
		}
	}
}

// send makes one attempt.
func (c *Client) send(ctx context.Context, method, u string, payload []byte, idemKey string) (int, http.Header, []byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("nexus: %w", errPermanent{err})
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	switch {
	case c.tokenSource != nil:
		tok, err := c.tokenSource.Token()
		if err != nil {
			return 0, nil, nil, fmt.Errorf("nexus: getting a token: %w", errPermanent{err})
		}
		tok.SetAuthHeader(req)
	case c.credential != "":
		req.Header.Set("Authorization", "Bearer "+c.credential)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("nexus: reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// errPermanent marks an error no retry can cure.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

func retryableStatus(s int) bool {
	switch s {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableNetErr tells transport failures worth another attempt (a reset
// connection, a timeout, a refused dial) from ones that will not change
// (a bad URL, an untrusted certificate, a failing token source).
func retryableNetErr(err error) bool {
	var (
		perm     errPermanent
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &perm), errors.As(err, &unknown), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &verify):
		return false
	}
	return true
}

// backoff is the wait before retry n (from 0): full jitter over an
// exponentially growing ceiling.
func (c *Client) backoff(n int) time.Duration {
	ceil := c.minBackoff
	for i := 0; i < n && ceil < c.maxBackoff; i++ {
		ceil *= 2
	}
	return c.jitter(min(ceil, c.maxBackoff))
}

func fullJitter(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(n) + 1))
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// NewIdempotencyKey returns a fresh random key (a version 4 UUID from
// crypto/rand), as the Client generates for each POST.
func NewIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// pathf builds an escaped path: each argument is one path segment.
func pathf(format string, segs ...string) string {
	args := make([]any, len(segs))
	for i, s := range segs {
		args[i] = url.PathEscape(s)
	}
	return fmt.Sprintf(format, args...)
}
