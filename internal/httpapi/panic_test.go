package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
)

// logBuffer collects a server's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the log records whose msg is msg.
func (l *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// serveLoopback serves srv on a loopback port until the test ends and
// returns its base URL. A panic that escaped a request would end the test
// binary.
func serveLoopback(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Listen(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return "http://" + ln.Addr().String()
}

// testKey makes an approved partner and a test secret key (admin:all).
func (e *testEnv) testKey(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	p, err := e.partners.Create(ctx, partner.CreateParams{Name: "panic test", Status: nexus.PartnerApproved})
	if err != nil {
		t.Fatal(err)
	}
	k, err := e.keys.Create(ctx, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}, apikey.CreateParams{})
	if err != nil {
		t.Fatal(err)
	}
	return k.Plain
}

type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, method, url, key, idemKey, body string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpAnswer{res.StatusCode, res.Header, b}
}

// wantInternalError checks a 500 internal_error whose request_id is its
// X-Request-Id, and returns that id.
func wantInternalError(t *testing.T, a httpAnswer) string {
	t.Helper()
	var env errEnvelope
	if err := json.Unmarshal(a.body, &env); err != nil || a.status != 500 || env.Error.Code != nexus.CodeInternalError {
		t.Fatalf("got %d %s, want 500 internal_error", a.status, a.body)
	}
	rid := a.header.Get("X-Request-Id")
	if !strings.HasPrefix(rid, "req_") || env.Error.RequestID != rid {
		t.Errorf("request_id %q, X-Request-Id %q: want the same req_ id", env.Error.RequestID, rid)
	}
	if env.Error.Type != "api_error" || strings.Contains(string(a.body), "nil pointer") || strings.Contains(string(a.body), "goroutine") {
		t.Errorf("the answer shows internals or the wrong type: %s", a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v: want Cache-Control no-store and X-Content-Type-Options nosniff", a.header)
	}
	return rid
}

// panicCount reads nexus_http_panics_total.
func panicCount(t *testing.T, e *testEnv) float64 {
	t.Helper()
	mfs, err := e.srv.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "nexus_http_panics_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("nexus_http_panics_total is not registered")
	return 0
}

// wantPanicLogged checks that the request's panic was logged exactly once,
// at ERROR, with its stack, and not again as an internal error.
func wantPanicLogged(t *testing.T, logs *logBuffer, rid, frame string) {
	t.Helper()
	n := 0
	for _, r := range logs.records(t, "panic serving a request") {
		if r["request_id"] != rid {
			continue
		}
		n++
		// A panic re-raised by a singleflight (the authenticator's key
		// loads) carries the original stack in its value.
		stack, _ := r["stack"].(string)
		value, _ := r["panic"].(string)
		if r["level"] != "ERROR" || !strings.Contains(stack+value, frame) {
			t.Errorf("panic record %v: want level ERROR and a stack through %s", r, frame)
		}
	}
	if n != 1 {
		t.Errorf("panic of %s logged %d times, want once", rid, n)
	}
	for _, r := range logs.records(t, "internal error") {
		if r["request_id"] == rid {
			t.Errorf("the panic was logged a second time: %v", r)
		}
	}
}

// A panic in a handler answers 500 internal_error with the request id, is
// logged once with its stack and counted, releases the request's
// idempotency key, and the server goes on serving.
func TestPanicInHandler(t *testing.T) {
	logs := new(logBuffer)
	e := newTestEnv(t, func(c *Config) {
		c.Ledger = nil // every ledger handler panics on its nil service
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	url := serveLoopback(t, e.srv)
	key := e.testKey(t)

	rid := wantInternalError(t, send(t, "GET", url+"/v1/balances", key, "", ""))
	wantPanicLogged(t, logs, rid, "(*Server).listBalances")
	if n := panicCount(t, e); n != 1 {
		t.Errorf("nexus_http_panics_total = %v, want 1", n)
	}
	if a := send(t, "GET", url+"/v1/partner", key, "", ""); a.status != 200 {
		t.Fatalf("after the panic: GET /v1/partner %d %s", a.status, a.body)
	}

	// The key of a request that panicked is not left in use: the retry
	// runs again (and panics again) instead of answering 409.
	body := `{"network":"ethereum","address":"0x52908400098527886E0F7030069857D2E4169EE7"}`
	wantInternalError(t, send(t, "POST", url+"/v1/addresses", key, "panic-1", body))
	wantInternalError(t, send(t, "POST", url+"/v1/addresses", key, "panic-1", body))
	if n := panicCount(t, e); n != 3 {
		t.Errorf("nexus_http_panics_total = %v, want 3", n)
	}
}

// panickyKeys is a key store that panics on a cache miss.
type panickyKeys struct{ auth.KeyStore }

func (panickyKeys) Lookup(context.Context, string) (*apikey.Row, error) {
	panic("key store exploded")
}

// A panic outside any handler (here in the authenticator, in the guard) is
// caught too.
func TestPanicOutsideHandler(t *testing.T) {
	logs := new(logBuffer)
	e := newTestEnv(t, func(c *Config) {
		c.Auth = auth.New(auth.Config{Keys: panickyKeys{}})
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	url := serveLoopback(t, e.srv)
	key := e.testKey(t)

	rid := wantInternalError(t, send(t, "GET", url+"/v1/partner", key, "", ""))
	wantPanicLogged(t, logs, rid, "panickyKeys.Lookup")
	if n := panicCount(t, e); n != 1 {
		t.Errorf("nexus_http_panics_total = %v, want 1", n)
	}
	if a := send(t, "GET", url+"/healthz", "", "", ""); a.status != 200 {
		t.Fatalf("after the panic: GET /healthz %d %s", a.status, a.body)
	}
}
