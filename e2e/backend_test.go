package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
	_ "github.com/uptrace/bun/driver/sqliteshim" // registers "sqliteshim"
)

// Backend is one database the tests run against, with its lazily started
// shared server.
type Backend struct {
	Name       string // "sqlite" or "postgres"
	URL        string // NEXUS_DATABASE_URL of its servers and CLI runs
	RedisURL   string // NEXUS_REDIS_URL of its servers ("" for none)
	sqlitePath string
	pgAdmin    string
	dir        string // working directory for its processes

	once      sync.Once
	shared    *Server
	sharedErr error

	migrateOnce sync.Once
	migrateErr  error
}

// forEachBackend runs fn as a parallel subtest per backend: "sqlite", and
// "postgres" (skipped, with the reason, when there is none).
func forEachBackend(t *testing.T, fn func(t *testing.T, b *Backend)) {
	t.Helper()
	runBackends(t, true, fn)
}

// forEachBackendSerial runs fn on each backend in turn, never in parallel:
// a test measuring a delay (a revocation refused within 1 s) calls it from a
// test without t.Parallel, so that no other test's load is in the measure.
func forEachBackendSerial(t *testing.T, fn func(t *testing.T, b *Backend)) {
	t.Helper()
	runBackends(t, false, fn)
}

func runBackends(t *testing.T, parallel bool, fn func(t *testing.T, b *Backend)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		var b *Backend
		for _, x := range backends {
			if x.Name == name {
				b = x
			}
		}
		t.Run(name, func(t *testing.T) {
			if b == nil {
				t.Skipf("no %s backend: %s", name, noPostgres)
			}
			if parallel {
				t.Parallel()
			}
			fn(t, b)
		})
	}
}

// RequirePostgres skips the test on backends other than PostgreSQL.
func (b *Backend) RequirePostgres(t *testing.T) {
	t.Helper()
	if b.Name != "postgres" {
		t.Skipf("needs PostgreSQL (this is the %s backend)", b.Name)
	}
}

// Server returns the backend's shared server, starting it on first use. It
// is stopped when the whole run ends; tests must not change its settings.
func (b *Backend) Server(t testing.TB) *Server {
	t.Helper()
	b.once.Do(func() {
		b.shared, b.sharedErr = startServer(b, "shared-"+b.Name, nil)
	})
	if b.sharedErr != nil {
		t.Fatalf("starting the shared %s server: %v", b.Name, b.sharedErr)
	}
	return b.shared
}

func (b *Backend) stopShared() []string {
	if b.shared == nil {
		return nil
	}
	return b.shared.stopAndCheck()
}

// NewServer starts a dedicated server on the backend's database with extra
// NAME=VALUE environment; it is stopped (and must exit 0 with clean logs)
// when the test ends.
func (b *Backend) NewServer(t testing.TB, env ...string) *Server {
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

// processEnv is the environment of every nexus process: the test's own,
// less any NEXUS_* setting of the developer's shell, plus extra.
func processEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NEXUS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// testMasterKey encrypts stored signing secrets in every e2e server (32
// bytes, base64); PostgreSQL deployments require one.
const testMasterKey = "ZTJlLW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZy4uLi4="

func (b *Backend) env(extra ...string) []string { return b.envFor(b.URL, extra...) }

// envFor is the environment of a nexus process of this backend on dbURL.
func (b *Backend) envFor(dbURL string, extra ...string) []string {
	return processEnv(append([]string{"NEXUS_DATABASE_URL=" + dbURL, "NEXUS_MASTER_KEY=" + testMasterKey}, extra...)...)
}

// CLI runs `nexus args...` against the backend's database and returns its
// stdout; a non-zero exit fails the test.
func (b *Backend) CLI(t testing.TB, args ...string) []byte {
	t.Helper()
	out, errOut, err := b.RunCLI(args...)
	if err != nil {
		t.Fatalf("nexus %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// RunCLI runs `nexus args...` against the backend's database. Admin
// commands need a migrated database (they never create one), so the first
// call migrates it, as an operator would.
func (b *Backend) RunCLI(args ...string) (stdout, stderr []byte, err error) {
	b.migrateOnce.Do(func() {
		if out, errOut, err := runNexus(b.dir, b.env(), "migrate", "up"); err != nil {
			b.migrateErr = fmt.Errorf("nexus migrate up: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
	})
	if b.migrateErr != nil {
		return nil, nil, b.migrateErr
	}
	return runNexus(b.dir, b.env(), args...)
}

// runNexus runs the binary in dir with env (a full environment).
func runNexus(dir string, env []string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nexusBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// Partner is a partner as the CLI prints it.
type Partner struct {
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	RateLimit int    `json:"rate_limit"`
}

// Key is an API key as the CLI and the API show it; Key is set only in the
// answers that created it.
type Key struct {
	Object         string   `json:"object"`
	ID             string   `json:"id"`
	Type           string   `json:"type"`
	Environment    string   `json:"environment"`
	Name           string   `json:"name"`
	Prefix         string   `json:"prefix"`
	Last4          string   `json:"last4"`
	Scopes         []string `json:"scopes"`
	Status         string   `json:"status"`
	AllowedIPs     []string `json:"allowed_ips"`
	AllowedOrigins []string `json:"allowed_origins"`
	ExpiresAt      *string  `json:"expires_at"`
	ReplacedBy     *string  `json:"replaced_by"`
	Key            string   `json:"key"`
}

func decodeJSON(t testing.TB, what string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: not the JSON expected (%v): %s", what, err, data)
	}
}

// CreatePartner makes a partner with status through `nexus admin partner create`.
func (b *Backend) CreatePartner(t testing.TB, status string) Partner {
	t.Helper()
	name := fmt.Sprintf("e2e %s %s", t.Name(), randomHex(3))
	out := b.CLI(t, "admin", "partner", "create", "--name", name, "--status", status)
	var p Partner
	decodeJSON(t, "admin partner create", out, &p)
	if !strings.HasPrefix(p.ID, "ptr_") || p.Status != status || p.Name != name || p.Object != "partner" {
		t.Fatalf("admin partner create: unexpected partner %+v from %s", p, out)
	}
	return p
}

// SetPartnerStatus runs `nexus admin partner set-status`.
func (b *Backend) SetPartnerStatus(t testing.TB, id, status string) {
	t.Helper()
	out := b.CLI(t, "admin", "partner", "set-status", "--id", id, "--status", status)
	var p Partner
	decodeJSON(t, "admin partner set-status", out, &p)
	if p.ID != id || p.Status != status {
		t.Fatalf("admin partner set-status: got %+v, want id %s status %s", p, id, status)
	}
}

// CreateKey issues a key through `nexus admin key create` and returns it
// with its plaintext.
func (b *Backend) CreateKey(t testing.TB, partnerID, env, typ string, scopes ...string) Key {
	t.Helper()
	var flags []string
	if len(scopes) > 0 {
		flags = []string{"--scopes", strings.Join(scopes, ",")}
	}
	return b.CreateKeyWith(t, partnerID, env, typ, flags...)
}

// CreateKeyWith is CreateKey with more flags of `nexus admin key create`
// (--allowed-origins, --scopes).
func (b *Backend) CreateKeyWith(t testing.TB, partnerID, env, typ string, flags ...string) Key {
	t.Helper()
	args := append([]string{"admin", "key", "create", "--partner", partnerID, "--environment", env, "--type", typ, "--name", "e2e"}, flags...)
	out := b.CLI(t, args...)
	var k Key
	decodeJSON(t, "admin key create", out, &k)
	kind := map[string]string{"secret": "sk", "publishable": "pk"}[typ]
	if !strings.HasPrefix(k.ID, "key_") || !strings.HasPrefix(k.Key, "nx_"+env+"_"+kind+"_") ||
		k.Type != typ || k.Environment != env || k.Status != "active" {
		t.Fatalf("admin key create: unexpected key %s", out)
	}
	return k
}

// Tenant is a partner with a full-access test key, the usual start of a test.
type Tenant struct {
	Partner Partner
	Admin   Key // secret, test, admin:all
}

// NewTenant creates a partner with status and an admin test key.
func (b *Backend) NewTenant(t testing.TB, status string) Tenant {
	t.Helper()
	p := b.CreatePartner(t, status)
	return Tenant{Partner: p, Admin: b.CreateKey(t, p.ID, "test", "secret")}
}

// FreshDatabaseURL returns the URL of a new empty database of the backend's
// kind, removed when the test ends.
func (b *Backend) FreshDatabaseURL(t testing.TB) string {
	t.Helper()
	if b.Name == "sqlite" {
		return "sqlite:" + filepath.Join(t.TempDir(), "fresh.db")
	}
	u, drop, err := createDatabase(context.Background(), b.pgAdmin)
	if err != nil {
		t.Fatalf("fresh database: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("dropping the fresh database: %v", err)
		}
	})
	return u
}

// OpenDB opens a database URL (as NEXUS_DATABASE_URL spells it) directly,
// closed when the test ends.
func OpenDB(t testing.TB, dbURL string) *sql.DB {
	t.Helper()
	var db *sql.DB
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		var err error
		if db, err = sql.Open("sqliteshim", "file:"+path+"?_pragma=busy_timeout(10000)"); err != nil {
			t.Fatalf("open %s: %v", dbURL, err)
		}
	} else {
		db = sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dbURL)))
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("open %s: %v", dbURL, err)
	}
	return db
}

// SQL adapts ? placeholders to the backend's driver ($1, $2, … on PostgreSQL).
func (b *Backend) SQL(q string) string {
	if b.Name != "postgres" {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&sb, "$%d", n)
			continue
		}
		sb.WriteRune(c)
	}
	return sb.String()
}
