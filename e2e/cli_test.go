package e2e

import (
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
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

// serveIn starts `nexus serve args...` in dir with env (no backend's
// settings) on a free loopback port, retrying a port taken meanwhile.
func serveIn(dir string, env []string, args ...string) (*Server, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var addr string
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
		var s *Server
		s, err = launch(dir, env, addr, append(append([]string{"serve"}, args...), "--listen", addr)...)
		if err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

// runDemo starts `nexus serve --demo` in dir, follows the printed curl
// command, checks older keys still work, and stops the server.
func runDemo(t *testing.T, dir string, olderKeys ...string) demoRun {
	t.Helper()
	s, err := serveIn(dir, processEnv(), "--demo")
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

// `nexus migrate status|up|down` on a fresh database, in JSON. `down` rolls
// back one migration; `down --all` drops everything only with --yes.
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
		// refused runs a command that must fail and returns its stderr.
		refused := func(args ...string) string {
			t.Helper()
			out, errOut, err := runNexus(dir, env, args...)
			if err == nil {
				t.Fatalf("nexus %s succeeded, want a refusal: %s", strings.Join(args, " "), out)
			}
			return string(errOut)
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
		count := func(st map[string]bool, want bool) int {
			n := 0
			for _, v := range st {
				if v == want {
					n++
				}
			}
			return n
		}

		// Before `migrate up` there is nothing to use: status, down and the
		// admin commands say so and create nothing.
		if b.Name == "sqlite" {
			for _, args := range [][]string{{"migrate", "status"}, {"migrate", "down"}, {"admin", "partner", "list"}} {
				if e := refused(args...); !strings.Contains(e, "no Nexus database") || !strings.Contains(e, "nexus migrate up") {
					t.Errorf("nexus %s without a database: stderr %q, want it to say there is no database and to run nexus migrate up", strings.Join(args, " "), e)
				}
			}
			if _, err := os.Stat(strings.TrimPrefix(dbURL, "sqlite:")); !os.IsNotExist(err) {
				t.Fatalf("a command other than migrate up created the database file (stat: %v)", err)
			}
		} else {
			if st := status(); count(st, true) != 0 {
				t.Fatalf("fresh database: want nothing applied, got %v", st)
			}
			if e := refused("admin", "partner", "list"); !strings.Contains(e, "nexus migrate up") {
				t.Errorf("admin partner list on an empty database: stderr %q, want it to say to run nexus migrate up", e)
			}
		}
		db := OpenDB(t, dbURL)
		if b.Name == "postgres" && tableExists(t, b.Name, db, "bun_migrations") {
			t.Errorf("migrate status or an admin command wrote bun's tables into the empty database")
		}

		applied := names(run("migrate", "up"), "applied")
		st := status()
		if count(st, false) != 0 || !sameSet(applied, mapKeys(st)) {
			t.Errorf("migrate up applied %v; status after: %v", applied, st)
		}
		if !tableExists(t, b.Name, db, "api_keys") {
			t.Errorf("after up: no api_keys table")
		}
		if again := names(run("migrate", "up"), "applied"); len(again) != 0 {
			t.Errorf("a second up applied %v, want nothing", again)
		}

		// One step down: the last migration only.
		rolled := names(run("migrate", "down"), "rolled_back")
		if want := applied[len(applied)-1]; !slices.Equal(rolled, []string{want}) {
			t.Errorf("migrate down rolled back %v, want only the last migration %s", rolled, want)
		}
		st = status()
		if count(st, false) != 1 || st[rolled[0]] {
			t.Errorf("after one down: %v", st)
		}
		if !tableExists(t, b.Name, db, "api_keys") {
			t.Errorf("one step down dropped api_keys")
		}

		// Everything only with --yes.
		if e := refused("migrate", "down", "--all"); !strings.Contains(e, "--yes") {
			t.Errorf("migrate down --all without --yes: stderr %q, want it to ask for --yes", e)
		}
		if after := status(); count(after, false) != 1 || !tableExists(t, b.Name, db, "api_keys") {
			t.Errorf("the refused down --all changed the schema: %v", after)
		}
		if reapplied := names(run("migrate", "up"), "applied"); !slices.Equal(reapplied, rolled) {
			t.Errorf("up after down applied %v, want %v", reapplied, rolled)
		}
		all := names(run("migrate", "down", "--all", "--yes"), "rolled_back")
		if !sameSet(all, applied) {
			t.Errorf("down --all --yes rolled back %v, want %v", all, applied)
		}
		if st := status(); count(st, true) != 0 || tableExists(t, b.Name, db, "api_keys") {
			t.Errorf("after down --all --yes: %v (api_keys still there: %v)", st, tableExists(t, b.Name, db, "api_keys"))
		}

		if reapplied := names(run("migrate", "up"), "applied"); !sameSet(reapplied, applied) {
			t.Errorf("up after down --all applied %v, want %v", reapplied, applied)
		}
		if v := run("admin", "partner", "list"); v["object"] != "list" {
			t.Errorf("admin partner list on the migrated database: %v", v)
		}
	})
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// An admin command run in a folder with no database (the default is
// ./data/nexus.db) says so and fails; it used to create an empty database
// there and answer from it.
func TestAdminWithoutDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"admin", "partner", "list"},
		{"admin", "partner", "create", "--name", "Nowhere"},
		{"admin", "key", "list", "--partner", "ptr_00000000000000000000000000"},
		{"admin", "key", "revoke", "--partner", "ptr_00000000000000000000000000", "--id", "key_00000000000000000000000000"},
		{"admin", "rekey"},
		{"migrate", "status"},
		{"migrate", "down"},
	} {
		out, errOut, err := runNexus(dir, processEnv(), args...)
		if err == nil {
			t.Errorf("nexus %s succeeded with no database: %s", strings.Join(args, " "), out)
			continue
		}
		if e := string(errOut); !strings.Contains(e, "no Nexus database") || !strings.Contains(e, filepath.Join("data", "nexus.db")) ||
			!strings.Contains(e, "nexus migrate up") {
			t.Errorf("nexus %s: stderr %q, want it to name the missing database and say to run nexus migrate up", strings.Join(args, " "), e)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("commands run with no database left %v behind in the folder", entries)
	}
	// An explicit migrate up creates it; then the admin commands work.
	if out, errOut, err := runNexus(dir, processEnv(), "migrate", "up"); err != nil {
		t.Fatalf("migrate up: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := runNexus(dir, processEnv(), "admin", "partner", "list"); err != nil {
		t.Fatalf("admin partner list after migrate up: %v\n%s%s", err, out, errOut)
	}
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

		pk := b.CreateKeyWith(t, p.ID, "live", "publishable", "--scopes", "read:balances,read:funding", "--allowed-origins", "https://shop.example, http://localhost:3000")
		if !strings.HasPrefix(pk.Key, "nx_live_pk_") || !sameSet(pk.Scopes, []string{"read:balances", "read:funding"}) ||
			!sameSet(pk.AllowedOrigins, []string{"https://shop.example", "http://localhost:3000"}) {
			t.Errorf("admin key create --type publishable: %+v", pk)
		}
		wantStatus(t, partnerAs(t, b.Server(t), bearer(pk.Key).with("Origin", "http://localhost:3000")), 200)

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
			{[]string{"admin", "key", "create", "--partner", p.ID, "--environment", "live", "--type", "publishable"}, "parameter_missing"},
			{[]string{"admin", "key", "create", "--partner", p.ID, "--environment", "live", "--type", "publishable", "--allowed-origins", "shop.example"}, "parameter_invalid"},
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

// newMasterKey returns a random 32-byte key, base64.
func newMasterKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// A restart with another NEXUS_MASTER_KEY is refused with a message naming
// the variable (it used to start, then answer 500 to every HS256 token);
// rotation with NEXUS_MASTER_KEY_PREVIOUS and `nexus admin rekey` keeps
// every signing secret working.
func TestMasterKeyCheckAndRotation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		dbURL := b.FreshDatabaseURL(t)
		keyA, keyB := newMasterKey(t), newMasterKey(t)
		keys := func(current, previous string) []string {
			return []string{"NEXUS_DATABASE_URL=" + dbURL, "NEXUS_MASTER_KEY=" + current, "NEXUS_MASTER_KEY_PREVIOUS=" + previous}
		}
		cli := func(env []string, args ...string) []byte {
			t.Helper()
			out, errOut, err := runNexus(b.dir, b.env(env...), args...)
			if err != nil {
				t.Fatalf("nexus %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
			}
			return out
		}
		start := func(env []string) *Server {
			t.Helper()
			s, err := startServer(b, t.Name(), env)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			return s
		}
		stop := func(s *Server) {
			t.Helper()
			for _, p := range s.stopAndCheck() {
				t.Errorf("server %s: %s", s.URL, p)
			}
		}
		refused := func(env []string, what string) {
			t.Helper()
			s, err := startServer(b, t.Name(), env)
			if err == nil {
				stop(s)
				t.Fatalf("the server started %s", what)
			}
			if e := err.Error(); !strings.Contains(e, "NEXUS_MASTER_KEY does not match") || !strings.Contains(e, "nexus admin rekey") {
				t.Errorf("start %s: want a message naming NEXUS_MASTER_KEY and how to rotate, got: %v", what, err)
			}
			if strings.Contains(err.Error(), keyA) || strings.Contains(err.Error(), keyB) {
				t.Errorf("the refusal printed a master key")
			}
		}
		tokenWorks := func(s *Server, c stCred) {
			t.Helper()
			r := partnerAs(t, s, bearer(stMint(t, sdk.ServiceTokenParams{CredentialID: c.ID, Secret: c.Secret})))
			if r.Status != 200 || r.Str("credential.id") != c.ID {
				t.Errorf("an HS256 token of %s: %s", c.ID, r)
			}
		}

		s := start(keys(keyA, ""))
		var p Partner
		decodeJSON(t, "admin partner create", cli(keys(keyA, ""), "admin", "partner", "create", "--name", "mk "+randomHex(3), "--status", "approved"), &p)
		var admin Key
		decodeJSON(t, "admin key create", cli(keys(keyA, ""), "admin", "key", "create", "--partner", p.ID, "--environment", "test"), &admin)
		first := stHS256(t, s, admin.Key, "read:balances")
		tokenWorks(s, first)
		stop(s)

		refused(keys(keyB, ""), "with another NEXUS_MASTER_KEY")

		// Rotation: the new key, the old one as previous.
		s = start(keys(keyB, keyA))
		tokenWorks(s, first)
		second := stHS256(t, s, admin.Key, "read:balances")
		tokenWorks(s, second)
		stop(s)

		var res struct {
			Object       string         `json:"object"`
			Resealed     int            `json:"resealed"`
			FromPrevious int            `json:"from_previous_key"`
			Tables       map[string]int `json:"tables"`
		}
		decodeJSON(t, "admin rekey", cli(keys(keyB, keyA), "admin", "rekey"), &res)
		if res.Resealed != 2 || res.FromPrevious != 1 || res.Tables["service_credentials"] != 2 {
			t.Errorf("admin rekey counts %+v, want 2 resealed, 1 of them from the previous key", res)
		}

		// The previous key is no longer needed, and no longer accepted.
		s = start(keys(keyB, ""))
		tokenWorks(s, first)
		tokenWorks(s, second)
		stop(s)
		refused(keys(keyA, ""), "with the key rotated away")

		// A rekey with keys that do not open the secrets changes nothing.
		out, errOut, err := runNexus(b.dir, b.env(keys(newMasterKey(t), keyA)...), "admin", "rekey")
		if err == nil || !strings.Contains(string(errOut), "NEXUS_MASTER_KEY_PREVIOUS") {
			t.Errorf("rekey with unrelated keys: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		s = start(keys(keyB, ""))
		tokenWorks(s, first)
		stop(s)
	})
}

// The embedded SQLite default keeps its key in data/master.key; that key is
// checked too: a lost or replaced file is refused rather than replaced by a
// fresh key that opens nothing.
func TestMasterKeyFileCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "data", "master.key")
	start := func() (*Server, error) { return serveIn(dir, processEnv("NEXUS_LOG_FORMAT=json")) }
	stop := func(s *Server) {
		t.Helper()
		for _, p := range s.stopAndCheck() {
			t.Errorf("server %s: %s", s.URL, p)
		}
	}
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	original, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("the key file was not generated: %v", err)
	}
	var p Partner
	out, errOut, err := runNexus(dir, processEnv(), "admin", "partner", "create", "--name", "kf", "--status", "approved")
	if err != nil {
		t.Fatalf("admin partner create: %v\n%s", err, errOut)
	}
	decodeJSON(t, "admin partner create", out, &p)
	out, errOut, err = runNexus(dir, processEnv(), "admin", "key", "create", "--partner", p.ID, "--environment", "test")
	if err != nil {
		t.Fatalf("admin key create: %v\n%s", err, errOut)
	}
	var admin Key
	decodeJSON(t, "admin key create", out, &admin)
	hs := stHS256(t, s, admin.Key)
	stop(s)

	// Replaced by another key: refused, naming the file and the variable.
	if err := os.WriteFile(keyFile, []byte(newMasterKey(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := start(); err == nil {
		stop(s)
		t.Fatal("the server started with a replaced master key file")
	} else if e := err.Error(); !strings.Contains(e, keyFile) || !strings.Contains(e, "NEXUS_MASTER_KEY") || !strings.Contains(e, "does not match") {
		t.Errorf("a replaced key file: want a message naming %s and NEXUS_MASTER_KEY, got: %v", keyFile, err)
	}

	// Lost: refused, and no fresh key is written in its place.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if s, err := start(); err == nil {
		stop(s)
		t.Fatal("the server started without its master key file")
	} else if e := err.Error(); !strings.Contains(e, keyFile) || !strings.Contains(e, "missing") {
		t.Errorf("a lost key file: want a message naming %s as missing, got: %v", keyFile, err)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("a fresh key file was written over the lost one (stat: %v)", err)
	}

	// Restored: the stored secret opens again.
	if err := os.WriteFile(keyFile, original, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = start()
	if err != nil {
		t.Fatal(err)
	}
	r := partnerAs(t, s, bearer(stMint(t, sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret})))
	wantStatus(t, r, 200)
	stop(s)
}

// cliError runs a command that must fail and checks the JSON error on
// stderr carries code (and param, when given).
func cliError(t *testing.T, b *Backend, code, param string, args ...string) {
	t.Helper()
	out, errOut, err := b.RunCLI(args...)
	if err == nil {
		t.Errorf("nexus %s succeeded: %s", strings.Join(args, " "), out)
		return
	}
	var e struct {
		Error struct{ Code, Message, Param string } `json:"error"`
	}
	if jerr := json.Unmarshal(errOut, &e); jerr != nil || e.Error.Code != code || e.Error.Message == "" || (param != "" && e.Error.Param != param) {
		t.Errorf("nexus %s: want a JSON error %s (param %q) on stderr, got %q", strings.Join(args, " "), code, param, errOut)
	}
}

// An operator lists, suspends and revokes a partner's keys from the CLI,
// without an admin API key, through the same service as the API: the same
// audit events (actor "operator") and a running server refuses the key.
func TestAdminKeyCLI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		pid := tn.Partner.ID
		live := b.CreateKey(t, pid, "live", "secret")
		target := b.CreateKey(t, pid, "test", "secret", "read")
		other := b.NewTenant(t, "approved")

		list := func(args ...string) []Key {
			t.Helper()
			var l struct {
				Object string `json:"object"`
				Data   []Key  `json:"data"`
			}
			out := b.CLI(t, append([]string{"admin", "key", "list", "--partner", pid}, args...)...)
			decodeJSON(t, "admin key list", out, &l)
			if l.Object != "list" {
				t.Fatalf("admin key list: %s", out)
			}
			if strings.Contains(string(out), target.Key) || strings.Contains(string(out), `"key":`) {
				t.Fatalf("admin key list printed a plaintext key: %s", out)
			}
			return l.Data
		}
		ids := func(ks []Key) []string {
			out := []string{}
			for _, k := range ks {
				out = append(out, k.ID)
			}
			return out
		}
		if got := ids(list()); !sameSet(got, []string{tn.Admin.ID, live.ID, target.ID}) {
			t.Errorf("admin key list: %v, want the partner's three keys", got)
		}
		if got := ids(list("--environment", "live")); !slices.Equal(got, []string{live.ID}) {
			t.Errorf("admin key list --environment live: %v", got)
		}
		if got := list("--id", target.ID); len(got) != 1 || got[0].ID != target.ID || got[0].Status != "active" || got[0].Environment != "test" {
			t.Errorf("admin key list --id: %+v", got)
		}

		wantStatus(t, partnerAs(t, s, bearer(target.Key)), 200) // the server has it cached
		var k Key
		decodeJSON(t, "admin key suspend", b.CLI(t, "admin", "key", "suspend", "--partner", pid, "--id", target.ID), &k)
		if k.ID != target.ID || k.Status != "suspended" || k.Object != "api_key" {
			t.Errorf("admin key suspend answered %+v", k)
		}
		refusedWith := func(code string) {
			t.Helper()
			var last *Response
			if _, ok := poll(5*time.Second, 20*time.Millisecond, func() bool {
				last = partnerAs(t, s, bearer(target.Key))
				return last.Status == 401 && last.Str("error.code") == code
			}); !ok {
				t.Fatalf("the server does not refuse the key with %s: %s", code, last)
			}
		}
		refusedWith("api_key_suspended")
		if got := ids(list("--status", "suspended")); !slices.Equal(got, []string{target.ID}) {
			t.Errorf("admin key list --status suspended: %v", got)
		}

		decodeJSON(t, "admin key revoke", b.CLI(t, "admin", "key", "revoke", "--partner", pid, "--environment", "test", "--id", target.ID), &k)
		if k.ID != target.ID || k.Status != "revoked" {
			t.Errorf("admin key revoke answered %+v", k)
		}
		refusedWith("api_key_revoked")

		var types []string
		for _, a := range stAuditOf(t, b, pid, target.ID) {
			if a.Type == "api_key.suspended" || a.Type == "api_key.revoked" {
				types = append(types, a.Type)
				if a.Actor != "operator" || a.CredentialID != "" || a.Environment != "test" {
					t.Errorf("audit %s: actor %q credential %q environment %q, want the operator in test", a.Type, a.Actor, a.CredentialID, a.Environment)
				}
			}
		}
		if !slices.Equal(types, []string{"api_key.suspended", "api_key.revoked"}) {
			t.Errorf("audit events of the key: %v, want suspended then revoked", types)
		}

		// Refusals, with the API's codes.
		cliError(t, b, "invalid_state", "", "admin", "key", "revoke", "--partner", pid, "--id", target.ID)
		cliError(t, b, "resource_missing", "", "admin", "key", "revoke", "--partner", pid, "--environment", "test", "--id", live.ID)
		cliError(t, b, "resource_missing", "", "admin", "key", "suspend", "--partner", other.Partner.ID, "--id", tn.Admin.ID)
		cliError(t, b, "resource_missing", "", "admin", "key", "list", "--partner", "ptr_00000000000000000000000000")
		cliError(t, b, "parameter_missing", "id", "admin", "key", "revoke", "--partner", pid)
		cliError(t, b, "parameter_missing", "partner", "admin", "key", "list")
		cliError(t, b, "parameter_invalid", "id", "admin", "key", "revoke", "--partner", pid, "--id", "nx_test_sk_oops")
		cliError(t, b, "parameter_invalid", "environment", "admin", "key", "list", "--partner", pid, "--environment", "staging")
		cliError(t, b, "parameter_invalid", "status", "admin", "key", "list", "--partner", pid, "--status", "sleeping")
		// The other keys were left alone.
		wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key)), 200)
		if got := list("--id", live.ID); len(got) != 1 || got[0].Status != "active" {
			t.Errorf("the live key after the refusals: %+v", got)
		}

		// partner show and member list.
		var p Partner
		decodeJSON(t, "admin partner show", b.CLI(t, "admin", "partner", "show", "--id", pid), &p)
		if p.ID != pid || p.Name != tn.Partner.Name || p.Status != "approved" || p.Object != "partner" {
			t.Errorf("admin partner show: %+v, want %+v", p, tn.Partner)
		}
		cliError(t, b, "resource_missing", "", "admin", "partner", "show", "--id", "ptr_00000000000000000000000000")
		m := oaCreateMember(t, b, pid)
		oaCreateMember(t, b, other.Partner.ID)
		out := b.CLI(t, "admin", "member", "list", "--partner", pid)
		var ml struct {
			Object string `json:"object"`
			Data   []struct {
				Object, ID, PartnerID, Email string
			} `json:"data"`
		}
		decodeJSON(t, "admin member list", out, &ml)
		if ml.Object != "list" || len(ml.Data) != 1 || ml.Data[0].ID != m.ID || ml.Data[0].Email != m.Email || ml.Data[0].Object != "member" {
			t.Errorf("admin member list: %s, want only %s", out, m.ID)
		}
		if strings.Contains(string(out), "argon2") || strings.Contains(string(out), "password") {
			t.Errorf("admin member list shows password material: %s", out)
		}
	})
}

// A key the CLI revokes is refused by a running server that had it cached
// within 1 s (serial: it measures time; the measured delay is logged).
func TestCLIRevocationReachesServersWithinOneSecond(t *testing.T) {
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		s := b.NewServer(t)
		tn := b.NewTenant(t, "approved")
		for _, verb := range []string{"suspend", "revoke"} {
			k := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read")
			for i := 0; i < 3; i++ { // verified, then served from the cache
				wantStatus(t, partnerAs(t, s, bearer(k.Key)), 200)
			}
			b.CLI(t, "admin", "key", verb, "--partner", tn.Partner.ID, "--id", k.ID)
			var last *Response
			took, ok := poll(3*time.Second, 10*time.Millisecond, func() bool {
				last = partnerAs(t, s, bearer(k.Key))
				return last.Status != 200
			})
			if !ok {
				t.Fatalf("the server still accepts the key %s %s %s ago by the CLI: %s", k.ID, verb+"ed", took, last)
			}
			wantError(t, last, 401, map[string]string{"suspend": "api_key_suspended", "revoke": "api_key_revoked"}[verb])
			t.Logf("%s: the server refused the key %s %s after `nexus admin key %s` returned", b.Name, k.ID, took.Round(time.Millisecond), verb)
			if took >= time.Second {
				t.Errorf("the server refused the key %s after the CLI's %s, want < 1s", took, verb)
			}
		}
	})
}
