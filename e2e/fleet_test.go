package e2e

// Protection across a fleet (CONTRACT §8): per-credential limits shared by
// every instance through Redis, revocations heard across instances, a Redis
// outage that degrades to local counts and recovers on its own, the
// failed-authentication lockout per client IP, and a graceful shutdown under
// load. The helpers of this file are prefixed fl so that they never collide
// with the harness's own.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/testsvc"
)

// ---------------------------------------------------------------------------
// Helpers

// flRedisURL is the Redis the fleet tests share, on every backend: the
// run's (NEXUS_TEST_REDIS_URL, else its container). Without one the test is
// skipped (failed under NEXUS_TEST_REQUIRE_SERVICES=1).
func flRedisURL(t *testing.T, b *Backend) string {
	t.Helper()
	u := b.RedisURL
	if u == "" {
		u = testRedis
	}
	if u == "" {
		if testsvc.Required() {
			t.Fatalf("NEXUS_TEST_REQUIRE_SERVICES=1 but no Redis: %s", noRedis)
		}
		t.Skipf("no Redis for the fleet: %s", noRedis)
	}
	return u
}

// flNewServer is b.NewServer whose shutdown problems (not exiting after
// SIGTERM, a log line that is not JSON, …) fail the test.
func flNewServer(t testing.TB, b *Backend, env ...string) *Server {
	t.Helper()
	s, err := startServer(b, t.Name(), env)
	if err != nil {
		t.Fatalf("starting a server (%s): %v", strings.Join(env, " "), err)
	}
	t.Cleanup(func() {
		for _, p := range s.stopAndCheck() {
			t.Errorf("server %s: %s", s.URL, p)
		}
	})
	return s
}

// flPartner makes an approved partner with a per-credential rate limit
// through `nexus admin partner create --rate-limit`.
func flPartner(t testing.TB, b *Backend, limit int) Partner {
	t.Helper()
	name := fmt.Sprintf("e2e %s %s", t.Name(), randomHex(3))
	out := b.CLI(t, "admin", "partner", "create", "--name", name, "--status", "approved", "--rate-limit", strconv.Itoa(limit))
	var p Partner
	decodeJSON(t, "admin partner create", out, &p)
	if !strings.HasPrefix(p.ID, "ptr_") || p.RateLimit != limit {
		t.Fatalf("admin partner create --rate-limit %d: unexpected partner %s", limit, out)
	}
	return p
}

// flClient is an HTTP client from t's source address with at most conns
// connections, closed before the test's servers stop (a connection dialled
// but never used would hold up their graceful shutdown).
func flClient(t testing.TB, conns int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: sourceIP(t).AsSlice()}}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     5 * time.Second,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 20 * time.Second, Transport: tr}
}

// flSend is do for any goroutine: it returns transport errors instead of
// failing the test.
func flSend(c *http.Client, method, rawURL string, h H, body any) (*Response, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, ctype = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &Response{Method: method, URL: rawURL, Status: resp.StatusCode, Header: resp.Header, Body: data}
	for _, k := range []string{"Authorization", "X-API-Key", "X-Partner-API-Key"} {
		if req.Header.Get(k) != "" {
			r.sentCredential = true
		}
	}
	_ = json.Unmarshal(data, &r.JSON)
	return r, nil
}

// flWaitWindow makes sure at least need is left of the current one-minute
// rate-limit window (the server counts in fixed windows aligned to the
// minute), waiting for the next window otherwise.
func flWaitWindow(t testing.TB, need time.Duration) {
	t.Helper()
	now := time.Now()
	left := now.Truncate(time.Minute).Add(time.Minute).Sub(now)
	if left < need {
		t.Logf("waiting %s for a fresh rate-limit window", (left + 200*time.Millisecond).Round(time.Millisecond))
		time.Sleep(left + 200*time.Millisecond)
	}
}

// flBurst sends n GET /v1/partner with key from workers goroutines at once,
// request i to servers[i % len(servers)]. Transport errors fail the test.
func flBurst(t testing.TB, c *http.Client, servers []*Server, key string, n, workers int) (rs []*Response, per [][]*Response) {
	t.Helper()
	rs = make([]*Response, n)
	errs := make([]error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				rs[i], errs[i] = flSend(c, "GET", servers[i%len(servers)].URL+"/v1/partner", bearer(key), nil)
			}
		}()
	}
	wg.Wait()
	per = make([][]*Response, len(servers))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, servers[i%len(servers)].URL, err)
		}
		per[i%len(servers)] = append(per[i%len(servers)], rs[i])
	}
	return rs, per
}

// flHeaderInt reads an integer header, failing the test when it is not one.
func flHeaderInt(t testing.TB, r *Response, name string) int {
	t.Helper()
	v, err := strconv.Atoi(r.Header.Get(name))
	if err != nil {
		t.Fatalf("%s: header %s = %q, want an integer", r, name, r.Header.Get(name))
	}
	return v
}

// flWantLimited checks a 429 rate_limited answer of a credential limit.
func flWantLimited(t testing.TB, r *Response, limit int) {
	t.Helper()
	wantError(t, r, 429, "rate_limited")
	if ra := flHeaderInt(t, r, "Retry-After"); ra < 1 || ra > 60 {
		t.Errorf("%s: Retry-After %d, want 1..60", r, ra)
	}
	if l := flHeaderInt(t, r, "RateLimit-Limit"); l != limit {
		t.Errorf("%s: RateLimit-Limit %d, want %d", r, l, limit)
	}
	if rem := flHeaderInt(t, r, "RateLimit-Remaining"); rem != 0 {
		t.Errorf("%s: RateLimit-Remaining %d on a refusal, want 0", r, rem)
	}
}

// flCheckShared checks a burst against one credential limit shared by every
// server: exactly limit successes, whose RateLimit-Remaining values are
// limit-1 … 0 each once (every server saw the one shared count), and
// refusals for the rest.
func flCheckShared(t testing.TB, rs []*Response, limit int) {
	t.Helper()
	var remaining []int
	for _, r := range rs {
		switch r.Status {
		case 200:
			if l := flHeaderInt(t, r, "RateLimit-Limit"); l != limit {
				t.Errorf("%s: RateLimit-Limit %d, want %d", r, l, limit)
			}
			if reset := flHeaderInt(t, r, "RateLimit-Reset"); reset < 1 || reset > 60 {
				t.Errorf("%s: RateLimit-Reset %d, want 1..60", r, reset)
			}
			remaining = append(remaining, flHeaderInt(t, r, "RateLimit-Remaining"))
		case 429:
			flWantLimited(t, r, limit)
		default:
			t.Fatalf("unexpected answer in a rate-limit burst: %s", r)
		}
	}
	if len(remaining) != limit {
		t.Fatalf("%d of %d requests succeeded across the fleet, want exactly the limit %d", len(remaining), len(rs), limit)
	}
	slices.Sort(remaining)
	for i, v := range remaining {
		if v != i {
			t.Fatalf("RateLimit-Remaining of the successes: %v, want each of 0..%d once (one shared count)", remaining, limit-1)
		}
	}
}

// flStatusCount counts answers by status.
func flStatusCount(rs []*Response) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

// flFakeKey is a well-formed API key (right shape and checksum) that was
// never issued.
func flFakeKey(env, kind string) string {
	const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var sb strings.Builder
	sb.WriteString("nx_" + env + "_" + kind + "_")
	for i := 0; i < 30; i++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(62))
		sb.WriteByte(b62[n.Int64()])
	}
	return sb.String() + flChecksum(sb.String())
}

// flChecksum is CONTRACT §2's checksum: CRC-32 (IEEE) in base62, 6 chars.
func flChecksum(s string) string {
	const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := uint64(crc32.ChecksumIEEE([]byte(s)))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = b62[sum%62]
		sum /= 62
	}
	return string(out)
}

// flRandomIP is a random address of 198.18.0.0/15 (RFC 2544, never a real
// client): lockout counts may outlive a run in a shared Redis, so every run
// locks out addresses of its own.
func flRandomIP() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("198.%d.%d.%d", 18+b[0]%2, b[1], 1+b[2]%254)
}

// flRedisServer is a throwaway Redis of one test, without persistence,
// that the test may kill and restart on the same address: a redis-server
// process when the binary is installed, else a container (testsvc).
type flRedisServer struct {
	t    testing.TB
	port string
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer

	ctr *testsvc.RedisContainer // instead of the process
}

func flStartRedis(t *testing.T) *flRedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		ctr, cerr := testsvc.StartRedis(t.Context())
		if cerr != nil {
			why := fmt.Sprintf("no redis-server binary and no Redis container (%v): this test starts (and kills) a Redis of its own", cerr)
			if testsvc.Required() {
				t.Fatal("NEXUS_TEST_REQUIRE_SERVICES=1 but " + why)
			}
			t.Skip(why)
		}
		t.Cleanup(func() {
			if err := ctr.Terminate(); err != nil {
				t.Logf("removing the Redis container: %v", err)
			}
		})
		t.Logf("Redis of the test: a container at %s", ctr.URL())
		return &flRedisServer{t: t, ctr: ctr}
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	r := &flRedisServer{t: t, port: port}
	r.start(bin)
	t.Cleanup(r.kill)
	return r
}

func (r *flRedisServer) URL() string {
	if r.ctr != nil {
		return r.ctr.URL()
	}
	return "redis://127.0.0.1:" + r.port + "/0"
}

func (r *flRedisServer) start(bin string) {
	r.t.Helper()
	r.out = &syncBuffer{}
	r.done = make(chan struct{})
	r.cmd = exec.Command(bin, "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--enable-debug-command", "local") // DEBUG SLEEP freezes it
	r.cmd.Dir = r.t.TempDir()
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	setProcAttr(r.cmd)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	done := r.done
	go func() { _ = r.cmd.Wait(); close(done) }()
	// Ready when it answers PING (bounded), or failed when it exits.
	if _, ok := poll(10*time.Second, 20*time.Millisecond, func() bool {
		select {
		case <-done:
			return true
		default:
		}
		return pingRedis(r.t.Context(), r.URL()) == nil
	}); !ok || r.exited() {
		r.kill()
		r.t.Fatalf("redis-server on port %s did not answer within 10 s:\n%s", r.port, r.out.String())
	}
}

func (r *flRedisServer) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// kill kills the server (SIGKILL, as a crash would) and waits for it.
func (r *flRedisServer) kill() {
	if r.ctr != nil {
		if err := r.ctr.Kill(context.Background()); err != nil {
			r.t.Errorf("killing the Redis container: %v", err)
		}
		return
	}
	if r.cmd == nil || r.cmd.Process == nil || r.exited() {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// restart starts the killed Redis again, empty, on the same address.
func (r *flRedisServer) restart() {
	r.t.Helper()
	if r.ctr != nil {
		if err := r.ctr.Restart(r.t.Context()); err != nil {
			r.t.Fatalf("restarting the Redis container: %v", err)
		}
		return
	}
	r.start(r.cmd.Path)
}

// flLogCount counts the server's log lines containing s.
func flLogCount(s *Server, sub string) int { return strings.Count(s.Logs(), sub) }

// ---------------------------------------------------------------------------
// 1. A key's limit is shared by every instance

func TestFleetSharedRateLimit(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		redisURL := flRedisURL(t, b)
		const limit = 30
		p := flPartner(t, b, limit)
		k := b.CreateKey(t, p.ID, "test", "secret")
		a := flNewServer(t, b, "NEXUS_REDIS_URL="+redisURL)
		c := flNewServer(t, b, "NEXUS_REDIS_URL="+redisURL)
		hc := flClient(t, 16)
		flWaitWindow(t, 15*time.Second)

		// One at a time, alternating: each answer shows the count the other
		// instance left.
		var seq []*Response
		for i, s := range []*Server{a, c, a, c} {
			r, err := flSend(hc, "GET", s.URL+"/v1/partner", bearer(k.Key), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, r, 200)
			if rem := flHeaderInt(t, r, "RateLimit-Remaining"); rem != limit-1-i {
				t.Fatalf("request %d (server %s): RateLimit-Remaining %d, want %d (counts shared through Redis)", i+1, s.URL, rem, limit-1-i)
			}
			seq = append(seq, r)
		}

		// Then everything else at once, split across both.
		burst, per := flBurst(t, hc, []*Server{a, c}, k.Key, 80-len(seq), 16)
		flCheckShared(t, append(seq, burst...), limit)
		for i, rs := range per {
			t.Logf("server %d: %v", i, flStatusCount(rs))
		}
		if n := flStatusCount(per[0])[429]; n == 0 {
			t.Errorf("server A refused nothing: %v", flStatusCount(per[0]))
		}
		if n := flStatusCount(per[1])[429]; n == 0 {
			t.Errorf("server B refused nothing: %v", flStatusCount(per[1]))
		}

		// Another key of the same partner has a count of its own.
		other := b.CreateKey(t, p.ID, "test", "secret")
		r, err := flSend(hc, "GET", c.URL+"/v1/partner", bearer(other.Key), nil)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, r, 200)
		if rem := flHeaderInt(t, r, "RateLimit-Remaining"); rem != limit-1 {
			t.Errorf("a fresh key of the same partner: RateLimit-Remaining %d, want %d (limits are per credential)", rem, limit-1)
		}
	})
}

// ---------------------------------------------------------------------------
// 2. Revocation across instances, with and without Redis

func TestFleetRevocation(t *testing.T) { // serial: it measures a delay
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		for _, mode := range []string{"redis", "no redis"} {
			t.Run(mode, func(t *testing.T) {
				redisEnv := "NEXUS_REDIS_URL="
				if mode == "redis" {
					redisEnv += flRedisURL(t, b)
				}
				a := flNewServer(t, b, redisEnv)
				c := flNewServer(t, b, redisEnv)
				tn := b.NewTenant(t, "approved")
				for _, tc := range []struct {
					name, method, path, code string
				}{
					{"revoke", "POST", "/revoke", "api_key_revoked"},
					{"DELETE", "DELETE", "", "api_key_revoked"},
					{"suspend", "POST", "/suspend", "api_key_suspended"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						k := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read")
						for i := 0; i < 3; i++ { // B verifies it and caches the verification
							wantStatus(t, partnerAs(t, c, bearer(k.Key)), 200)
						}
						wantStatus(t, do(t, tc.method, a.URL+"/v1/api_keys/"+k.ID+tc.path, bearer(tn.Admin.Key), nil), 200)
						var last *Response
						took, ok := poll(3*time.Second, 25*time.Millisecond, func() bool {
							last = partnerAs(t, c, bearer(k.Key))
							return last.Status != 200
						})
						if !ok {
							t.Fatalf("server B still accepts %s %s on server A after %s: %s", k.ID, tc.name, took, last)
						}
						wantError(t, last, 401, tc.code)
						if took >= time.Second {
							t.Errorf("server B saw the %s after %s, want < 1s", tc.name, took)
						}
						t.Logf("%s: server B refused the key after %s", mode, took.Round(time.Millisecond))
					})
				}
			})
		}
	})
}

// ---------------------------------------------------------------------------
// 3. Redis outage: local limits with a warning, automatic recovery

func TestFleetRedisOutage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		rd := flStartRedis(t)
		const limit = 20
		p := flPartner(t, b, limit)
		healthy := b.CreateKey(t, p.ID, "test", "secret")
		outage := b.CreateKey(t, p.ID, "test", "secret")
		probe := b.CreateKey(t, p.ID, "test", "secret")
		after := b.CreateKey(t, p.ID, "test", "secret")
		fresh := b.CreateKey(t, p.ID, "test", "secret")
		a := flNewServer(t, b, "NEXUS_REDIS_URL="+rd.URL())
		c := flNewServer(t, b, "NEXUS_REDIS_URL="+rd.URL())
		fleet := []*Server{a, c}
		hc := flClient(t, 8)
		send := func(s *Server, key string) *Response {
			t.Helper()
			r, err := flSend(hc, "GET", s.URL+"/v1/partner", bearer(key), nil)
			if err != nil {
				t.Fatalf("GET /v1/partner on %s: %v", s.URL, err)
			}
			if r.Status >= 500 {
				t.Fatalf("a server failed a request: %s", r)
			}
			return r
		}

		// Healthy: one count for both.
		flWaitWindow(t, 10*time.Second)
		for i := 0; i < 6; i++ {
			r := send(fleet[i%2], healthy.Key)
			wantStatus(t, r, 200)
			if rem := flHeaderInt(t, r, "RateLimit-Remaining"); rem != limit-1-i {
				t.Fatalf("healthy fleet, request %d: RateLimit-Remaining %d, want %d", i+1, rem, limit-1-i)
			}
		}

		// Redis dies.
		rd.kill()
		flWaitWindow(t, 15*time.Second)
		// Requests keep succeeding; each instance counts on its own.
		var onA []*Response
		for i := 0; i < limit+5; i++ {
			onA = append(onA, send(a, outage.Key))
		}
		var onC []*Response
		for i := 0; i < limit/2; i++ {
			onC = append(onC, send(c, outage.Key))
		}
		if got := flStatusCount(onA); got[200] != limit || got[429] != 5 {
			t.Errorf("Redis down, %d requests to server A: %v, want %d × 200 and 5 × 429 (local limit)", limit+5, got, limit)
		}
		for _, r := range onA[limit:] {
			flWantLimited(t, r, limit)
		}
		if got := flStatusCount(onC); got[200] != limit/2 {
			t.Errorf("Redis down, %d requests to server B after A's %d: %v, want all 200 (B counts locally)", limit/2, limit+5, got)
		}
		for _, s := range fleet {
			wantStatus(t, send(s, fresh.Key), 200)
		}
		for i, s := range fleet {
			if _, ok := poll(3*time.Second, 50*time.Millisecond, func() bool {
				return flLogCount(s, "shared store unavailable") > 0
			}); !ok {
				t.Errorf("server %d logged no \"shared store unavailable\" warning while Redis was down:\n%s", i, tail(s.Logs(), 3000))
			}
			for _, line := range s.LogLines() {
				if strings.Contains(fmt.Sprint(line.Fields["msg"]), "shared store unavailable") && line.Fields["level"] != "WARN" {
					t.Errorf("server %d: the fallback is logged at %v, want WARN: %v", i, line.Fields["level"], line.Fields)
				}
			}
		}

		// Redis comes back on the same address: the instances return to it
		// by themselves.
		rd.restart()
		took, ok := poll(15*time.Second, 300*time.Millisecond, func() bool {
			back := 0
			for _, s := range fleet {
				send(s, probe.Key) // any answer (a 429 too) touched the store
				if flLogCount(s, "shared store is back") > 0 {
					back++
				}
			}
			return back == len(fleet)
		})
		if !ok {
			t.Fatalf("the servers did not return to Redis within %s of its restart:\nA: %s\nB: %s", took, tail(a.Logs(), 2000), tail(c.Logs(), 2000))
		}
		t.Logf("both servers back on Redis %s after its restart", took.Round(time.Millisecond))

		flWaitWindow(t, 10*time.Second)
		var seq []*Response
		for i := 0; i < 4; i++ {
			r := send(fleet[i%2], after.Key)
			wantStatus(t, r, 200)
			if rem := flHeaderInt(t, r, "RateLimit-Remaining"); rem != limit-1-i {
				t.Fatalf("after recovery, request %d: RateLimit-Remaining %d, want %d (shared again)", i+1, rem, limit-1-i)
			}
			seq = append(seq, r)
		}
		burst, _ := flBurst(t, hc, fleet, after.Key, 26, 8)
		flCheckShared(t, append(seq, burst...), limit)
	})
}

// ---------------------------------------------------------------------------
// 4. Lockout after failed authentications

func TestLockoutFailedAuth(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		env := []string{"NEXUS_FAILED_AUTH_LIMIT=10", "NEXUS_TRUSTED_PROXIES=" + sourceIP(t).String()}
		s := flNewServer(t, b, env...)
		tn := b.NewTenant(t, "approved")
		if got := tn.Admin.Key[len(tn.Admin.Key)-6:]; got != flChecksum(tn.Admin.Key[:len(tn.Admin.Key)-6]) {
			t.Fatalf("the test's checksum (%s) does not match an issued key's (%s)", flChecksum(tn.Admin.Key[:len(tn.Admin.Key)-6]), got)
		}
		bad, good := flRandomIP(), flRandomIP()
		for good == bad {
			good = flRandomIP()
		}
		from := func(ip string, h H) H { return h.with("X-Forwarded-For", ip) }

		flWaitWindow(t, 15*time.Second)
		for i := 0; i < 10; i++ {
			wantError(t, partnerAs(t, s, from(bad, bearer(flFakeKey("test", "sk")))), 401, "invalid_api_key")
		}
		// The eleventh wrong key: the address is locked out.
		r := partnerAs(t, s, from(bad, bearer(flFakeKey("test", "sk"))))
		wantError(t, r, 429, "too_many_failed_attempts")

		// A valid key from the locked address is refused, in every header.
		for _, h := range []H{bearer(tn.Admin.Key), {"X-API-Key": tn.Admin.Key}, {"Authorization": "ApiKey " + tn.Admin.Key}} {
			r := partnerAs(t, s, from(bad, h))
			wantError(t, r, 429, "too_many_failed_attempts")
			ra := flHeaderInt(t, r, "Retry-After")
			left := int(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)).Seconds()) + 1
			if ra < 1 || ra > left+1 {
				t.Errorf("%s: Retry-After %d, want 1..%d (until the window ends)", r, ra, left+1)
			}
		}
		// … so is a write.
		wantError(t, do(t, "POST", s.URL+"/v1/addresses", from(bad, bearer(tn.Admin.Key)),
			map[string]any{"network": "ethereum", "address": "0x" + randomHex(20)}), 429, "too_many_failed_attempts")
		// A request without a credential is not credentialed: 401, not 429.
		wantError(t, partnerAs(t, s, H{"X-Forwarded-For": bad}), 401, "missing_credentials")
		// Public routes stay open.
		wantStatus(t, do(t, "GET", s.URL+"/healthz", H{"X-Forwarded-For": bad}, nil), 200)

		// Other addresses are not affected: another client behind the same
		// trusted proxy, and the proxy itself.
		wantStatus(t, partnerAs(t, s, from(good, bearer(tn.Admin.Key))), 200)
		wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key)), 200)
		// Without a trusted proxy X-Forwarded-For is not believed: a server
		// without NEXUS_TRUSTED_PROXIES sees this test's own address.
		untrusting := flNewServer(t, b, "NEXUS_FAILED_AUTH_LIMIT=10")
		wantStatus(t, partnerAs(t, untrusting, from(bad, bearer(tn.Admin.Key))), 200)

		if b.RedisURL != "" {
			// The failure count is in Redis: another instance refuses too.
			other := flNewServer(t, b, env...)
			wantError(t, partnerAs(t, other, from(bad, bearer(tn.Admin.Key))), 429, "too_many_failed_attempts")
			wantStatus(t, partnerAs(t, other, from(good, bearer(tn.Admin.Key))), 200)
		}
	})
}

// The lockout counts the address a trusted proxy saw, also when the proxy
// put it on an X-Forwarded-For line of its own below the client's.
func TestLockoutForwardedForLines(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b, "NEXUS_FAILED_AUTH_LIMIT=3", "NEXUS_TRUSTED_PROXIES="+sourceIP(t).String())
		tn := b.NewTenant(t, "approved")
		real, claimed := flRandomIP(), flRandomIP()
		for claimed == real {
			claimed = flRandomIP()
		}
		flWaitWindow(t, 10*time.Second)
		for i := 0; i < 3; i++ {
			h := bearer(flFakeKey("test", "sk")).with("X-Forwarded-For", lines(claimed, real))
			wantError(t, partnerAs(t, s, h), 401, "invalid_api_key")
		}
		wantError(t, partnerAs(t, s, bearer(tn.Admin.Key).with("X-Forwarded-For", real)), 429, "too_many_failed_attempts")
		wantError(t, partnerAs(t, s, bearer(tn.Admin.Key).with("X-Forwarded-For", lines(claimed, real))), 429, "too_many_failed_attempts")
		wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key).with("X-Forwarded-For", claimed)), 200)
	})
}

var flCSRFField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// Login failures count like failed authentications: after 10 wrong
// passwords from an address, API calls from it are refused too.
func TestLockoutLoginFailures(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b, "NEXUS_FAILED_AUTH_LIMIT=10", "NEXUS_TRUSTED_PROXIES="+sourceIP(t).String())
		tn := b.NewTenant(t, "approved")
		bad, good := flRandomIP(), flRandomIP()
		for good == bad {
			good = flRandomIP()
		}

		page := do(t, "GET", s.URL+"/login", H{"X-Forwarded-For": bad}, nil)
		wantStatus(t, page, 200)
		m := flCSRFField.FindSubmatch(page.Body)
		var cookie string
		for _, c := range (&http.Response{Header: page.Header}).Cookies() {
			if c.Name == "nexus_csrf" {
				cookie = c.Value
			}
		}
		if m == nil || cookie == "" {
			t.Fatalf("GET /login: no CSRF token and cookie: %s", page)
		}
		login := func(password string) *Response {
			form := url.Values{"csrf_token": {string(m[1])}, "email": {"nobody-" + randomHex(4) + "@example.com"}, "password": {password}}
			return do(t, "POST", s.URL+"/login", H{
				"X-Forwarded-For": bad, "Cookie": "nexus_csrf=" + cookie,
				"Content-Type": "application/x-www-form-urlencoded",
			}, form.Encode())
		}

		flWaitWindow(t, 15*time.Second)
		for i := 0; i < 10; i++ {
			wantStatus(t, login("wrong password "+strconv.Itoa(i)), 401)
		}
		r := login("yet another")
		wantStatus(t, r, 429)
		if ra := flHeaderInt(t, r, "Retry-After"); ra < 1 || ra > 60 {
			t.Errorf("%s: Retry-After %d", r, ra)
		}
		r = partnerAs(t, s, bearer(tn.Admin.Key).with("X-Forwarded-For", bad))
		wantError(t, r, 429, "too_many_failed_attempts")
		flHeaderInt(t, r, "Retry-After")
		wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key).with("X-Forwarded-For", good)), 200)
	})
}

// ---------------------------------------------------------------------------
// 6. SIGTERM under load

func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		p := flPartner(t, b, 1_000_000) // the load must not meet the limit
		k := b.CreateKey(t, p.ID, "test", "secret")
		// Without Redis: a server with Redis does not exit at all (see
		// TestFleetShutdownWithRedis).
		s := flNewServer(t, b, "NEXUS_REDIS_URL=")

		const workers = 16
		type result struct {
			status int
			rid    string
		}
		var (
			mu        sync.Mutex
			results   []result
			refused   atomic.Int64 // dial refused: the listener is closed
			otherErrs []string
			wg        sync.WaitGroup
		)
		stopped := make(chan struct{})
		start := time.Now()
		deadline := start.Add(2 * time.Second)
		for w := 0; w < workers; w++ {
			hc := flClient(t, 1) // one connection each: none dialled and left unused
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					select {
					case <-stopped:
						return
					default:
					}
					var r *Response
					var err error
					if i%2 == 0 {
						r, err = flSend(hc, "GET", s.URL+"/v1/balances", bearer(k.Key), nil)
					} else {
						// With an Idempotency-Key the client may safely resend a
						// POST whose connection the shutdown closed.
						r, err = flSend(hc, "POST", s.URL+"/v1/addresses",
							bearer(k.Key).with("Idempotency-Key", "shutdown-"+randomHex(8)),
							map[string]any{"network": "ethereum", "address": "0x" + randomHex(20)})
					}
					mu.Lock()
					switch {
					case err == nil:
						results = append(results, result{r.Status, r.Header.Get("X-Request-Id")})
						if r.Status >= 500 {
							otherErrs = append(otherErrs, "5xx: "+r.String())
						}
					case errors.Is(err, syscall.ECONNREFUSED):
						refused.Add(1)
						time.Sleep(5 * time.Millisecond)
					default:
						otherErrs = append(otherErrs, err.Error())
						time.Sleep(5 * time.Millisecond)
					}
					mu.Unlock()
				}
			}()
		}

		time.Sleep(time.Second)
		mu.Lock()
		before := len(results)
		mu.Unlock()
		sigterm := time.Now()
		stopErr := s.Stop()
		took := time.Since(sigterm)
		close(stopped)
		wg.Wait()

		if stopErr != nil {
			t.Errorf("nexus serve after SIGTERM under load: %v (after %s)\n%s", stopErr, took, tail(s.Logs(), 3000))
		} else if took > 10*time.Second {
			t.Errorf("nexus serve took %s to exit after SIGTERM, want < 10 s", took)
		}
		counts := map[int]int{}
		for _, r := range results {
			counts[r.status]++
		}
		t.Logf("%d answers before SIGTERM, %d in all %v; %d refused connections after close; exit after %s",
			before, len(results), counts, refused.Load(), took.Round(time.Millisecond))
		if before == 0 {
			t.Fatal("no request was answered before SIGTERM: no load to shut down under")
		}
		for _, e := range otherErrs {
			if strings.HasPrefix(e, "5xx: ") {
				t.Errorf("an answer with a server error during shutdown: %s", e)
			}
		}
		if n := len(otherErrs); n > 0 {
			t.Errorf("%d requests failed with neither an answer nor a refused connection (in-flight requests must finish), e.g. %q", n, otherErrs[0])
		}
		for _, want := range []string{"shutting down", "stopped"} {
			if !strings.Contains(s.Logs(), want) {
				t.Errorf("server log lacks %q", want)
			}
		}
		if strings.Contains(s.Logs(), "access log: batch write failed") {
			t.Errorf("access-log rows lost at shutdown:\n%s", tail(s.Logs(), 3000))
		}

		// Every answer the clients received has its access row: the batch
		// was flushed on the way out.
		db := OpenDB(t, b.URL)
		logged := map[string]int{}
		for _, e := range accessEntries(t, b, db, p.ID) {
			if e.CredentialID == k.ID {
				logged[e.RequestID] = e.Status
			}
		}
		ok2xx := 0
		var missing []result
		for _, r := range results {
			if r.status < 300 {
				ok2xx++
			}
			st, found := logged[r.rid]
			if !found {
				missing = append(missing, r)
			} else if st != r.status {
				t.Errorf("access row of %s: status %d, the client got %d", r.rid, st, r.status)
			}
		}
		if len(logged) < ok2xx {
			t.Errorf("%d access rows for the key, fewer than the %d successful answers", len(logged), ok2xx)
		}
		if len(missing) > 0 {
			t.Errorf("%d of %d answered requests have no access row (not flushed at shutdown), e.g. %+v", len(missing), len(results), missing[0])
		}
	})
}

// A server configured with Redis stops on SIGTERM like any other, and its
// log stays JSON while Redis is down.
func TestFleetShutdownWithRedis(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		t.Run("exits on SIGTERM", func(t *testing.T) {
			t.Parallel()
			redisURL := flRedisURL(t, b)
			s, err := startServer(b, t.Name(), []string{"NEXUS_REDIS_URL=" + redisURL})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.kill)
			tn := b.NewTenant(t, "approved")
			wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key)), 200)
			sourceFor(t).client.CloseIdleConnections()
			if err := s.Stop(); err != nil {
				t.Errorf("nexus serve with NEXUS_REDIS_URL after SIGTERM: %v\n%s", err, tail(s.Logs(), 2000))
			}
		})
		t.Run("JSON log while Redis is down", func(t *testing.T) {
			t.Parallel()
			rd := flStartRedis(t)
			s, err := startServer(b, t.Name(), []string{"NEXUS_REDIS_URL=" + rd.URL()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.kill)
			tn := b.NewTenant(t, "approved")
			hc := flClient(t, 1)
			rd.kill()
			for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
				r, err := flSend(hc, "GET", s.URL+"/v1/partner", bearer(tn.Admin.Key), nil)
				if err != nil || r.Status != 200 {
					t.Fatalf("Redis down: %v %v", r, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			var raw []string
			for _, l := range s.LogLines() {
				if l.Raw != "" {
					raw = append(raw, l.Raw)
				}
			}
			if len(raw) > 0 {
				t.Errorf("%d log lines are not JSON, e.g. %q", len(raw), raw[0])
			}
		})
	})
}
