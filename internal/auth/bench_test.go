package auth_test

import (
	"context"
	"testing"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// realEnv is an authenticator on a migrated database with the real key and
// partner services, an approved partner and one live secret key.
type realEnv struct {
	db     *store.DB
	keys   *apikey.Service
	a      *auth.Authenticator
	tenant nexus.Tenant
	key    *apikey.Key
}

func newRealEnv(tb testing.TB, db *store.DB) *realEnv {
	tb.Helper()
	ctx := context.Background()
	migrate(tb, db)
	keys := apikey.NewService(db)
	partners := partner.NewService(db)
	p, err := partners.Create(ctx, partner.CreateParams{Name: "Bench Partner", Status: nexus.PartnerApproved})
	if err != nil {
		tb.Fatal(err)
	}
	t := nexus.Tenant{PartnerID: p.ID, Environment: nexus.Live}
	k, err := keys.Create(ctx, t, apikey.CreateParams{Name: "bench", Scopes: []string{"read:balances", "write:requests"}})
	if err != nil {
		tb.Fatal(err)
	}
	return &realEnv{db: db, keys: keys, tenant: t, key: k, a: auth.New(auth.Config{Keys: auth.NewKeyStore(keys, partners)})}
}

func BenchmarkAuthenticateAPIKeyCached(b *testing.B) {
	e := newEnv(b, auth.Config{})
	req := &auth.Request{Authorization: "Bearer " + e.key}
	ctx := context.Background()
	if _, err := e.a.Authenticate(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.a.Authenticate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.store.lookups.Load(); n != 1 {
		b.Fatalf("lookups = %d: the cache was not used", n)
	}
}

func BenchmarkAuthenticateAPIKeyMiss(b *testing.B) {
	e := newEnv(b, auth.Config{})
	req := &auth.Request{Authorization: "Bearer " + e.key}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e.a.Drop(store.TopicAll)
		if _, err := e.a.Authenticate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateAPIKeyMissStore times a cache miss answered by the
// real key store, on each database.
func BenchmarkAuthenticateAPIKeyMissStore(b *testing.B) {
	storetest.ForEachDB(b, benchmarkAuthenticateAPIKeyMissStore)
}

func benchmarkAuthenticateAPIKeyMissStore(b *testing.B, db *store.DB) {
	e := newRealEnv(b, db)
	req := &auth.Request{Authorization: "Bearer " + e.key.Plain}
	ctx := context.Background()
	if _, err := e.a.Authenticate(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.a.Drop(store.TopicAll)
		if _, err := e.a.Authenticate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateParallel(b *testing.B) {
	e := newEnv(b, auth.Config{})
	req := &auth.Request{Authorization: "Bearer " + e.key}
	if _, err := e.a.Authenticate(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		r := *req // each goroutine its own request, as in a server
		for pb.Next() {
			if _, err := e.a.Authenticate(ctx, &r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// The refusal paths that cost no database work stay cheap too.
func BenchmarkAuthenticateRejectChecksum(b *testing.B) {
	e := newEnv(b, auth.Config{})
	req := &auth.Request{Authorization: "Bearer " + corrupt(e.key)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.a.Authenticate(ctx, req); err == nil {
			b.Fatal("accepted")
		}
	}
}
