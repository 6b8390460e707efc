package dashboard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/csrf"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
)

// benchWorld is a partner with 10,000 test keys and 1,000,000 access-log
// rows, and a signed-in owner: the dashboard at the size the issue names.
type benchWorld struct {
	app    *fiber.App
	cookie string
	keyID  string
}

const (
	benchKeys   = 10_000
	benchAccess = 1_000_000
)

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	ctx := context.Background()
	// Not storetest.OpenSQLite: its cleanup would close the database when
	// the first benchmark ends, and every benchmark of the run shares it.
	dir, err := os.MkdirTemp("", "nexus-dashboard-bench")
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "nexus.db"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.MigrateUp(ctx); err != nil {
		b.Fatal(err)
	}
	partners := partner.NewService(db)
	p, err := partners.Create(ctx, partner.CreateParams{Name: "Bench", Status: nexus.PartnerApproved})
	if err != nil {
		b.Fatal(err)
	}
	t := nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}
	keys := apikey.NewService(db)
	var keyID string
	for i := range benchKeys {
		k, err := keys.Create(ctx, t, apikey.CreateParams{Name: fmt.Sprintf("key %d", i), Scopes: []string{"read:balances"}})
		if err != nil {
			b.Fatal(err)
		}
		keyID = k.ID
	}
	// The access log as the server writes it: batches of 5,000.
	log := audit.NewAccessLog(db, 10_000, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now().Add(-20 * time.Hour)
	for i := 0; i < benchAccess; i += 5000 {
		for j := range 5000 {
			n := i + j
			log.Add(audit.Access{Tenant: t, CredentialID: keyID, Actor: keyID, Method: "GET", Path: "/v1/balances",
				Status: 200 + 200*(n%7/6), IP: "192.0.2.1", RequestID: nexus.NewID("req"),
				At: start.Add(time.Duration(n) * 72 * time.Millisecond)})
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		log.Run(cctx, time.Hour) // flushes what is queued and returns
	}
	svc := oauth.NewService(db)
	if _, err := svc.CreateMemberWithRole(ctx, p.ID, "bench@example.test", "a long bench password", oauth.Owner); err != nil {
		b.Fatal(err)
	}
	tok, err := svc.Login(ctx, "bench@example.test", "a long bench password")
	if err != nil {
		b.Fatal(err)
	}
	d := New(Config{Keys: keys, OAuth: svc, Partners: partners, Ledger: ledger.NewService(db), Audit: audit.NewReader(db),
		CSRF: csrf.New(nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app := fiber.New()
	d.Mount(app.Group("/dashboard"), func(*fiber.Ctx) string { return "127.0.0.1" })
	return &benchWorld{app: app, cookie: oauth.SessionCookie + "=" + tok, keyID: keyID}
}

var benchState struct {
	w *benchWorld
}

// world builds the world once for every benchmark of the run (it takes
// about a minute).
func world(b *testing.B) *benchWorld {
	if benchState.w == nil {
		b.Log("building 10,000 keys and 1,000,000 access-log rows")
		benchState.w = newBenchWorld(b)
	}
	return benchState.w
}

func benchPage(b *testing.B, path string) {
	w := world(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Cookie", w.cookie)
		resp, err := w.app.Test(req, -1)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != 200 {
			body, _ := io.ReadAll(resp.Body)
			b.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// The pages render one page of 50 keys or log rows however many there
// are: these show what a view costs at 10k keys and 1M access rows.
func BenchmarkKeysPage10k(b *testing.B) { benchPage(b, "/dashboard/test/keys") }
func BenchmarkKeysPage10kAll(b *testing.B) {
	benchPage(b, "/dashboard/test/keys?status=all")
}
func BenchmarkKeyPage(b *testing.B)        { benchPage(b, "/dashboard/test/keys/"+world(b).keyID) }
func BenchmarkOverview(b *testing.B)       { benchPage(b, "/dashboard/test") }
func BenchmarkLogsRequests1M(b *testing.B) { benchPage(b, "/dashboard/test/logs") }
func BenchmarkLogsErrors1M(b *testing.B)   { benchPage(b, "/dashboard/test/logs?status=4xx") }
func BenchmarkLogsEvents(b *testing.B)     { benchPage(b, "/dashboard/test/logs?kind=events") }
func BenchmarkUsageHourly1M(b *testing.B)  { benchPage(b, "/dashboard/test/usage") }
func BenchmarkUsageDaily1M(b *testing.B)   { benchPage(b, "/dashboard/test/usage?granularity=day") }
func BenchmarkApps(b *testing.B)           { benchPage(b, "/dashboard/test/apps") }
func BenchmarkMembers(b *testing.B)        { benchPage(b, "/dashboard/test/members") }
