package nexus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const testKey = "nx_test_sk_abcdefghijklmnopqrstuvwxyz0123000000"

// fakeSleeper records the waits a client asks for instead of sleeping.
type fakeSleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	// onSleep, if set, runs before each recorded wait.
	onSleep func()
}

func (s *fakeSleeper) sleep(ctx context.Context, d time.Duration) error {
	if s.onSleep != nil {
		s.onSleep()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return nil
}

func (s *fakeSleeper) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newTestClient serves h and returns a client on it whose sleeps are
// recorded, not slept.
func newTestClient(t *testing.T, h http.HandlerFunc, opts ...Option) (*Client, *fakeSleeper) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := NewClient(testKey, append([]Option{WithBaseURL(srv.URL)}, opts...)...)
	s := &fakeSleeper{}
	c.sleep = s.sleep
	return c, s
}

func writeError(w http.ResponseWriter, status int, typ, code, msg, param, reqID string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", reqID)
	w.WriteHeader(status)
	e := map[string]string{"type": typ, "code": code, "message": msg, "request_id": reqID}
	if param != "" {
		e["param"] = param
	}
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_ok")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var partnerJSON = map[string]any{
	"object": "partner", "id": "ptr_1", "name": "Acme", "status": "approved", "environment": "test",
	"created_at": "2025-01-02T03:04:05Z",
	"credential": map[string]any{"id": "key_1", "type": "api_key", "scopes": []string{"admin:all"}},
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	var n atomic.Int32
	c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			writeError(w, 429, ErrorTypeRateLimit, CodeRateLimited, "slow down", "", "req_429")
			return
		}
		writeJSON(w, 200, partnerJSON)
	})
	var info ResponseInfo
	p, err := c.Partner.Get(context.Background(), CaptureResponse(&info))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "ptr_1" || p.Credential.Type != "api_key" || p.Environment != EnvironmentTest {
		t.Errorf("partner = %+v", p)
	}
	if got := s.recorded(); len(got) != 1 || got[0] != time.Second {
		t.Errorf("waits = %v, want [1s] (Retry-After)", got)
	}
	if n.Load() != 2 || info.Attempts != 2 || info.StatusCode != 200 || info.RequestID != "req_ok" {
		t.Errorf("requests = %d, info = %+v", n.Load(), info)
	}
}

func TestRetryAfterCappedByMaxBackoff(t *testing.T) {
	var n atomic.Int32
	c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "120")
			writeError(w, 429, ErrorTypeRateLimit, CodeRateLimited, "slow down", "", "req_429")
			return
		}
		writeJSON(w, 200, partnerJSON)
	}, WithBackoff(time.Millisecond, 5*time.Second))
	if _, err := c.Partner.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.recorded(); len(got) != 1 || got[0] != 5*time.Second {
		t.Errorf("waits = %v, want [5s]", got)
	}
}

func TestRetry503ThenSuccess(t *testing.T) {
	var n atomic.Int32
	c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeError(w, 503, ErrorTypeAPI, CodeServiceUnavailable, "try later", "", "req_503")
			return
		}
		writeJSON(w, 200, map[string]any{"object": "balance", "currency": "btc", "available": 5, "pending": 1})
	}, WithBackoff(100*time.Millisecond, time.Second))
	b, err := c.Balances.Get(context.Background(), CurrencyBTC)
	if err != nil {
		t.Fatal(err)
	}
	if b.Available != 5 || b.Pending != 1 || b.Currency != CurrencyBTC {
		t.Errorf("balance = %+v", b)
	}
	got := s.recorded()
	if n.Load() != 2 || len(got) != 1 {
		t.Fatalf("requests = %d, waits = %v", n.Load(), got)
	}
	if got[0] < 0 || got[0] > 100*time.Millisecond {
		t.Errorf("first backoff %v outside full-jitter range [0, 100ms]", got[0])
	}
}

func TestRetriedStatuses(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503, 504} {
		var n atomic.Int32
		c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.WriteHeader(status)
				return
			}
			writeJSON(w, 200, partnerJSON)
		})
		if _, err := c.Partner.Get(context.Background()); err != nil || n.Load() != 2 {
			t.Errorf("status %d: err = %v, requests = %d; want a retry then success", status, err, n.Load())
		}
	}
}

func TestNoRetryOnOther4xx(t *testing.T) {
	cases := []struct {
		status int
		code   string
	}{
		{400, CodeParameterInvalid},
		{401, CodeInvalidAPIKey},
		{403, CodeInsufficientScope},
		{404, CodeResourceMissing},
		{409, CodeIdempotencyKeyInUse},
		{422, CodeInsufficientFunds},
	}
	for _, tc := range cases {
		var n atomic.Int32
		c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			writeError(w, tc.status, ErrorTypeInvalidRequest, tc.code, "no", "", "req_x")
		})
		_, err := c.Requests.Create(context.Background(), &RequestCreateParams{Amount: 1, Currency: CurrencyBTC, AddressID: "adr_1"})
		if !IsCode(err, tc.code) {
			t.Errorf("status %d: err = %v, want code %s", tc.status, err, tc.code)
		}
		if n.Load() != 1 || len(s.recorded()) != 0 {
			t.Errorf("status %d: %d requests, waits %v; want exactly one attempt", tc.status, n.Load(), s.recorded())
		}
	}
}

func TestGivesUpAfterMaxRetries(t *testing.T) {
	var n atomic.Int32
	c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		writeError(w, 503, ErrorTypeAPI, CodeServiceUnavailable, "down", "", fmt.Sprintf("req_%d", i))
	}, WithMaxRetries(3), WithBackoff(100*time.Millisecond, 250*time.Millisecond))
	c.jitter = func(d time.Duration) time.Duration { return d } // the ceiling, to check its growth

	_, err := c.Funding.Get(context.Background(), "fnd_1")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T %v, want *Error", err, err)
	}
	if e.Status != 503 || e.Code != CodeServiceUnavailable || e.Type != ErrorTypeAPI || e.RequestID != "req_4" {
		t.Errorf("error = %+v, want the last answer's (503 service_unavailable req_4)", e)
	}
	if n.Load() != 4 {
		t.Errorf("requests = %d, want 4 (1 + 3 retries)", n.Load())
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond}
	if got := s.recorded(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backoff ceilings = %v, want %v (doubling, capped)", got, want)
	}
}

func TestBackoffFullJitterRange(t *testing.T) {
	c := NewClient("", WithBackoff(10*time.Millisecond, 80*time.Millisecond))
	for n := range 6 {
		ceil := min(10*time.Millisecond<<n, 80*time.Millisecond)
		for range 200 {
			if d := c.backoff(n); d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, d, ceil)
			}
		}
	}
}

func TestIdempotencyKeyStableAcrossRetries(t *testing.T) {
	var (
		mu     sync.Mutex
		keys   []string
		bodies []string
		n      atomic.Int32
	)
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		bodies = append(bodies, string(b))
		mu.Unlock()
		if i := n.Add(1); i == 1 || i == 2 {
			writeError(w, 500, ErrorTypeAPI, CodeInternalError, "oops", "", "req_500")
			return
		}
		writeJSON(w, 201, map[string]any{"object": "request", "id": "prq_1", "status": "pending"})
	})
	ctx := context.Background()
	params := &RequestCreateParams{Amount: 100, Currency: CurrencyUSDC, AddressID: "adr_1"}
	var info ResponseInfo
	if _, err := c.Requests.Create(ctx, params, CaptureResponse(&info)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := append([]string(nil), keys...)
	if len(first) != 3 || first[0] == "" || first[0] != first[1] || first[1] != first[2] {
		t.Fatalf("keys over one call's retries = %q, want one key three times", first)
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("bodies differ between retries: %q", bodies)
	}
	mu.Unlock()
	if info.IdempotencyKey != first[0] || info.Attempts != 3 {
		t.Errorf("info = %+v", info)
	}
	if params.Type != "" {
		t.Errorf("Create modified the caller's params: %+v", params)
	}

	if _, err := c.Requests.Create(ctx, params); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Requests.Create(ctx, params, WithIdempotencyKey("order-42")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Requests.Get(ctx, "prq_1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if keys[3] == "" || keys[3] == first[0] {
		t.Errorf("second call's key %q, want a new one (first %q)", keys[3], first[0])
	}
	if keys[4] != "order-42" {
		t.Errorf("caller's key sent as %q", keys[4])
	}
	if keys[5] != "" {
		t.Errorf("GET sent Idempotency-Key %q", keys[5])
	}
}

func TestNewIdempotencyKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := NewIdempotencyKey()
		if len(k) != 36 || k[14] != '4' || strings.Count(k, "-") != 4 || seen[k] {
			t.Fatalf("key %q: not a fresh v4 UUID", k)
		}
		seen[k] = true
	}
}

func TestErrorDecoding(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, 422, ErrorTypeInvalidRequest, CodeInsufficientFunds,
			"available balance is too low", "amount", "req_abc")
	})
	_, err := c.Requests.Create(context.Background(), &RequestCreateParams{Amount: 1, Currency: CurrencyBTC, AddressID: "adr_1"})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T, want *Error", err)
	}
	want := Error{Status: 422, Type: ErrorTypeInvalidRequest, Code: CodeInsufficientFunds,
		Message: "available balance is too low", Param: "amount", RequestID: "req_abc"}
	if *e != want {
		t.Errorf("error = %+v, want %+v", *e, want)
	}
	if !IsCode(err, CodeInsufficientFunds) || IsCode(err, CodeInvalidState) || IsCode(errors.New("x"), CodeInsufficientFunds) {
		t.Error("IsCode mismatch")
	}
	if !IsCode(fmt.Errorf("wrapped: %w", err), "insufficient_funds") {
		t.Error("IsCode does not see through wrapping")
	}
	msg := err.Error()
	for _, part := range []string{"422", "insufficient_funds", "available balance is too low", "amount", "req_abc"} {
		if !strings.Contains(msg, part) {
			t.Errorf("Error() = %q, missing %q", msg, part)
		}
	}
}

func TestErrorDecodingWithoutEnvelope(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req_proxy")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		io.WriteString(w, "<html>bad gateway</html>")
	}, WithMaxRetries(0))
	_, err := c.Partner.Get(context.Background())
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T %v, want *Error", err, err)
	}
	if e.Status != 502 || e.Type != ErrorTypeAPI || e.Code != "" || e.RequestID != "req_proxy" || e.Message == "" {
		t.Errorf("error = %+v", e)
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, partnerJSON)
	}))
	defer srv.Close()
	var n atomic.Int32
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if n.Add(1) == 1 {
			return nil, errors.New("connection reset by peer")
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	c := NewClient(testKey, WithBaseURL(srv.URL), WithHTTPClient(&http.Client{Transport: rt}))
	s := &fakeSleeper{}
	c.sleep = s.sleep
	if _, err := c.Partner.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 || len(s.recorded()) != 1 {
		t.Errorf("attempts = %d, waits = %v", n.Load(), s.recorded())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestContextCancelStopsRetrying(t *testing.T) {
	var n atomic.Int32
	c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		writeError(w, 503, ErrorTypeAPI, CodeServiceUnavailable, "down", "", "req_1")
	}, WithMaxRetries(10))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.onSleep = cancel // the caller gives up during the first wait
	_, err := c.Addresses.List(ctx, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !IsCode(err, CodeServiceUnavailable) {
		t.Errorf("err = %v, want the last answer kept", err)
	}
	if n.Load() != 1 {
		t.Errorf("requests = %d, want 1", n.Load())
	}
}

func TestContextCancelInterruptsRealWait(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		writeError(w, 429, ErrorTypeRateLimit, CodeRateLimited, "slow down", "", "req_1")
	}))
	defer srv.Close()
	c := NewClient(testKey, WithBaseURL(srv.URL)) // the real sleeper
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Partner.Get(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call took %v despite the deadline", d)
	}
}

func TestCredentialHeader(t *testing.T) {
	var got atomic.Value
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("User-Agent"))
		writeJSON(w, 200, partnerJSON)
	}, WithUserAgent("acme-payouts/2"))
	if _, err := c.Partner.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "Bearer " + testKey + "|acme-payouts/2"; got.Load() != want {
		t.Errorf("headers = %q, want %q", got.Load(), want)
	}
}

type countingSource struct{ n atomic.Int32 }

func (s *countingSource) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", s.n.Add(1)), TokenType: "bearer"}, nil
}

func TestTokenSourceHeader(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		writeJSON(w, 200, partnerJSON)
	}))
	defer srv.Close()
	ts := &countingSource{}
	c := NewClientWithTokenSource(ts, WithBaseURL(srv.URL))
	for range 2 {
		if _, err := c.Partner.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(auths) != "[Bearer tok-1 Bearer tok-2]" {
		t.Errorf("Authorization headers = %q, want a token from the source per request", auths)
	}
}

func TestTokenSourceErrorNotRetried(t *testing.T) {
	var n atomic.Int32
	c, s := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { n.Add(1) },
		WithTokenSource(oauth2.ReuseTokenSource(nil, failingSource{})))
	_, err := c.Partner.Get(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refresh failed") {
		t.Fatalf("err = %v", err)
	}
	if n.Load() != 0 || len(s.recorded()) != 0 {
		t.Errorf("requests = %d, waits = %v; want none", n.Load(), s.recorded())
	}
}

type failingSource struct{}

func (failingSource) Token() (*oauth2.Token, error) { return nil, errors.New("refresh failed") }

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"0", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range cases {
		got, ok := retryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
