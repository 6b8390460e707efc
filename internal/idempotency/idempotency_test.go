package idempotency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

func newStore(t *testing.T) (*Store, *store.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckTenancy(t, db)
	return New(db), db
}

var tenant = nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}

func TestBeginFinishReplay(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h := Hash("POST", "/v1/requests", []byte(`{"amount":1}`))
	saved, claim, err := s.Begin(ctx, tenant, "k", h)
	if err != nil || saved != nil || claim == nil {
		t.Fatalf("first Begin = %v, %v; want the key claimed", saved, err)
	}
	if _, _, err := s.Begin(ctx, tenant, "k", h); nexus.CodeOf(err) != nexus.CodeIdempotencyKeyInUse {
		t.Fatalf("Begin while running: %v, want idempotency_key_in_use", err)
	}
	if err := s.Finish(ctx, s.db.DB, claim, 201, []byte(`{"id":"prq_1"}`)); err != nil {
		t.Fatal(err)
	}
	saved, _, err = s.Begin(ctx, tenant, "k", h)
	if err != nil || saved == nil || saved.Status != 201 || string(saved.Body) != `{"id":"prq_1"}` {
		t.Fatalf("replay = %+v, %v", saved, err)
	}
	other := Hash("POST", "/v1/requests", []byte(`{"amount":2}`))
	if _, _, err := s.Begin(ctx, tenant, "k", other); nexus.CodeOf(err) != nexus.CodeIdempotencyKeyReused {
		t.Fatalf("another body: %v, want idempotency_key_reused", err)
	}
	// Keys belong to a partner and an environment.
	live := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}
	if saved, _, err := s.Begin(ctx, live, "k", other); err != nil || saved != nil {
		t.Fatalf("same key in live = %v, %v; want its own claim", saved, err)
	}
}

func TestAbandonedKeyIsReclaimed(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	h := Hash("POST", "/v1/requests", []byte(`{}`))
	_, first, err := s.Begin(ctx, tenant, "k", h)
	if err != nil {
		t.Fatal(err)
	}
	// The process running the first request died, or hangs: nothing
	// finished it within the window.
	first.at = store.Now().Add(-Abandoned - time.Second) // as if it had claimed then
	if _, err := db.For(tenant).Update((*row)(nil)).Set("created_at = ?", first.at).Where("key = 'k'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	saved, retry, err := s.Begin(ctx, tenant, "k", h)
	if err != nil || saved != nil || retry == nil {
		t.Fatalf("retry after the first request was abandoned = %v, %v; want the key claimed again", saved, err)
	}
	if _, _, err := s.Begin(ctx, tenant, "k", h); nexus.CodeOf(err) != nexus.CodeIdempotencyKeyInUse {
		t.Fatalf("the reclaimed key: %v, want idempotency_key_in_use while the retry runs", err)
	}
	// The first request was only slow: it must not store its answer over
	// the retry's claim (its transaction then rolls back), nor release it.
	if err := s.Finish(ctx, db.DB, first, 201, []byte(`{"id":"prq_first"}`)); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("Finish of the taken-back claim: %v, want ErrClaimLost", err)
	}
	if err := s.Abort(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, db.DB, retry, 201, []byte(`{"id":"prq_retry"}`)); err != nil {
		t.Fatalf("Finish of the retry: %v", err)
	}
	saved, _, err = s.Begin(ctx, tenant, "k", h)
	if err != nil || saved == nil || string(saved.Body) != `{"id":"prq_retry"}` {
		t.Fatalf("replay = %+v, %v; want the retry's answer", saved, err)
	}
	// A committed answer is never taken back, however old.
	if _, err := db.For(tenant).Update((*row)(nil)).Set("created_at = ?", store.Now().Add(-Abandoned-time.Second)).
		Where("key = 'k'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if saved, _, err := s.Begin(ctx, tenant, "k", h); err != nil || saved == nil {
		t.Fatalf("old finished key = %v, %v; want its replay", saved, err)
	}
}

func TestExpiredKeyIsForgotten(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	h := Hash("POST", "/v1/addresses", []byte(`{}`))
	_, claim, err := s.Begin(ctx, tenant, "k", h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, db.DB, claim, 201, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.For(tenant).Update((*row)(nil)).Set("expires_at = ?", store.Now().Add(-time.Second)).
		Where("key = 'k'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	other := Hash("POST", "/v1/addresses", []byte(`{"label":"x"}`))
	if saved, _, err := s.Begin(ctx, tenant, "k", other); err != nil || saved != nil {
		t.Fatalf("Begin after expiry = %v, %v; want a fresh claim", saved, err)
	}
}

// Prune forgets the expired keys of every tenant and keeps the others.
func TestPruneExpired(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	live := nexus.Tenant{PartnerID: "ptr_b", Environment: nexus.Live}
	h := Hash("POST", "/v1/addresses", []byte(`{}`))
	for _, tn := range []nexus.Tenant{tenant, live} {
		for _, key := range []string{"old", "new"} {
			if _, _, err := s.Begin(ctx, tn, key, h); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.For(tn).Update((*row)(nil)).Set("expires_at = ?", store.Now().Add(-time.Second)).
			Where("key = 'old'").Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []nexus.Tenant{tenant, live} {
		var keys []string
		if err := db.For(tn).Select((*row)(nil)).Column("key").Scan(ctx, &keys); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0] != "new" {
			t.Errorf("%v's keys after pruning: %v, want [new]", tn, keys)
		}
	}
}
