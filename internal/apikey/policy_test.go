package apikey_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func days(n int) *time.Time {
	t := time.Now().UTC().AddDate(0, 0, n).Truncate(time.Second)
	return &t
}

// Creation and rotation that break the policy are refused naming the
// parameter; tightening it never changes a live key, it lists it.
func TestPolicy(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, tn := newKeys(t, db, nexus.Test)
		live := nexus.Tenant{PartnerID: tn.PartnerID, Environment: nexus.Live}

		forever, err := keys.Create(ctx, tn, apikey.CreateParams{Name: "forever"})
		if err != nil {
			t.Fatal(err)
		}
		long, err := keys.Create(ctx, tn, apikey.CreateParams{Name: "long", ExpiresAt: days(200), AllowedIPs: []string{"10.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := keys.PutPolicy(ctx, tn, apikey.PolicyParams{MaxKeyLifetimeDays: ptr(90), RequireAllowedIPsForSecretKeys: ptr(true), MaxActiveKeys: ptr(3)})
		if err != nil {
			t.Fatal(err)
		}
		if pol.UpdatedAt == nil || *pol.MaxKeyLifetimeDays != 90 || pol.RequireExpiry {
			t.Fatalf("PutPolicy answered %+v", pol)
		}
		if got, _ := keys.GetPolicy(ctx, live); got.UpdatedAt != nil || got.MaxKeyLifetimeDays != nil {
			t.Fatalf("the live environment's policy changed too: %+v", got)
		}

		// Live keys still work and are listed with what they break.
		got, err := keys.Get(ctx, tn, forever.ID)
		if err != nil || got.Status != apikey.Active || !slices.Equal(got.PolicyViolations, []string{"expires_at", "allowed_ips"}) {
			t.Fatalf("key without expiry or IPs: %+v, %v", got, err)
		}
		list, _, err := keys.List(ctx, tn, apikey.ListParams{Page: store.Page{Limit: 10}, PolicyViolations: "true"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range list {
			ids = append(ids, k.ID)
		}
		slices.Sort(ids)
		if want := []string{forever.ID, long.ID}; !slices.Equal(ids, want) {
			t.Fatalf("policy_violations=true listed %v, want %v", ids, want)
		}

		// Creation.
		_, err = keys.Create(ctx, tn, apikey.CreateParams{AllowedIPs: []string{"10.0.0.1"}})
		wantErr(t, err, nexus.CodePolicyViolation, "expires_at")
		_, err = keys.Create(ctx, tn, apikey.CreateParams{AllowedIPs: []string{"10.0.0.1"}, ExpiresAt: days(91)})
		wantErr(t, err, nexus.CodePolicyViolation, "expires_at")
		_, err = keys.Create(ctx, tn, apikey.CreateParams{ExpiresAt: days(30)})
		wantErr(t, err, nexus.CodePolicyViolation, "allowed_ips")
		// Publishable keys need no IPs.
		if _, err := keys.Create(ctx, tn, apikey.CreateParams{Type: apikey.Publishable, ExpiresAt: days(30)}); err != nil {
			t.Fatalf("publishable key within the policy: %v", err)
		}
		// The live environment has no policy.
		if _, err := keys.Create(ctx, live, apikey.CreateParams{}); err != nil {
			t.Fatalf("live key: %v", err)
		}
		// Three active keys: the fourth is refused.
		_, err = keys.Create(ctx, tn, apikey.CreateParams{AllowedIPs: []string{"10.0.0.1"}, ExpiresAt: days(30)})
		wantErr(t, err, nexus.CodePolicyViolation, "")

		// Rotation: the successor of a key that never expires gets the
		// policy's bound; a key without IPs must be given some.
		_, err = keys.Rotate(ctx, tn, forever.ID, apikey.RotateParams{})
		wantErr(t, err, nexus.CodePolicyViolation, "allowed_ips")
		_, err = keys.Rotate(ctx, tn, forever.ID, apikey.RotateParams{AllowedIPs: []string{"10.0.0.2"}, ExpiresAt: days(100)})
		wantErr(t, err, nexus.CodePolicyViolation, "expires_at")
		next, err := keys.Rotate(ctx, tn, forever.ID, apikey.RotateParams{AllowedIPs: []string{"10.0.0.2"}})
		if err != nil {
			t.Fatal(err)
		}
		if bound := time.Now().AddDate(0, 0, 90); next.ExpiresAt == nil || next.ExpiresAt.After(bound) || next.ExpiresAt.Before(bound.Add(-time.Minute)) {
			t.Fatalf("successor of a key that never expires: expires_at %v, want the policy's %v", next.ExpiresAt, bound)
		}
		if len(next.PolicyViolations) != 0 {
			t.Fatalf("successor breaks the policy: %v", next.PolicyViolations)
		}
		// A successor keeps an expiry sooner than the bound.
		soon, err := keys.Create(ctx, live, apikey.CreateParams{ExpiresAt: days(10)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.PutPolicy(ctx, live, apikey.PolicyParams{MaxKeyLifetimeDays: ptr(30), RequireExpiry: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		next, err = keys.Rotate(ctx, live, soon.ID, apikey.RotateParams{})
		if err != nil || next.ExpiresAt == nil || !next.ExpiresAt.Equal(*soon.ExpiresAt) {
			t.Fatalf("successor of a key expiring in 10 days: %+v, %v; want expires_at %v", next, err, soon.ExpiresAt)
		}
		// Loosening the policy clears the listing.
		if _, err := keys.PutPolicy(ctx, tn, apikey.PolicyParams{}); err != nil {
			t.Fatal(err)
		}
		list, _, err = keys.List(ctx, tn, apikey.ListParams{Page: store.Page{Limit: 10}, PolicyViolations: "true"})
		if err != nil || len(list) != 0 {
			t.Fatalf("policy_violations=true without a policy: %d keys, %v", len(list), err)
		}
	})
}

// max_active_keys holds under concurrent creations.
func TestPolicyMaxActiveKeysConcurrent(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, tn := newKeys(t, db, nexus.Test)
		if _, err := keys.PutPolicy(ctx, tn, apikey.PolicyParams{MaxActiveKeys: ptr(5)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = keys.Create(ctx, tn, apikey.CreateParams{}) }()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if nexus.CodeOf(err) != nexus.CodePolicyViolation {
				t.Errorf("unexpected error %v", err)
			}
		}
		if ok != 5 {
			t.Fatalf("%d keys created, want 5", ok)
		}
	})
}

// WarnExpiring writes api_key.expiring once per key, at the time the
// injected clock says, whoever runs it.
func TestWarnExpiring(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys, tn := newKeys(t, db, nexus.Test)
		in5, err := keys.Create(ctx, tn, apikey.CreateParams{ExpiresAt: days(5)})
		if err != nil {
			t.Fatal(err)
		}
		in20, err := keys.Create(ctx, tn, apikey.CreateParams{ExpiresAt: days(20)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Create(ctx, tn, apikey.CreateParams{}); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if n, err := keys.WarnExpiring(ctx, now); err != nil || n != 0 {
			t.Fatalf("without a policy: %d warned, %v", n, err)
		}
		if _, err := keys.PutPolicy(ctx, tn, apikey.PolicyParams{ExpiryWarningDays: ptr(7)}); err != nil {
			t.Fatal(err)
		}
		// Two instances at once, twice: one warning.
		var wg sync.WaitGroup
		counts := make([]int, 4)
		for i := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if counts[i], err = keys.WarnExpiring(ctx, now); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if total := counts[0] + counts[1] + counts[2] + counts[3]; total != 1 {
			t.Fatalf("%v warnings at once, want 1 in all", counts)
		}
		// Fourteen days on (by the clock), the second key is due, the first
		// is not warned again (and has expired anyway).
		if n, err := keys.WarnExpiring(ctx, now.AddDate(0, 0, 14)); err != nil || n != 1 {
			t.Fatalf("14 days on: %d warned, %v", n, err)
		}
		evs, _, err := audit.NewReader(db).List(ctx, tn, audit.ListParams{Page: store.Page{Limit: 100}, Type: "api_key.expiring"})
		if err != nil {
			t.Fatal(err)
		}
		var objs []string
		for _, e := range evs {
			objs = append(objs, e.ObjectID)
		}
		slices.Sort(objs)
		want := []string{in5.ID, in20.ID}
		slices.Sort(want)
		if !slices.Equal(objs, want) {
			t.Fatalf("api_key.expiring events for %v, want one each for %v", objs, want)
		}
		list, _, err := keys.List(ctx, tn, apikey.ListParams{Page: store.Page{Limit: 10}, ExpiringWithin: "P7D"})
		if err != nil || len(list) != 1 || list[0].ID != in5.ID {
			t.Fatalf("expiring_within=P7D: %+v, %v", list, err)
		}
		_, _, err = keys.List(ctx, tn, apikey.ListParams{Page: store.Page{Limit: 10}, ExpiringWithin: "P1M"})
		wantErr(t, err, nexus.CodeParameterInvalid, "expiring_within")
	})
}
