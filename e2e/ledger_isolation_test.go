package e2e

import (
	"slices"
	"testing"
)

// ---------------------------------------------------------------------------
// 5. Isolation: another partner, or the same partner's other environment,
// sees nothing of A's test objects (404 resource_missing, never 403), and
// changes nothing.

func TestLedgerIsolation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		tenA, a := lgSetup(t, b, "approved")
		aLive := a.as(b.CreateKey(t, tenA.Partner.ID, "live", "secret").Key)
		_, other := lgSetup(t, b, "approved")

		// A's test objects: a completed and a pending deposit, an address, a
		// pending request.
		done := a.credit(t, "usdc", 10_000)
		pend := a.fund(t, "usdc", 777, "pending")
		ad := a.addAddress(t, "ethereum", lgEthAddr())
		rq := a.mustWithdraw(t, 1000, "usdc", ad.ID)

		// B has objects of its own, so that its lists are not trivially empty.
		other.credit(t, "usdc", 5000)
		bad := other.addAddress(t, "ethereum", lgEthAddr())
		brq := other.mustWithdraw(t, 100, "usdc", bad.ID)

		type objState struct {
			funding, pendingFunding, address, request string
			balances                                  map[string]lgBalance
		}
		stateOfA := func(t *testing.T) objState {
			t.Helper()
			var f1, f2 lgFunding
			var ga lgAddress
			var gr lgRequest
			a.get(t, "/v1/funding/"+done.ID).want(t, 200, &f1)
			a.get(t, "/v1/funding/"+pend.ID).want(t, 200, &f2)
			a.get(t, "/v1/addresses/"+ad.ID).want(t, 200, &ga)
			a.get(t, "/v1/requests/"+rq.ID).want(t, 200, &gr)
			return objState{f1.Status, f2.Status, ga.Status, gr.Status, a.balances(t)}
		}
		initial := stateOfA(t)
		wantInitial := objState{"completed", "pending", "active", "pending", nil}
		if initial.funding != wantInitial.funding || initial.pendingFunding != wantInitial.pendingFunding ||
			initial.address != wantInitial.address || initial.request != wantInitial.request ||
			initial.balances["usdc"].Available != 9000 || initial.balances["usdc"].Pending != 1000 {
			t.Fatalf("unexpected starting state of A: %+v", initial)
		}
		unchanged := func(t *testing.T, after string) {
			t.Helper()
			s := stateOfA(t)
			same := s.funding == initial.funding && s.pendingFunding == initial.pendingFunding &&
				s.address == initial.address && s.request == initial.request
			for c, bal := range initial.balances {
				same = same && s.balances[c] == bal
			}
			if !same {
				t.Fatalf("after %s A's objects changed:\n before %+v\n after  %+v", after, initial, s)
			}
		}

		type call struct {
			method, path string
			body         any
			testHelper   bool
		}
		calls := []call{
			{"GET", "/v1/funding/" + done.ID, nil, false},
			{"GET", "/v1/funding/" + pend.ID, nil, false},
			{"GET", "/v1/addresses/" + ad.ID, nil, false},
			{"DELETE", "/v1/addresses/" + ad.ID, nil, false},
			{"GET", "/v1/requests/" + rq.ID, nil, false},
			{"POST", "/v1/requests/" + rq.ID + "/cancel", nil, false},
			{"POST", "/v1/requests/" + rq.ID + "/cancel", map[string]any{}, false},
			{"POST", "/v1/test_helpers/funding/" + pend.ID + "/complete", nil, true},
			{"POST", "/v1/test_helpers/requests/" + rq.ID + "/complete", nil, true},
			{"POST", "/v1/test_helpers/requests/" + rq.ID + "/fail", nil, true},
		}
		intruders := []struct {
			name string
			api  *lgAPI
			live bool
		}{
			{"other partner test key", other, false},
			{"same partner live key", aLive, true},
		}
		for _, in := range intruders {
			t.Run(in.name, func(t *testing.T) {
				for _, c := range calls {
					r := in.api.do(t, c.method, c.path, c.body, nil)
					if in.live && c.testHelper {
						// Test helpers refuse live credentials before looking
						// at the id, which reveals nothing either.
						r.wantErr(t, 403, "test_mode_only", "")
					} else {
						r.wantErr(t, 404, "resource_missing", "")
					}
					unchanged(t, r.Method+" "+r.Path)
				}

				// A's address cannot carry the intruder's withdrawal.
				in.api.withdraw(t, 100, "usdc", ad.ID).wantErr(t, 404, "resource_missing", "address_id")
				unchanged(t, "a withdrawal to A's address")

				// A's ids are not cursors of the intruder's lists.
				for _, p := range []string{
					"/v1/funding?starting_after=" + done.ID,
					"/v1/funding?starting_after=" + pend.ID,
					"/v1/addresses?starting_after=" + ad.ID,
					"/v1/requests?starting_after=" + rq.ID,
				} {
					in.api.get(t, p).wantErr(t, 400, "parameter_invalid", "starting_after")
				}

				// The intruder's lists never show A's objects.
				aIDs := []string{done.ID, pend.ID, ad.ID, rq.ID}
				for _, p := range []string{"/v1/funding", "/v1/addresses", "/v1/requests", "/v1/requests?status=pending", "/v1/funding?status=pending"} {
					for _, id := range in.api.listIDs(t, p, 100) {
						if slices.Contains(aIDs, id) {
							t.Fatalf("GET %s as %s lists A's %s", p, in.name, id)
						}
					}
				}
				// Nor do its balances include A's money.
				for c, bal := range in.api.balances(t) {
					if in.live && (bal.Available != 0 || bal.Pending != 0) {
						t.Fatalf("A's live %s balance %+v: A never funded live", c, bal)
					}
				}
			})
		}
		// B's own view is exactly its own.
		if ids := other.listIDs(t, "/v1/requests", 100); !slices.Equal(ids, []string{brq.ID}) {
			t.Fatalf("B's requests %v, want [%s]", ids, brq.ID)
		}
		other.wantBalance(t, "usdc", 4900, 100)

		// The same address is A's own in live: registering it there is not a
		// duplicate of the test one.
		var liveAd lgAddress
		aLive.post(t, "/v1/addresses", map[string]any{"network": "ethereum", "address": ad.Address}).want(t, 201, &liveAd)
		if liveAd.Environment != "live" || liveAd.ID == ad.ID {
			t.Fatalf("live address %+v", liveAd)
		}
		// And A still sees all its test objects untouched.
		unchanged(t, "every intrusion")
		if ids := a.listIDs(t, "/v1/addresses", 100); !slices.Equal(ids, []string{ad.ID}) {
			t.Fatalf("A's test addresses %v, want [%s]", ids, ad.ID)
		}
	})
}
