package e2e

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards a loopback port to a target address; down closes the
// port and every connection through it (the database refuses connections
// and drops the open ones), up opens the same port again.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.down(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[u] = struct{}{}, struct{}{}
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, u}, {u, c}} {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					_, _ = io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				}()
			}
		}
	}()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("reopening the proxy on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestDatabaseOutage makes PostgreSQL refuse connections under a running
// server: every request that needs the database answers 503
// service_unavailable with Retry-After (never 500), a key verified just
// before keeps working from the cache, the outage is logged at most once a
// second, and the server recovers when the database is back (issue 12.3).
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		b.RequirePostgres(t)
		u, err := url.Parse(b.URL)
		if err != nil {
			t.Fatal(err)
		}
		proxy := startTCPProxy(t, u.Host)
		u.Host = proxy.addr
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		ten := b.NewTenant(t, "approved")
		cold := b.CreateKey(t, ten.Partner.ID, "test", "secret")
		srv, err := launch(b.dir, b.envFor(u.String(), "NEXUS_LISTEN="+addr, "NEXUS_LOG_FORMAT=json"), addr, "serve")
		if err != nil {
			t.Fatal(err)
		}
		// The invalidation listener empties the caches once when it starts
		// hearing changes: cache the key after that.
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(srv.Logs(), "cache invalidation: listening"); {
			if time.Now().After(deadline) {
				t.Fatalf("the server's cache listeners did not start within 20 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		api := lgClient(t, srv, ten.Admin.Key, 8)
		api.get(t, "/v1/partner").want(t, 200, nil)

		proxy.down()
		// Wait until the invalidation listener noticed, twice (it may have
		// been about to start listening): the cached key must outlive that.
		noticed := func() int {
			l := srv.Logs()
			return strings.Count(l, "cache invalidation: channel lost") + strings.Count(l, "cache invalidation: listen failed")
		}
		for deadline := time.Now().Add(10 * time.Second); noticed() < 2; {
			if time.Now().After(deadline) {
				t.Fatalf("the server did not notice the lost database within 10 s:\n%s", srv.Logs()[:min(4000, len(srv.Logs()))])
			}
			time.Sleep(20 * time.Millisecond)
		}
		started := time.Now()
		type call struct {
			name         string
			api          *lgAPI
			method, path string
			body         any
			hdr          lgHdr
			want         int
		}
		calls := []call{
			{"cached key, no database needed", api, "GET", "/v1/partner", nil, nil, 200},
			{"cached key, balances", api, "GET", "/v1/balances", nil, nil, 503},
			{"cached key, idempotent withdrawal", api, "POST", "/v1/requests", lgWithdrawal(1, "usdc", "adr_x"), lgHdr{"Idempotency-Key": "outage"}, 503},
			{"cached key, withdrawal", api, "POST", "/v1/requests", lgWithdrawal(1, "usdc", "adr_x"), nil, 503},
			{"key never seen", api.as(cold.Key), "GET", "/v1/partner", nil, nil, 503},
			{"readiness", api.as(""), "GET", "/readyz", nil, nil, 503},
		}
		statuses := map[string]int{}
		const rounds = 20
		for i := 0; i < rounds; i++ {
			for _, c := range calls {
				r, err := c.api.send(c.method, c.path, c.body, c.hdr)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				statuses[fmt.Sprint(r.Status)]++
				if r.Status != c.want {
					t.Errorf("%s during the outage: %s, want %d", c.name, r, c.want)
					continue
				}
				if r.Status == 503 {
					if e, ok := r.apiErr(); !ok || e.Code != "service_unavailable" || r.Header.Get("Retry-After") == "" {
						t.Errorf("%s: %s with Retry-After %q, want service_unavailable and Retry-After", c.name, r, r.Header.Get("Retry-After"))
					}
				}
			}
		}
		took := time.Since(started)
		var hist []string
		for s, n := range statuses {
			hist = append(hist, fmt.Sprintf("%s×%d", s, n))
		}
		sort.Strings(hist)
		t.Logf("during the outage (%s): %s", took.Round(time.Millisecond), strings.Join(hist, " "))

		proxy.up(t)
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := api.send("GET", "/v1/balances", nil, nil)
			if err == nil && r.Status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no recovery within 20 s of the database's return: %v %v", r, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		api.as(cold.Key).get(t, "/v1/partner").want(t, 200, nil)

		problems := srv.stopAndCheck()
		for _, p := range problems {
			t.Errorf("server: %s", p)
		}
		lines := 0
		for _, l := range srv.LogLines() {
			if msg, _ := l.Fields["msg"].(string); strings.HasPrefix(msg, "database unavailable") {
				lines++
			}
		}
		// At most one line a second, with counts (plus the first).
		if max := int(took/time.Second) + 2; lines > max || lines == 0 {
			t.Errorf("%d 'database unavailable' log lines in %s, want 1 to %d", lines, took, max)
		}
	})
}
