package e2e

import (
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDBPoolSettingsRefused: a pool setting that is set but wrong stops
// `nexus serve` with a message naming the variable (issue 12.4).
func TestDBPoolSettingsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ env, name string }{
		{"NEXUS_DB_MAX_CONNS=abc", "NEXUS_DB_MAX_CONNS"},
		{"NEXUS_DB_MAX_CONNS=0", "NEXUS_DB_MAX_CONNS"},
		{"NEXUS_DB_MAX_IDLE_CONNS=-1", "NEXUS_DB_MAX_IDLE_CONNS"},
		{"NEXUS_DB_CONN_MAX_LIFETIME=ten", "NEXUS_DB_CONN_MAX_LIFETIME"},
		{"NEXUS_DB_CONN_MAX_LIFETIME=5", "NEXUS_DB_CONN_MAX_LIFETIME"},
	} {
		env := processEnv("NEXUS_DATABASE_URL=sqlite:"+dir+"/nexus.db", "NEXUS_LISTEN=127.0.0.1:0", tc.env)
		if tc.name != "NEXUS_DB_MAX_CONNS" {
			env = append(env, "NEXUS_DB_MAX_CONNS=4")
		}
		_, stderr, err := runNexus(dir, env, "serve")
		if err == nil || !strings.Contains(string(stderr), tc.name) {
			t.Errorf("serve with %s: %v, stderr %q; want a non-zero exit naming %s", tc.env, err, stderr, tc.name)
		}
	}
	env := processEnv("NEXUS_DATABASE_URL=sqlite:"+dir+"/nexus.db", "NEXUS_LISTEN=127.0.0.1:0",
		"NEXUS_DB_MAX_CONNS=4", "NEXUS_DB_MAX_IDLE_CONNS=8")
	if _, stderr, err := runNexus(dir, env, "serve"); err == nil || !strings.Contains(string(stderr), "NEXUS_DB_MAX_IDLE_CONNS") {
		t.Errorf("more idle than open connections: %v, stderr %q; want a refusal naming NEXUS_DB_MAX_IDLE_CONNS", err, stderr)
	}
}

// TestDBPoolMaxConns: under concurrent load a server with
// NEXUS_DB_MAX_CONNS=3 never holds more than 3 pooled connections to
// PostgreSQL (plus its two invalidation listeners).
func TestDBPoolMaxConns(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		b.RequirePostgres(t)
		fresh := b.FreshDatabaseURL(t)
		u, err := url.Parse(fresh)
		if err != nil {
			t.Fatal(err)
		}
		dbName := strings.TrimPrefix(u.Path, "/")
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := launch(b.dir, b.envFor(fresh, "NEXUS_LISTEN="+addr, "NEXUS_LOG_FORMAT=json",
			"NEXUS_DB_MAX_CONNS=3", "NEXUS_DB_MAX_IDLE_CONNS=2", "NEXUS_DB_CONN_MAX_LIFETIME=1m"), addr, "serve")
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			for _, p := range srv.stopAndCheck() {
				t.Errorf("server: %s", p)
			}
		}()
		cli := func(args ...string) []byte {
			out, errOut, err := runNexus(b.dir, b.envFor(fresh), args...)
			if err != nil {
				t.Fatalf("nexus %s: %v\n%s", strings.Join(args, " "), err, errOut)
			}
			return out
		}
		var p Partner
		decodeJSON(t, "partner", cli("admin", "partner", "create", "--name", "pool", "--status", "approved"), &p)
		var k Key
		decodeJSON(t, "key", cli("admin", "key", "create", "--partner", p.ID, "--environment", "test", "--type", "secret", "--name", "pool"), &k)

		admin := OpenDB(t, b.pgAdmin)
		var peak atomic.Int64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int64
				if err := admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, dbName).Scan(&n); err == nil && n > peak.Load() {
					peak.Store(n)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		api := lgClient(t, srv, k.Key, 32)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 15; i++ {
					r, err := api.send("POST", "/v1/addresses", map[string]any{"network": "ethereum", "address": lgEthAddr()}, nil)
					if err != nil || r.Status != 201 {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		<-sampled
		if n := failed.Load(); n > 0 {
			t.Errorf("%d of 480 requests failed", n)
		}
		// 3 pooled + 2 LISTEN connections (credential and balance caches).
		t.Logf("peak connections to the database: %d", peak.Load())
		if peak.Load() > 5 {
			t.Errorf("peak of %d connections with NEXUS_DB_MAX_CONNS=3, want at most 5 (3 pooled + 2 listeners)", peak.Load())
		}
	})
}
