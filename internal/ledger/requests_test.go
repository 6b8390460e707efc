package ledger

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

var allRequestStatuses = []RequestStatus{RequestPending, RequestProcessing, RequestCompleted, RequestFailed, RequestCancelled}

// TestRequestStepsTable: the table is the lifecycle the package documents
// (pending → processing → completed; pending or processing → failed;
// pending → cancelled), and its money rule: only processing keeps the
// amount pending, and only a payout that did not go out returns it.
func TestRequestStepsTable(t *testing.T) {
	want := map[RequestStatus]struct {
		from             []RequestStatus
		settles, release bool
	}{
		RequestProcessing: {[]RequestStatus{RequestPending}, false, false},
		RequestCompleted:  {[]RequestStatus{RequestPending, RequestProcessing}, true, false},
		RequestFailed:     {[]RequestStatus{RequestPending, RequestProcessing}, true, true},
		RequestCancelled:  {[]RequestStatus{RequestPending}, true, true},
	}
	if len(requestSteps) != len(want) {
		t.Errorf("%d request steps, want %d", len(requestSteps), len(want))
	}
	cols := map[string]bool{}
	rt := reflect.TypeFor[Request]()
	for i := range rt.NumField() {
		cols[strings.Split(rt.Field(i).Tag.Get("bun"), ",")[0]] = true
	}
	for to, w := range want {
		st, ok := requestSteps[to]
		if !ok {
			t.Errorf("no step leads to %s", to)
			continue
		}
		if !slices.Equal(st.from, w.from) || st.settles != w.settles || st.release != w.release {
			t.Errorf("step to %s: from %v settles %v release %v; want from %v settles %v release %v",
				to, st.from, st.settles, st.release, w.from, w.settles, w.release)
		}
		if st.event != "request."+string(to) || st.verb == "" {
			t.Errorf("step to %s: event %q, verb %q", to, st.event, st.verb)
		}
		if (st.stamp != "") != st.settles || (st.stamp != "" && !cols[st.stamp]) {
			t.Errorf("step to %s stamps %q: every settling step stamps a column of requests, no other", to, st.stamp)
		}
	}
}

// TestRequestSteps drives a request from every status through every step,
// on both databases: a step from one of its statuses changes the status,
// stamps it, records its event and moves the balance and the credential's
// daily total as the table says; from any other status it answers
// invalid_state and changes nothing.
func TestRequestSteps(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		s, tn := newTestLedger(t, db)
		ctx := context.Background()
		if _, err := s.CreateFunding(ctx, tn, CreateFundingParams{Amount: 1_000_000, Currency: USDC, Status: FundingCompleted}); err != nil {
			t.Fatal(err)
		}
		adr, err := s.CreateAddress(ctx, tn, CreateAddressParams{Network: Ethereum, Address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"})
		if err != nil {
			t.Fatal(err)
		}
		daily := int64(1_000_000)
		if err := db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
			return SaveLimits(ctx, tx, tn, "key_1", Limits{USDC: {DailyWithdrawalTotal: &daily}})
		}); err != nil {
			t.Fatal(err)
		}
		cctx := nexus.WithPrincipal(ctx, &nexus.Principal{CredentialID: "key_1"})
		// reach makes a request of 100 and takes it to status.
		reach := map[RequestStatus][]RequestStatus{
			RequestPending: nil, RequestProcessing: {RequestProcessing},
			RequestCompleted: {RequestProcessing, RequestCompleted}, RequestFailed: {RequestFailed}, RequestCancelled: {RequestCancelled},
		}
		type state struct{ available, pending, used int64 }
		now := func() state {
			e, err := s.readBalances(ctx, tn)
			if err != nil {
				t.Fatal(err)
			}
			u := new(usageRow)
			if err := db.For(tn).Select(u).Where("credential_id = ?", "key_1").Where("currency = ?", USDC).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			i := slices.Index(Currencies, USDC)
			return state{e.amounts[i].available, e.amounts[i].pending, u.Used}
		}
		for to, st := range requestSteps {
			for _, from := range allRequestStatuses {
				r, err := s.CreateRequest(cctx, tn, CreateRequestParams{Type: "withdrawal", Amount: 100, Currency: USDC, AddressID: adr.ID})
				if err != nil {
					t.Fatal(err)
				}
				for _, via := range reach[from] {
					if _, err := s.requestMove(ctx, tn, r.ID, via); err != nil {
						t.Fatalf("%s → %s: %v", r.Status, via, err)
					}
				}
				before := now()
				got, err := s.requestMove(ctx, tn, r.ID, to)
				after := now()
				if !slices.Contains(st.from, from) {
					if nexus.CodeOf(err) != nexus.CodeInvalidState || after != before {
						t.Errorf("%s → %s: %v, %+v → %+v; want invalid_state and no change", from, to, err, before, after)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s → %s: %v", from, to, err)
					continue
				}
				want := before
				if st.settles {
					want.pending -= 100
				}
				if st.release {
					want.available += 100
					want.used -= 100
				}
				if got.Status != to || after != want {
					t.Errorf("%s → %s: status %s, %+v → %+v; want %+v", from, to, got.Status, before, after, want)
				}
				stamped := map[string]bool{"completed_at": got.CompletedAt != nil, "failed_at": got.FailedAt != nil, "cancelled_at": got.CancelledAt != nil}
				for col, set := range stamped {
					if set != (col == st.stamp) {
						t.Errorf("%s → %s: %s set %v", from, to, col, set)
					}
				}
				n, err := db.For(tn).Select((*audit.Event)(nil)).Where("type = ?", st.event).Where("object_id = ?", r.ID).Count(ctx)
				if err != nil || n != 1 {
					t.Errorf("%s → %s: %d %s events (%v), want 1", from, to, n, st.event, err)
				}
			}
		}
	})
}
