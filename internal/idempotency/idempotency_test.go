package idempotency

import (
	"context"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
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
	return New(db), db
}

var tenant = nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}

func TestBeginFinishReplay(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	h := Hash("POST", "/v1/requests", []byte(`{"amount":1}`))
	if saved, err := s.Begin(ctx, tenant, "k", h); err != nil || saved != nil {
		t.Fatalf("first Begin = %v, %v; want the key claimed", saved, err)
	}
	if _, err := s.Begin(ctx, tenant, "k", h); nexus.CodeOf(err) != nexus.CodeIdempotencyKeyInUse {
		t.Fatalf("Begin while running: %v, want idempotency_key_in_use", err)
	}
	if err := s.Finish(ctx, tenant, "k", 201, []byte(`{"id":"prq_1"}`)); err != nil {
		t.Fatal(err)
	}
	saved, err := s.Begin(ctx, tenant, "k", h)
	if err != nil || saved == nil || saved.Status != 201 || string(saved.Body) != `{"id":"prq_1"}` {
		t.Fatalf("replay = %+v, %v", saved, err)
	}
	other := Hash("POST", "/v1/requests", []byte(`{"amount":2}`))
	if _, err := s.Begin(ctx, tenant, "k", other); nexus.CodeOf(err) != nexus.CodeIdempotencyKeyReused {
		t.Fatalf("another body: %v, want idempotency_key_reused", err)
	}
	// Keys belong to a partner and an environment.
	live := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}
	if saved, err := s.Begin(ctx, live, "k", other); err != nil || saved != nil {
		t.Fatalf("same key in live = %v, %v; want its own claim", saved, err)
	}
}

func TestAbandonedKeyIsReclaimed(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	h := Hash("POST", "/v1/requests", []byte(`{}`))
	if _, err := s.Begin(ctx, tenant, "k", h); err != nil {
		t.Fatal(err)
	}
	// The process running the first request died: nothing finished it.
	if _, err := db.NewUpdate().Model((*row)(nil)).Set("created_at = ?", store.Now().Add(-Abandoned-time.Second)).
		Where("key = 'k'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if saved, err := s.Begin(ctx, tenant, "k", h); err != nil || saved != nil {
		t.Fatalf("retry after the first request was abandoned = %v, %v; want the key claimed again", saved, err)
	}
	if _, err := s.Begin(ctx, tenant, "k", h); nexus.CodeOf(err) != nexus.CodeIdempotencyKeyInUse {
		t.Fatalf("the reclaimed key: %v, want idempotency_key_in_use while the retry runs", err)
	}
}

func TestExpiredKeyIsForgotten(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	h := Hash("POST", "/v1/addresses", []byte(`{}`))
	if _, err := s.Begin(ctx, tenant, "k", h); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, tenant, "k", 201, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewUpdate().Model((*row)(nil)).Set("expires_at = ?", store.Now().Add(-time.Second)).
		Where("key = 'k'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	other := Hash("POST", "/v1/addresses", []byte(`{"label":"x"}`))
	if saved, err := s.Begin(ctx, tenant, "k", other); err != nil || saved != nil {
		t.Fatalf("Begin after expiry = %v, %v; want a fresh claim", saved, err)
	}
}
