package oauth

import (
	"context"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// ListMembers returns one partner's members, oldest first, and nobody
// else's.
func TestListMembers(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.MigrateUp(ctx); err != nil {
			t.Fatal(err)
		}
		ps, svc := partner.NewService(db), NewService(db)
		var ids [2]string
		for i, name := range []string{"A", "B"} {
			p, err := ps.Create(ctx, partner.CreateParams{Name: name, Status: nexus.PartnerApproved})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = p.ID
		}
		if got, err := svc.ListMembers(ctx, ids[0]); err != nil || len(got) != 0 {
			t.Fatalf("no members yet: %v, %v", got, err)
		}
		m1, err := svc.CreateMember(ctx, ids[0], "one@example.test", "a long enough password")
		if err != nil {
			t.Fatal(err)
		}
		m2, err := svc.CreateMember(ctx, ids[0], "two@example.test", "a long enough password")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateMember(ctx, ids[1], "other@example.test", "a long enough password"); err != nil {
			t.Fatal(err)
		}
		got, err := svc.ListMembers(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != m1.ID || got[1].ID != m2.ID || got[0].Object != "member" || got[0].Email != "one@example.test" {
			t.Fatalf("ListMembers = %+v, want %s then %s", got, m1.ID, m2.ID)
		}
	})
}
