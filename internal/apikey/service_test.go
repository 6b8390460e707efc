package apikey_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// newKeys migrates db and returns a key service with an approved partner's
// tenant in env.
func newKeys(t *testing.T, db *store.DB, env nexus.Environment) (*apikey.Service, nexus.Tenant) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// Every query on a tenant table from here on is scoped or marked as
	// crossing tenants on purpose.
	storetest.CheckTenancy(t, db)
	p, err := partner.NewService(db).Create(ctx, partner.CreateParams{Name: "apikey test", Status: nexus.PartnerApproved})
	if err != nil {
		t.Fatalf("create partner: %v", err)
	}
	return apikey.NewService(db), nexus.Tenant{PartnerID: p.ID, Environment: env}
}

func wantErr(t *testing.T, err error, code nexus.Code, param string) {
	t.Helper()
	if got := nexus.CodeOf(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	var ne *nexus.Error
	if errors.As(err, &ne) && ne.Param != param {
		t.Errorf("error %v: param %q, want %q", err, ne.Param, param)
	}
}

// A successor inherits its predecessor's expires_at: rotating must never
// turn an expiring key into one that never expires.
func TestRotateKeepsExpiry(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		keys, tn := newKeys(t, db, nexus.Test)
		ctx := context.Background()
		expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		for _, c := range []struct {
			name    string
			expires *time.Time
		}{{"expiring", &expires}, {"never expiring", nil}} {
			t.Run(c.name, func(t *testing.T) {
				old, err := keys.Create(ctx, tn, apikey.CreateParams{Name: c.name, ExpiresAt: c.expires})
				if err != nil {
					t.Fatal(err)
				}
				grace := 60
				next, err := keys.Rotate(ctx, tn, old.ID, apikey.RotateParams{GracePeriodSeconds: &grace})
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case c.expires == nil && next.ExpiresAt != nil:
					t.Errorf("successor of a key that never expires has expires_at %v", next.ExpiresAt)
				case c.expires != nil && (next.ExpiresAt == nil || !next.ExpiresAt.Equal(expires)):
					t.Errorf("successor expires_at %v, want the predecessor's %v", next.ExpiresAt, expires)
				}
				// Stored, not only answered.
				got, err := keys.Get(ctx, tn, next.ID)
				if err != nil {
					t.Fatal(err)
				}
				if (got.ExpiresAt == nil) != (c.expires == nil) || (c.expires != nil && !got.ExpiresAt.Equal(expires)) {
					t.Errorf("stored successor expires_at %v, want %v", got.ExpiresAt, c.expires)
				}
			})
		}
	})
}

// Publishable keys: read:balances unless other read scopes are asked for,
// never a write scope, and a live one must name its allowed_origins.
func TestCreatePublishable(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, test := newKeys(t, db, nexus.Test)
		live := nexus.Tenant{PartnerID: test.PartnerID, Environment: nexus.Live}
		origins := func() []string { return []string{"https://shop.example"} }

		k, err := keys.Create(ctx, test, apikey.CreateParams{Type: apikey.Publishable})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(k.Scopes, []string{"read:balances"}) {
			t.Errorf("default publishable scopes %v, want [read:balances]", k.Scopes)
		}
		k, err = keys.Create(ctx, test, apikey.CreateParams{Type: apikey.Publishable, Scopes: []string{"read:balances", "read:funding"}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(k.Scopes, []string{"read:balances", "read:funding"}) {
			t.Errorf("asked-for publishable scopes %v", k.Scopes)
		}
		_, err = keys.Create(ctx, test, apikey.CreateParams{Type: apikey.Publishable, Scopes: []string{"write:requests"}})
		wantErr(t, err, nexus.CodeInvalidScopes, "scopes")

		_, err = keys.Create(ctx, live, apikey.CreateParams{Type: apikey.Publishable})
		wantErr(t, err, nexus.CodeParameterMissing, "allowed_origins")
		_, err = keys.Create(ctx, live, apikey.CreateParams{Type: apikey.Publishable, AllowedOrigins: []string{}})
		wantErr(t, err, nexus.CodeParameterMissing, "allowed_origins")
		k, err = keys.Create(ctx, live, apikey.CreateParams{Type: apikey.Publishable, AllowedOrigins: origins()})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(k.AllowedOrigins, origins()) || !slices.Equal(k.Scopes, []string{"read:balances"}) {
			t.Errorf("live publishable key %+v", k)
		}
		// A live secret key needs no origins; a test publishable key may go without.
		if _, err := keys.Create(ctx, live, apikey.CreateParams{}); err != nil {
			t.Errorf("live secret key: %v", err)
		}
	})
}

// Suspend, reactivate and revoke move a key only from the statuses they
// allow; anything else is invalid_state naming the status the caller sees
// (an active key past its expiry is expired), and another tenant's key or
// an unknown one is resource_missing.
func TestTransitions(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, tn := newKeys(t, db, nexus.Test)
		k, err := keys.Create(ctx, tn, apikey.CreateParams{Name: "moves"})
		if err != nil {
			t.Fatal(err)
		}
		step := func(name string, do func(context.Context, nexus.Tenant, string) (*apikey.Key, error), tn nexus.Tenant, id string, want apikey.Status, code nexus.Code, msg string) {
			t.Helper()
			got, err := do(ctx, tn, id)
			switch {
			case code != "" && nexus.CodeOf(err) != code:
				t.Fatalf("%s: %v, want %s", name, err, code)
			case code != "" && msg != "" && err.(*nexus.Error).Message != msg:
				t.Errorf("%s: message %q, want %q", name, err.(*nexus.Error).Message, msg)
			case code == "" && err != nil:
				t.Fatalf("%s: %v", name, err)
			case code == "" && got.Status != want:
				t.Fatalf("%s: status %s, want %s", name, got.Status, want)
			}
		}
		step("reactivate an active key", keys.Reactivate, tn, k.ID, "", nexus.CodeInvalidState, "an api key with status active cannot be reactivated")
		step("suspend", keys.Suspend, tn, k.ID, apikey.Suspended, "", "")
		step("suspend again", keys.Suspend, tn, k.ID, "", nexus.CodeInvalidState, "an api key with status suspended cannot be suspended")
		step("reactivate", keys.Reactivate, tn, k.ID, apikey.Active, "", "")
		live := nexus.Tenant{PartnerID: tn.PartnerID, Environment: nexus.Live}
		step("suspend from the other environment", keys.Suspend, live, k.ID, "", nexus.CodeResourceMissing, "")
		step("suspend an unknown key", keys.Suspend, tn, "key_unknown", "", nexus.CodeResourceMissing, "no such api_key: 'key_unknown'") // as GET says it

		// A key past its expiry cannot be suspended; it can be revoked.
		if _, err := db.For(tn).Update((*apikey.Row)(nil)).Set("expires_at = ?", store.Now().Add(-time.Minute)).
			Where("?TableAlias.id = ?", k.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		step("suspend an expired key", keys.Suspend, tn, k.ID, "", nexus.CodeInvalidState, "an api key with status expired cannot be suspended")
		step("revoke", keys.Revoke, tn, k.ID, apikey.Revoked, "", "")
		step("revoke again", keys.Revoke, tn, k.ID, "", nexus.CodeInvalidState, "an api key with status revoked cannot be revoked")
	})
}

// legacyRow is an api_keys row as the code before the []string fields
// wrote it: the allowlists as JSON text it encoded itself.
type legacyRow struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID             string            `bun:"id,pk"`
	PartnerID      string            `bun:"partner_id"`
	Environment    nexus.Environment `bun:"environment"`
	Type           string            `bun:"type"`
	Prefix         string            `bun:"prefix"`
	Last4          string            `bun:"last4"`
	KeyHash        string            `bun:"key_hash"`
	Scopes         string            `bun:"scopes"`
	Status         string            `bun:"status"`
	AllowedIPs     string            `bun:"allowed_ips"`
	AllowedOrigins string            `bun:"allowed_origins"`
	CreatedAt      time.Time         `bun:"created_at"`
	UpdatedAt      time.Time         `bun:"updated_at"`
}

// The allowlists are []string fields stored as the JSON text they always
// were: rows written before read back (those with the column default
// too), and new rows store the same text, so no migration is needed.
func TestAllowlistsStoredAsBefore(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, tn := newKeys(t, db, nexus.Test)
		now := store.Now()
		old := func(id string) *legacyRow {
			return &legacyRow{ID: id, Type: "secret", Prefix: "nx_test_sk_abcd", Last4: "wxyz", KeyHash: "hash_" + id,
				Scopes: "admin:all", Status: "active", AllowedIPs: `["10.0.0.1","192.0.2.0/24"]`,
				AllowedOrigins: `["https://shop.example"]`, CreatedAt: now, UpdatedAt: now}
		}
		if _, err := db.For(tn).Insert(old("key_legacy")).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.For(tn).Insert(old("key_defaults")).ExcludeColumn("allowed_ips", "allowed_origins").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string][2][]string{
			"key_legacy":   {{"10.0.0.1", "192.0.2.0/24"}, {"https://shop.example"}},
			"key_defaults": {{}, {}},
		} {
			k, err := keys.Get(ctx, tn, id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(k.AllowedIPs, want[0]) || !slices.Equal(k.AllowedOrigins, want[1]) || k.AllowedIPs == nil || k.AllowedOrigins == nil {
				t.Errorf("%s reads allowed_ips %#v, allowed_origins %#v; want %q, %q", id, k.AllowedIPs, k.AllowedOrigins, want[0], want[1])
			}
		}
		row, err := keys.Lookup(ctx, "hash_key_legacy")
		if err != nil || row == nil || len(row.IPs()) != 2 || row.IPs()[1].String() != "192.0.2.0/24" {
			t.Errorf("the authenticator's view of the old row: %+v, %v", row, err)
		}

		withLists, err := keys.Create(ctx, tn, apikey.CreateParams{AllowedIPs: []string{"10.0.0.1", "192.0.2.0/24"}, AllowedOrigins: []string{"https://shop.example/"}})
		if err != nil {
			t.Fatal(err)
		}
		without, err := keys.Create(ctx, tn, apikey.CreateParams{})
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string][2]string{
			withLists.ID: {`["10.0.0.1","192.0.2.0/24"]`, `["https://shop.example"]`},
			without.ID:   {`[]`, `[]`},
		} {
			var ips, origins string
			if err := db.For(tn).Select((*apikey.Row)(nil)).Column("allowed_ips", "allowed_origins").
				Where("?TableAlias.id = ?", id).Scan(ctx, &ips, &origins); err != nil {
				t.Fatal(err)
			}
			if ips != want[0] || origins != want[1] {
				t.Errorf("stored allowed_ips %s, allowed_origins %s; want %s, %s", ips, origins, want[0], want[1])
			}
		}
	})
}
