package e2e

import (
	"encoding/json"
	"fmt"
	mathrand "math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------
// 3. Property test: random operations against a model of the money rules

// lgPropertySeed is the seed of the property test: NEXUS_PROPERTY_SEED, or a
// fixed default so that a run is reproducible.
func lgPropertySeed(t testing.TB) int64 {
	if s := os.Getenv("NEXUS_PROPERTY_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("NEXUS_PROPERTY_SEED=%q: %v", s, err)
		}
		return n
	}
	return 20261123
}

func lgPropertySteps(t testing.TB) int {
	if s := os.Getenv("NEXUS_PROPERTY_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("NEXUS_PROPERTY_STEPS=%q: want a positive integer", s)
		}
		return n
	}
	return 150
}

type lgMFunding struct {
	id, currency, status string
	amount               int64
}

type lgMRequest struct {
	id, currency, status string
	amount               int64
}

// lgModel is what the API should show, derived from the operations alone.
type lgModel struct {
	available, pending map[string]int64
	funding            []*lgMFunding
	requests           []*lgMRequest
}

// expected recomputes the balances from the objects by the money rules of
// CONTRACT §5 (not incrementally), so that the model checks itself too.
func (m *lgModel) expected() (available, pending map[string]int64) {
	available, pending = map[string]int64{}, map[string]int64{}
	for _, f := range m.funding {
		if f.status == "completed" {
			available[f.currency] += f.amount
		}
	}
	for _, r := range m.requests {
		if r.status != "failed" && r.status != "cancelled" {
			available[r.currency] -= r.amount
		}
		if r.status == "pending" || r.status == "processing" {
			pending[r.currency] += r.amount
		}
	}
	return available, pending
}

func TestLedgerProperty(t *testing.T) {
	t.Parallel()
	seed := lgPropertySeed(t)
	steps := lgPropertySteps(t)
	t.Logf("property seed %d, %d steps per backend (override with NEXUS_PROPERTY_SEED, NEXUS_PROPERTY_STEPS)", seed, steps)
	forEachBackend(t, func(t *testing.T, b *Backend) {
		rng := mathrand.New(mathrand.NewSource(seed))
		_, api := lgSetup(t, b, "approved")
		currencies := []string{"usdc", "btc"}
		addr := map[string]lgAddress{
			"ethereum": api.addAddress(t, "ethereum", lgEthAddr()),
			"bitcoin":  api.addAddress(t, "bitcoin", lgBTCBech32),
		}
		network := map[string]string{"usdc": "ethereum", "btc": "bitcoin"}
		other := map[string]string{"ethereum": "bitcoin", "bitcoin": "ethereum"}

		m := &lgModel{available: map[string]int64{}, pending: map[string]int64{}}
		var history []string
		fail := func(format string, args ...any) {
			t.Helper()
			start := max(0, len(history)-12)
			t.Fatalf("seed %d, step %d: %s\nlast steps:\n  %s", seed, len(history), fmt.Sprintf(format, args...),
				strings.Join(history[start:], "\n  "))
		}
		// expectOK checks a 200/201 answer and returns its object's status.
		expectOK := func(r *lgResp, status int) string {
			t.Helper()
			if r.Status != status {
				fail("want %d: %s", status, r)
			}
			var o struct {
				ID     string `json:"id"`
				Status string `json:"status"`
				Amount int64  `json:"amount"`
			}
			if err := json.Unmarshal(r.Body, &o); err != nil {
				fail("%s: %v", r, err)
			}
			return o.Status
		}
		expectErr := func(r *lgResp, status int, code, param string) {
			t.Helper()
			if msg := r.errMismatch(status, code, param); msg != "" {
				fail("%s", msg)
			}
		}
		unknownID := func(prefix string) string {
			return prefix + "_01m8" + strings.Repeat("0", 22)
		}

		for step := 0; step < steps; step++ {
			cur := currencies[rng.Intn(len(currencies))]
			op := rng.Intn(100)
			var desc string
			switch {
			case op < 10: // a pending deposit
				amount := 1 + rng.Int63n(1000)
				desc = fmt.Sprintf("deposit pending %d %s", amount, cur)
				history = append(history, desc)
				f := api.fund(t, cur, amount, "pending")
				m.funding = append(m.funding, &lgMFunding{id: f.ID, currency: cur, status: "pending", amount: amount})

			case op < 20: // a completed deposit
				amount := 1 + rng.Int63n(1000)
				desc = fmt.Sprintf("deposit completed %d %s", amount, cur)
				history = append(history, desc)
				f := api.fund(t, cur, amount, "completed")
				m.funding = append(m.funding, &lgMFunding{id: f.ID, currency: cur, status: "completed", amount: amount})
				m.available[cur] += amount

			case op < 32: // complete a deposit, in whatever status it is
				if len(m.funding) == 0 || rng.Intn(10) == 0 {
					id := unknownID("fnd")
					history = append(history, "complete unknown deposit "+id)
					expectErr(api.post(t, "/v1/test_helpers/funding/"+id+"/complete", nil), 404, "resource_missing", "")
					break
				}
				f := m.funding[rng.Intn(len(m.funding))]
				history = append(history, fmt.Sprintf("complete deposit %s (%s %d %s)", f.id, f.status, f.amount, f.currency))
				r := api.post(t, "/v1/test_helpers/funding/"+f.id+"/complete", nil)
				if f.status == "pending" {
					if st := expectOK(r, 200); st != "completed" {
						fail("completed deposit answered status %s", st)
					}
					f.status = "completed"
					m.available[f.currency] += f.amount
				} else {
					expectErr(r, 409, "invalid_state", "")
				}

			case op < 58: // a withdrawal, sometimes uncovered, sometimes to the wrong network
				avail := m.available[cur]
				var amount int64
				if avail > 0 && rng.Intn(10) < 7 {
					amount = 1 + rng.Int63n(avail)
				} else {
					amount = avail + 1 + rng.Int63n(500)
				}
				wrong := rng.Intn(12) == 0
				ad := addr[network[cur]]
				if wrong {
					ad = addr[other[network[cur]]]
				}
				history = append(history, fmt.Sprintf("withdraw %d %s (available %d) to %s", amount, cur, avail, ad.Network))
				r := api.withdraw(t, amount, cur, ad.ID)
				switch {
				case wrong:
					expectErr(r, 422, "address_not_usable", "address_id")
				case amount > avail:
					expectErr(r, 422, "insufficient_funds", "amount")
				default:
					if st := expectOK(r, 201); st != "pending" {
						fail("new request answered status %s", st)
					}
					var rq lgRequest
					r.want(t, 201, &rq)
					m.requests = append(m.requests, &lgMRequest{id: rq.ID, currency: cur, status: "pending", amount: amount})
					m.available[cur] -= amount
					m.pending[cur] += amount
				}

			default: // cancel, complete or fail a request, in whatever status it is
				verb := []string{"cancel", "complete", "fail"}[rng.Intn(3)]
				path := map[string]string{
					"cancel":   "/v1/requests/%s/cancel",
					"complete": "/v1/test_helpers/requests/%s/complete",
					"fail":     "/v1/test_helpers/requests/%s/fail",
				}[verb]
				if len(m.requests) == 0 || rng.Intn(12) == 0 {
					id := unknownID("prq")
					history = append(history, verb+" unknown request "+id)
					expectErr(api.post(t, fmt.Sprintf(path, id), nil), 404, "resource_missing", "")
					break
				}
				rq := m.requests[rng.Intn(len(m.requests))]
				history = append(history, fmt.Sprintf("%s request %s (%s %d %s)", verb, rq.id, rq.status, rq.amount, rq.currency))
				r := api.post(t, fmt.Sprintf(path, rq.id), nil)
				allowed := map[string][]string{
					"cancel":   {"pending"},
					"complete": {"pending", "processing"},
					"fail":     {"pending", "processing"},
				}[verb]
				to := map[string]string{"cancel": "cancelled", "complete": "completed", "fail": "failed"}[verb]
				ok := false
				for _, s := range allowed {
					ok = ok || rq.status == s
				}
				if !ok {
					expectErr(r, 409, "invalid_state", "")
					break
				}
				if st := expectOK(r, 200); st != to {
					fail("%s answered status %s, want %s", verb, st, to)
				}
				rq.status = to
				m.pending[rq.currency] -= rq.amount
				if verb != "complete" {
					m.available[rq.currency] += rq.amount
				}
			}

			// After every step: the API's balances are the model's, and the
			// model agrees with the money rules.
			wantAvail, wantPend := m.expected()
			got := api.balances(t)
			for _, c := range lgCurrencies {
				if wantAvail[c] != m.available[c] || wantPend[c] != m.pending[c] {
					fail("model inconsistent for %s: incremental %d/%d, from the rules %d/%d", c, m.available[c], m.pending[c], wantAvail[c], wantPend[c])
				}
				if got[c].Available != wantAvail[c] || got[c].Pending != wantPend[c] {
					fail("%s balance: API available %d pending %d, model available %d pending %d", c, got[c].Available, got[c].Pending, wantAvail[c], wantPend[c])
				}
				if got[c].Available < 0 {
					fail("%s available %d < 0", c, got[c].Available)
				}
			}
		}

		// At the end: the objects the API lists are the model's, in the
		// model's statuses, and the money rules hold over the listed objects.
		t.Logf("%d funding, %d requests", len(m.funding), len(m.requests))
		byStatus := func(path string) map[string]string {
			out := map[string]string{}
			for _, id := range api.listIDs(t, path, 100) {
				var o struct {
					Status string `json:"status"`
				}
				api.get(t, path+"/"+id).want(t, 200, &o)
				out[id] = o.Status
			}
			return out
		}
		fs, rs := byStatus("/v1/funding"), byStatus("/v1/requests")
		if len(fs) != len(m.funding) || len(rs) != len(m.requests) {
			fail("API lists %d funding and %d requests, model has %d and %d", len(fs), len(rs), len(m.funding), len(m.requests))
		}
		for _, f := range m.funding {
			if fs[f.id] != f.status {
				fail("deposit %s: API status %q, model %q", f.id, fs[f.id], f.status)
			}
		}
		for _, r := range m.requests {
			if rs[r.id] != r.status {
				fail("request %s: API status %q, model %q", r.id, rs[r.id], r.status)
			}
		}
	})
}
