package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// TestTenancyCheck proves the harness's hook catches what it must: a query
// on a tenant table written by hand, even with both conditions spelled out,
// fails; one built by store.For or marked by store.CrossTenant passes.
func TestTenancyCheck(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// The check every storetest database has, installed before
		// migrating: migrations copy rows between tenant tables by hand, and
		// the check leaves them alone.
		c := storetest.CheckTenancy(t, db)
		migrateUp(t, db)
		if v := c.Violations(); len(v) != 0 {
			t.Fatalf("migrations flagged: %v", v)
		}
		tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}

		var n int64
		var err error
		if n, err = db.For(tn).Select((*apikey.Row)(nil)).Count(ctx); err != nil || n != 0 {
			t.Fatalf("scoped count = %d, %v", n, err)
		}
		if _, err = store.CrossTenant(db.DB, "test: by digest").Select((*apikey.Row)(nil)).Where("key_hash = ?", "x").Count(ctx); err != nil {
			t.Fatal(err)
		}
		if len(c.Violations()) != 0 {
			t.Fatalf("scoped and cross-tenant queries flagged: %v", c.Violations())
		}

		// Written by hand, with both tenant conditions: still refused, so
		// nobody gets in the habit.
		_, err = db.NewSelect().Model((*apikey.Row)(nil)).
			Where("partner_id = ?", tn.PartnerID).Where("environment = ?", "test").Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.NewRaw("UPDATE api_keys SET name = 'x' WHERE id = 'key_1'").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		v := c.Violations()
		if len(v) != 2 || !strings.Contains(v[0], "api_keys") || !strings.Contains(v[1], "api_keys") {
			t.Fatalf("hand-written queries not both flagged: %q", v)
		}
		c.Reset() // caught, as it should be: not this test's failure
	})
}

func TestTenancyViolationNeedsBothConditions(t *testing.T) {
	for q, want := range map[string]string{
		`/* nexus:tenant */ SELECT * FROM "api_keys" AS "row" WHERE ("row"."partner_id" = 'p')`:                                 "environment",
		`/* nexus:tenant */ SELECT * FROM "api_keys" AS "row" WHERE ("row"."environment" = 'test')`:                             "partner_id",
		`/* nexus:tenant */ SELECT * FROM "api_keys" AS "row" WHERE ("row"."partner_id" = 'p') AND ("row"."environment" = 't')`: "",
		`/* nexus:tenant */ SELECT * FROM "members" AS "m" WHERE ("m"."partner_id" = 'p')`:                                      "",
		`SELECT * FROM "partners" WHERE id = 'p'`:                                                                               "",
		`DELETE FROM "sessions" WHERE expires_at < now()`:                                                                       "not built",
	} {
		got := store.TenancyViolation(q)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("TenancyViolation(%s) = %q, want %q", q, got, want)
		}
	}
}

// TestScopeInsertGetTransition runs the generic helpers on api_keys: Insert
// stamps the tenant, Get refuses another tenant's row as resource_missing,
// Transition tells invalid_state from missing.
func TestScopeInsertGetTransition(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrateUp(t, db)
		c := storetest.CheckTenancy(t, db)
		seedPartner(t, db, "ptr_a")
		tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		other := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}
		row := keyRow("", "")
		row.ID = "key_1"
		if _, err := db.For(tn).Insert(row).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if row.PartnerID != "ptr_a" || row.Environment != "test" {
			t.Fatalf("insert did not stamp the tenant: %+v", row)
		}
		if _, err := store.Get[apikey.Row](ctx, db.For(other), "api key", "key_1"); nexus.CodeOf(err) != nexus.CodeResourceMissing {
			t.Fatalf("other environment's get: %v", err)
		}
		move := func(s store.Scope, to string, from ...string) (*apikey.Row, error) {
			var out *apikey.Row
			err := db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
				var err error
				out, err = store.Transition[apikey.Row](ctx, store.For(tx, s.Tenant()), store.Change{Kind: "api key", ID: "key_1", To: to, From: from, Verb: to})
				return err
			})
			return out, err
		}
		if _, err := move(db.For(other), "revoked", "active"); nexus.CodeOf(err) != nexus.CodeResourceMissing {
			t.Fatalf("other environment's transition: %v", err)
		}
		got, err := move(db.For(tn), "revoked", "active")
		if err != nil || got.Status != "revoked" {
			t.Fatalf("transition: %+v, %v", got, err)
		}
		var ne *nexus.Error
		if _, err := move(db.For(tn), "revoked", "active"); !errors.As(err, &ne) || ne.Code != nexus.CodeInvalidState || !strings.Contains(ne.Message, "revoked") {
			t.Fatalf("second transition: %v", err)
		}
		if v := c.Violations(); len(v) != 0 {
			t.Fatalf("helpers broke the tenancy rule: %v", v)
		}
	})
}

// TestMoveAll moves, in one statement, only the scoped rows in one of the
// from statuses, and says how many moved.
func TestMoveAll(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrateUp(t, db)
		seedPartner(t, db, "ptr_a")
		tn := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		other := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}
		var ids []string
		for i, st := range []apikey.Status{apikey.Active, apikey.Active, apikey.Suspended} {
			row := keyRow("", "")
			row.Status = st
			ids = append(ids, row.ID)
			s := db.For(tn)
			if i == 1 {
				s = db.For(other) // the same status, the other environment
			}
			if _, err := s.Insert(row).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		now := store.Now()
		n, err := store.MoveAll(ctx, db.For(tn).Update((*apikey.Row)(nil)).Where("?TableAlias.id IN (?)", bun.In(ids)),
			apikey.Revoked, []apikey.Status{apikey.Active}, "", now)
		if err != nil || n != 1 {
			t.Fatalf("MoveAll = %d, %v; want 1 (the other environment's and the suspended key stay)", n, err)
		}
		for i, want := range []apikey.Status{apikey.Revoked, apikey.Active, apikey.Suspended} {
			s := db.For(tn)
			if i == 1 {
				s = db.For(other)
			}
			row, err := store.Get[apikey.Row](ctx, s, "api key", ids[i])
			if err != nil || row.Status != want {
				t.Errorf("key %d: %v, %v; want %s", i, row, err, want)
			}
			if want == apikey.Revoked && !row.UpdatedAt.Equal(now) {
				t.Errorf("moved key's updated_at %v, want %v", row.UpdatedAt, now)
			}
		}
	})
}
