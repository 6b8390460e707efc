package e2e

import (
	"database/sql"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var curlLine = regexp.MustCompile(`curl -s (\S+) -H "([A-Za-z-]+): ([^"]+)"`)

// The newcomer's path (README): `nexus serve --demo` in an empty folder,
// with no configuration at all, prints a curl command that works.
func TestNewcomerDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	first := runDemo(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "data", "nexus.db")); err != nil {
		t.Errorf("the embedded database was not created in ./data: %v", err)
	}
	// A second start in the same folder reuses the demo partner and prints
	// a new key; the first key still works.
	second := runDemo(t, dir, first.key)
	if second.partner != first.partner {
		t.Errorf("second --demo made another partner: %s, first %s", second.partner, first.partner)
	}
	if second.key == first.key {
		t.Errorf("second --demo printed the same key")
	}
}

type demoRun struct{ partner, key string }

// runDemo starts `nexus serve --demo` in dir, follows the printed curl
// command, checks older keys still work, and stops the server.
func runDemo(t *testing.T, dir string, olderKeys ...string) demoRun {
	t.Helper()
	var s *Server
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var addr string
		if addr, err = freeAddr(); err != nil {
			t.Fatal(err)
		}
		s, err = launch(dir, processEnv(), addr, "serve", "--demo", "--listen", addr)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("nexus serve --demo: %v", err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("nexus serve --demo after SIGTERM: %v\n%s", err, s.Logs())
		}
	}()

	var m []string
	if _, ok := poll(10*time.Second, 20*time.Millisecond, func() bool {
		m = curlLine.FindStringSubmatch(s.Stdout())
		return m != nil
	}); !ok {
		t.Fatalf("no curl command on stdout:\n%s", s.Stdout())
	}
	target, header, value := m[1], m[2], m[3]
	if !strings.HasSuffix(target, "/v1/partner") {
		t.Errorf("the demo curl targets %s, want …/v1/partner", target)
	}
	r := do(t, "GET", target, H{header: value}, nil)
	wantStatus(t, r, 200)
	if r.Str("object") != "partner" || !strings.HasPrefix(r.Str("id"), "ptr_") || r.Str("status") != "approved" ||
		r.Str("environment") != "test" || r.Str("credential.type") != "api_key" {
		t.Errorf("the demo request answered %s", r)
	}
	if !strings.Contains(s.Stdout(), r.Str("id")) {
		t.Errorf("stdout does not name the demo partner %s:\n%s", r.Str("id"), s.Stdout())
	}
	key := strings.TrimPrefix(value, "Bearer ")
	if !strings.HasPrefix(key, "nx_test_sk_") {
		t.Errorf("the demo key %q is not a test secret key", key)
	}
	if strings.Contains(s.Logs(), key[11:41]) {
		t.Errorf("the demo key went to the log (stderr), not only to stdout")
	}
	base := strings.TrimSuffix(target, "/v1/partner")
	for _, k := range olderKeys {
		wantStatus(t, do(t, "GET", base+"/v1/partner", bearer(k), nil), 200)
	}
	return demoRun{partner: r.Str("id"), key: key}
}

// `nexus migrate status|up|down` on a fresh database, in JSON.
func TestMigrateCLI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		dbURL := b.FreshDatabaseURL(t)
		env := b.envFor(dbURL)
		dir := t.TempDir()
		run := func(args ...string) map[string]any {
			t.Helper()
			out, errOut, err := runNexus(dir, env, args...)
			if err != nil {
				t.Fatalf("nexus %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
			}
			var v map[string]any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("nexus %s: stdout is not a JSON object (%v): %s", strings.Join(args, " "), err, out)
			}
			return v
		}
		names := func(v map[string]any, field string) []string {
			t.Helper()
			arr, ok := v[field].([]any)
			if !ok {
				t.Fatalf("%q is not an array in %v", field, v)
			}
			out := []string{}
			for _, x := range arr {
				out = append(out, x.(string))
			}
			return out
		}
		status := func() map[string]bool {
			t.Helper()
			v := run("migrate", "status")
			arr, ok := v["migrations"].([]any)
			if !ok || len(arr) == 0 {
				t.Fatalf("migrate status: want a non-empty migrations array, got %v", v)
			}
			out := map[string]bool{}
			for _, x := range arr {
				m, _ := x.(map[string]any)
				name, _ := m["name"].(string)
				applied, ok := m["applied"].(bool)
				if name == "" || !ok {
					t.Fatalf("migrate status: entry %v lacks name or applied", x)
				}
				out[name] = applied
			}
			return out
		}
		all := func(st map[string]bool, want bool) bool {
			for _, v := range st {
				if v != want {
					return false
				}
			}
			return true
		}
		db := OpenDB(t, dbURL)

		before := status()
		if !all(before, false) {
			t.Fatalf("fresh database: want nothing applied, got %v", before)
		}
		var known []string
		for n := range before {
			known = append(known, n)
		}

		applied := names(run("migrate", "up"), "applied")
		if !sameSet(applied, known) {
			t.Errorf("migrate up applied %v, want %v", applied, known)
		}
		if st := status(); !all(st, true) {
			t.Errorf("after up: %v", st)
		}
		if !tableExists(t, b.Name, db, "api_keys") {
			t.Errorf("after up: no api_keys table")
		}
		if again := names(run("migrate", "up"), "applied"); len(again) != 0 {
			t.Errorf("a second up applied %v, want nothing", again)
		}

		rolled := names(run("migrate", "down"), "rolled_back")
		if len(rolled) == 0 || !slices.Contains(known, rolled[0]) {
			t.Errorf("migrate down rolled back %v, want some of %v", rolled, known)
		}
		st := status()
		for _, n := range rolled {
			if st[n] {
				t.Errorf("after down: %s still applied", n)
			}
		}
		if all(st, false) && tableExists(t, b.Name, db, "api_keys") {
			t.Errorf("everything rolled back but api_keys still exists")
		}

		reapplied := names(run("migrate", "up"), "applied")
		if !sameSet(reapplied, rolled) {
			t.Errorf("up after down applied %v, want %v", reapplied, rolled)
		}
		if st := status(); !all(st, true) {
			t.Errorf("after up again: %v", st)
		}
		if !tableExists(t, b.Name, db, "api_keys") {
			t.Errorf("after up again: no api_keys table")
		}
		if v := run("admin", "partner", "list"); v["object"] != "list" {
			t.Errorf("admin partner list on the migrated database: %v", v)
		}
	})
}

func tableExists(t *testing.T, dialect string, db *sql.DB, name string) bool {
	t.Helper()
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if dialect == "postgres" {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	}
	var n int
	if err := db.QueryRow(q, name).Scan(&n); err != nil {
		t.Fatalf("looking for table %s: %v", name, err)
	}
	return n > 0
}

// SIGTERM stops the server cleanly and promptly (exit status 0), with and
// without Redis.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		type variant struct {
			name string
			env  []string
		}
		variants := []variant{{"without redis", []string{"NEXUS_REDIS_URL="}}}
		if b.RedisURL != "" {
			variants = append(variants, variant{"with redis", nil})
		}
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				s, err := startServer(b, t.Name(), v.env)
				if err != nil {
					t.Fatal(err)
				}
				tn := b.NewTenant(t, "approved")
				wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key)), 200)

				for _, p := range s.stopAndCheck() {
					t.Errorf("after SIGTERM: %s", p)
				}
				if s.stopTook > 5*time.Second {
					t.Errorf("SIGTERM took %s to stop the server, want < 5s", s.stopTook)
				}
				if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
					c.Close()
					t.Errorf("%s still accepts connections after the server exited", s.Addr)
				}
			})
		}
	})
}

// The admin CLI answers in JSON (CONTRACT §6): the object on stdout, and on
// failure a non-zero exit with the contract's error code on stderr.
func TestAdminCLI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		out := b.CLI(t, "admin", "partner", "create", "--name", "Acme "+randomHex(3), "--status", "approved", "--rate-limit", "120")
		var p Partner
		decodeJSON(t, "admin partner create", out, &p)
		if !strings.HasPrefix(p.ID, "ptr_") || p.Status != "approved" || p.RateLimit != 120 {
			t.Errorf("admin partner create: %s", out)
		}
		dflt := b.CreatePartner(t, "pending")
		var list struct {
			Object string    `json:"object"`
			Data   []Partner `json:"data"`
		}
		decodeJSON(t, "admin partner list", b.CLI(t, "admin", "partner", "list"), &list)
		var ids []string
		for _, x := range list.Data {
			ids = append(ids, x.ID)
		}
		if list.Object != "list" || !slices.Contains(ids, p.ID) || !slices.Contains(ids, dflt.ID) {
			t.Errorf("admin partner list lacks %s or %s: %v", p.ID, dflt.ID, ids)
		}

		pk := b.CreateKey(t, p.ID, "live", "publishable", "read:balances")
		if !strings.HasPrefix(pk.Key, "nx_live_pk_") || !sameSet(pk.Scopes, []string{"read:balances"}) {
			t.Errorf("admin key create --type publishable: %+v", pk)
		}
		wantStatus(t, partnerAs(t, b.Server(t), bearer(pk.Key)), 200)

		for _, c := range []struct {
			args []string
			code string
		}{
			{[]string{"admin", "partner", "set-status", "--id", "ptr_00000000000000000000000000", "--status", "approved"}, "resource_missing"},
			{[]string{"admin", "partner", "set-status", "--id", p.ID, "--status", "sleeping"}, "parameter_invalid"},
			{[]string{"admin", "partner", "create", "--name", "x", "--status", "sleeping"}, "parameter_invalid"},
			{[]string{"admin", "key", "create", "--partner", "ptr_00000000000000000000000000", "--environment", "test"}, "resource_missing"},
			{[]string{"admin", "key", "create", "--partner", p.ID, "--environment", "staging"}, "parameter_invalid"},
			{[]string{"admin", "key", "create", "--partner", p.ID, "--environment", "test", "--type", "publishable", "--scopes", "write"}, "invalid_scopes"},
		} {
			stdout, stderr, err := b.RunCLI(c.args...)
			if err == nil {
				t.Errorf("nexus %s succeeded: %s", strings.Join(c.args, " "), stdout)
				continue
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if jerr := json.Unmarshal(stderr, &e); jerr != nil || e.Error.Code != c.code || e.Error.Message == "" {
				t.Errorf("nexus %s: want a JSON error %s on stderr, got %q", strings.Join(c.args, " "), c.code, stderr)
			}
		}
		// The refused set-status left the partner as it was.
		decodeJSON(t, "admin partner list", b.CLI(t, "admin", "partner", "list"), &list)
		for _, x := range list.Data {
			if x.ID == p.ID && x.Status != "approved" {
				t.Errorf("a refused set-status changed the partner: %+v", x)
			}
		}
	})
}
