package servicetoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"sync"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// Revoking a platform service is permanent, recorded on its row, announced
// with the change, and refuses its tokens, cached ones included; other
// services are untouched.
func TestRevokePlatform(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		var mu sync.Mutex
		var published []string
		db.OnLocalPublish(func(topic string) { mu.Lock(); published = append(published, topic); mu.Unlock() })
		ps := partner.NewService(db)
		ptr, err := ps.Create(ctx, partner.CreateParams{Name: "P", Status: nexus.PartnerApproved})
		if err != nil {
			t.Fatal(err)
		}
		svc := NewService(db, nil)
		v := NewVerifier(VerifierConfig{Service: svc, Partners: ps})
		db.OnLocalPublish(v.Drop) // as serve wires it (through the authenticator)

		register := func(name string) (*Platform, ed25519.PrivateKey) {
			pub, key, _ := ed25519.GenerateKey(rand.Reader)
			p, err := svc.CreatePlatform(ctx, name, pemOf(t, pub), []string{"internal:funding"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != "active" || p.RevokedAt != nil {
				t.Fatalf("new service: %+v", p)
			}
			return p, key
		}
		doomed, doomedKey := register("doomed")
		kept, keptKey := register("kept")
		token := func(p *Platform, key ed25519.PrivateKey) string {
			return mintPlatform(t, sdk.PlatformTokenParams{ServiceID: p.ID, PrivateKey: key, Partner: ptr.ID, Environment: "test"})
		}
		tok := token(doomed, doomedKey)
		if _, err := v.Verify(ctx, tok); err != nil { // now cached
			t.Fatalf("before revocation: %v", err)
		}

		mu.Lock()
		published = nil
		mu.Unlock()
		got, err := svc.RevokePlatform(ctx, doomed.ID)
		if err != nil {
			t.Fatalf("RevokePlatform: %v", err)
		}
		if got.ID != doomed.ID || got.Status != "revoked" || got.RevokedAt == nil || got.Object != "platform_service" ||
			!slices.Equal(got.Perms, []string{"internal:funding"}) || got.RevokedAt.Before(got.CreatedAt) {
			t.Fatalf("revoked service: %+v", got)
		}
		mu.Lock()
		if !slices.Equal(published, []string{store.TopicKey(doomed.ID)}) {
			t.Errorf("published %v, want [%s]", published, store.TopicKey(doomed.ID))
		}
		mu.Unlock()

		cold := NewVerifier(VerifierConfig{Service: svc, Partners: ps}) // another instance
		for name, vf := range map[string]*Verifier{"the cached token": v, "a cold verifier": cold} {
			if _, err := vf.Verify(ctx, tok); nexus.CodeOf(err) != nexus.CodeInvalidToken {
				t.Errorf("%s after revocation: %v, want invalid_token", name, err)
			}
		}
		if _, err := v.Verify(ctx, token(doomed, doomedKey)); nexus.CodeOf(err) != nexus.CodeInvalidToken {
			t.Errorf("a new token after revocation: %v, want invalid_token", err)
		}
		if _, err := v.Verify(ctx, token(kept, keptKey)); err != nil {
			t.Errorf("another service after the revocation: %v", err)
		}

		// Permanent: a second revocation is invalid_state, an unknown id resource_missing.
		if _, err := svc.RevokePlatform(ctx, doomed.ID); nexus.CodeOf(err) != nexus.CodeInvalidState {
			t.Errorf("revoking twice: %v, want invalid_state", err)
		}
		if _, err := svc.RevokePlatform(ctx, "svc_0000000000000000000000000"); nexus.CodeOf(err) != nexus.CodeResourceMissing {
			t.Errorf("revoking an unknown service: %v, want resource_missing", err)
		}

		// The list keeps the revoked service with its record, newest first.
		list, err := svc.ListPlatforms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != kept.ID || list[1].ID != doomed.ID {
			t.Fatalf("list: %+v", list)
		}
		if list[0].Status != "active" || list[0].RevokedAt != nil || list[0].Object != "platform_service" {
			t.Errorf("kept service in the list: %+v", list[0])
		}
		if list[1].Status != "revoked" || list[1].RevokedAt == nil || !list[1].RevokedAt.Equal(*got.RevokedAt) {
			t.Errorf("revoked service in the list: %+v (revoked_at %v, want %v)", list[1], list[1].RevokedAt, got.RevokedAt)
		}
	})
}
