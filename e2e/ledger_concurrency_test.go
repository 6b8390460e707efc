package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// lgBurst runs n calls at once (released together) and returns their
// answers in call order; a transport error fails the test.
func lgBurst(t testing.TB, n int, call func(i int) (*lgResp, error)) []*lgResp {
	t.Helper()
	out := make([]*lgResp, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i], errs[i] = call(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// 2. Concurrency: the balance is never overspent, transitions happen once

func TestLedgerConcurrency(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		t.Run("withdrawals never overspend", func(t *testing.T) {
			t.Parallel()
			ten, _ := lgSetup(t, b, "approved")
			api := lgClient(t, b.Server(t), ten.Admin.Key, 64)
			api.credit(t, "usdc", 1000)
			ad := api.addAddress(t, "ethereum", lgEthAddr())

			const calls, amount = 50, 100
			answers := lgBurst(t, calls, func(int) (*lgResp, error) {
				return api.send("POST", "/v1/requests", lgWithdrawal(amount, "usdc", ad.ID), nil)
			})
			var created []string
			refused := 0
			for _, r := range answers {
				switch r.Status {
				case 201:
					var rq lgRequest
					r.want(t, 201, &rq)
					if rq.Status != "pending" || rq.Amount != amount {
						t.Errorf("created request %+v", rq)
					}
					created = append(created, rq.ID)
				case 422:
					r.wantErr(t, 422, "insufficient_funds", "amount")
					refused++
				default:
					t.Errorf("unexpected answer: %s", r)
				}
			}
			if len(created) != 10 || refused != 40 {
				t.Fatalf("%d created and %d refused, want 10 and 40", len(created), refused)
			}
			api.wantBalance(t, "usdc", 0, 1000)

			// Page through the pending ones in pages of 3.
			pending := api.listIDs(t, "/v1/requests?status=pending", 3)
			slices.Sort(created)
			slices.Sort(pending)
			if !slices.Equal(pending, created) {
				t.Fatalf("pending requests %v, want the created %v", pending, created)
			}
			if all := api.listIDs(t, "/v1/requests", 100); len(all) != 10 {
				t.Fatalf("%d requests in all, want 10", len(all))
			}

			// Race every transition of every request against the others:
			// each request moves exactly once.
			var paths []string
			for _, id := range created {
				for _, p := range []string{"/v1/requests/%s/cancel", "/v1/test_helpers/requests/%s/complete", "/v1/test_helpers/requests/%s/fail"} {
					paths = append(paths, fmt.Sprintf(p, id))
				}
			}
			answers = lgBurst(t, len(paths), func(i int) (*lgResp, error) { return api.send("POST", paths[i], nil, nil) })
			won := map[string]string{}
			for _, r := range answers {
				switch r.Status {
				case 200:
					var rq lgRequest
					r.want(t, 200, &rq)
					if prev, dup := won[rq.ID]; dup {
						t.Errorf("request %s moved twice: %s then %s", rq.ID, prev, rq.Status)
					}
					won[rq.ID] = rq.Status
				case 409:
					r.wantErr(t, 409, "invalid_state", "")
				default:
					t.Errorf("unexpected answer: %s", r)
				}
			}
			if len(won) != len(created) {
				t.Fatalf("%d requests moved, want %d: %v", len(won), len(created), won)
			}
			var back int64
			for id, st := range won {
				var rq lgRequest
				api.get(t, "/v1/requests/"+id).want(t, 200, &rq)
				if rq.Status != st {
					t.Errorf("request %s: status %s, but the winning transition answered %s", id, rq.Status, st)
				}
				if st != "completed" {
					back += amount
				}
			}
			api.wantBalance(t, "usdc", back, 0)
		})

		t.Run("a deposit completes once", func(t *testing.T) {
			t.Parallel()
			ten, _ := lgSetup(t, b, "approved")
			api := lgClient(t, b.Server(t), ten.Admin.Key, 16)
			f := api.fund(t, "btc", 12345, "pending")
			answers := lgBurst(t, 16, func(int) (*lgResp, error) {
				return api.send("POST", "/v1/test_helpers/funding/"+f.ID+"/complete", nil, nil)
			})
			ok := 0
			for _, r := range answers {
				switch r.Status {
				case 200:
					ok++
				case 409:
					r.wantErr(t, 409, "invalid_state", "")
				default:
					t.Errorf("unexpected answer: %s", r)
				}
			}
			if ok != 1 {
				t.Fatalf("%d completions succeeded, want 1", ok)
			}
			api.wantBalance(t, "btc", 12345, 0)
		})

		t.Run("deposits and withdrawals interleaved", func(t *testing.T) {
			t.Parallel()
			// Twenty completed deposits of 50 race twenty withdrawals of 50:
			// whatever the order, nothing is overspent and the money adds up.
			ten, _ := lgSetup(t, b, "approved")
			api := lgClient(t, b.Server(t), ten.Admin.Key, 40)
			ad := api.addAddress(t, "ethereum", lgEthAddr())
			answers := lgBurst(t, 40, func(i int) (*lgResp, error) {
				if i%2 == 0 {
					return api.send("POST", "/v1/test_helpers/funding", map[string]any{"amount": 50, "currency": "usdt", "status": "completed"}, nil)
				}
				return api.send("POST", "/v1/requests", lgWithdrawal(50, "usdt", ad.ID), nil)
			})
			var made int64
			for i, r := range answers {
				switch {
				case i%2 == 0:
					r.want(t, 201, nil)
				case r.Status == 201:
					made++
				default:
					r.wantErr(t, 422, "insufficient_funds", "amount")
				}
			}
			api.wantBalance(t, "usdt", 1000-50*made, 50*made)
			if n := len(api.listIDs(t, "/v1/requests", 100)); int64(n) != made {
				t.Fatalf("%d requests listed, %d created", n, made)
			}
		})
	})
}

// ---------------------------------------------------------------------------
// 4. Idempotency-Key

func TestLedgerIdempotency(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		ten, api := lgSetup(t, b, "approved")
		api.credit(t, "usdc", 100_000)
		ad := api.addAddress(t, "ethereum", lgEthAddr())
		count := func(t *testing.T) int { t.Helper(); return len(api.listIDs(t, "/v1/requests", 100)) }
		body := lgWithdrawal(1000, "usdc", ad.ID)
		withKey := func(t *testing.T, a *lgAPI, key string, body any) *lgResp {
			t.Helper()
			return a.do(t, "POST", "/v1/requests", body, lgHdr{"Idempotency-Key": key})
		}

		t.Run("replay", func(t *testing.T) {
			key := "replay-" + randomHex(8)
			first := withKey(t, api, key, body)
			var r1 lgRequest
			first.want(t, 201, &r1)
			if h := first.Header.Get("Idempotent-Replayed"); h != "" {
				t.Fatalf("first answer carries Idempotent-Replayed: %q", h)
			}
			second := withKey(t, api, key, body)
			if second.Status != first.Status || string(second.Body) != string(first.Body) {
				t.Fatalf("replay differs:\nfirst  %s\nsecond %s", first, second)
			}
			if h := second.Header.Get("Idempotent-Replayed"); h != "true" {
				t.Fatalf("replay: Idempotent-Replayed %q, want true", h)
			}
			if ids := api.listIDs(t, "/v1/requests", 100); !slices.Equal(ids, []string{r1.ID}) {
				t.Fatalf("requests after a replay: %v, want [%s]", ids, r1.ID)
			}
			api.wantBalance(t, "usdc", 99_000, 1000)

			// Another body under the same key is refused; so is another path.
			withKey(t, api, key, lgWithdrawal(1001, "usdc", ad.ID)).wantErr(t, 409, "idempotency_key_reused", "Idempotency-Key")
			api.do(t, "POST", "/v1/addresses", map[string]any{"network": "ethereum", "address": lgEthAddr()},
				lgHdr{"Idempotency-Key": key}).wantErr(t, 409, "idempotency_key_reused", "Idempotency-Key")
			if n := count(t); n != 1 {
				t.Fatalf("%d requests after a reused key, want 1", n)
			}
			if n := len(api.listIDs(t, "/v1/addresses", 100)); n != 1 {
				t.Fatalf("%d addresses after a reused key, want 1", n)
			}
			api.wantBalance(t, "usdc", 99_000, 1000)
			// The first answer still replays after the refusals.
			third := withKey(t, api, key, body)
			if third.Status != 201 || string(third.Body) != string(first.Body) || third.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay after refusals: %s", third)
			}
		})

		t.Run("errors replay too", func(t *testing.T) {
			// The first answer is what is kept, even a refusal (CONTRACT §5:
			// the same key replays the first answer, status and body).
			key := "err-" + randomHex(8)
			big := lgWithdrawal(10_000_000, "usdc", ad.ID)
			first := withKey(t, api, key, big)
			first.wantErr(t, 422, "insufficient_funds", "amount")
			second := withKey(t, api, key, big)
			if second.Status != 422 || string(second.Body) != string(first.Body) || second.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay of a 422:\nfirst  %s\nsecond %s (replayed %q)", first, second, second.Header.Get("Idempotent-Replayed"))
			}
		})

		t.Run("concurrent", func(t *testing.T) {
			key := "conc-" + randomHex(8)
			before := count(t)
			bapi := lgClient(t, b.Server(t), ten.Admin.Key, 10)
			answers := lgBurst(t, 10, func(int) (*lgResp, error) {
				return bapi.send("POST", "/v1/requests", body, lgHdr{"Idempotency-Key": key})
			})
			ids := map[string]bool{}
			originals := 0
			for _, r := range answers {
				switch r.Status {
				case 201:
					var rq lgRequest
					r.want(t, 201, &rq)
					ids[rq.ID] = true
					if r.Header.Get("Idempotent-Replayed") != "true" {
						originals++
					}
				case 409:
					r.wantErr(t, 409, "idempotency_key_in_use", "Idempotency-Key")
				default:
					t.Errorf("unexpected answer: %s", r)
				}
			}
			if len(ids) != 1 || originals != 1 {
				t.Fatalf("the 201 answers name %d requests (%d not marked replayed), want 1 (1): %v", len(ids), originals, ids)
			}
			if n := count(t); n != before+1 {
				t.Fatalf("%d requests created by ten calls with one key, want 1", n-before)
			}
			// Once settled, the key replays.
			r := withKey(t, api, key, body)
			var rq lgRequest
			r.want(t, 201, &rq)
			if !ids[rq.ID] || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay after the burst: %s", r)
			}
		})

		t.Run("per partner and environment", func(t *testing.T) {
			key := "shared-" + randomHex(8)
			first := withKey(t, api, key, body)
			var mine lgRequest
			first.want(t, 201, &mine)

			// Another partner's use of the key is its own.
			_, other := lgSetup(t, b, "approved")
			other.credit(t, "usdc", 5000)
			oad := other.addAddress(t, "ethereum", lgEthAddr())
			var theirs lgRequest
			r := withKey(t, other, key, lgWithdrawal(1000, "usdc", oad.ID))
			r.want(t, 201, &theirs)
			if theirs.ID == mine.ID || r.Header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("another partner's first use of a key was a replay: %s", r)
			}
			other.wantBalance(t, "usdc", 4000, 1000)

			// Same partner, live environment: its own key space too.
			live := api.as(b.CreateKey(t, ten.Partner.ID, "live", "secret").Key)
			addr := lgEthAddr()
			var tad, lad lgAddress
			api.do(t, "POST", "/v1/addresses", map[string]any{"network": "ethereum", "address": addr}, lgHdr{"Idempotency-Key": key + "-adr"}).want(t, 201, &tad)
			r = live.do(t, "POST", "/v1/addresses", map[string]any{"network": "ethereum", "address": addr}, lgHdr{"Idempotency-Key": key + "-adr"})
			r.want(t, 201, &lad)
			if lad.ID == tad.ID || lad.Environment != "live" || r.Header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("a live use of a test key was a replay: %s", r)
			}
			if ids := live.listIDs(t, "/v1/addresses", 100); !slices.Equal(ids, []string{lad.ID}) {
				t.Fatalf("live addresses %v, want [%s]", ids, lad.ID)
			}
		})

		t.Run("key length", func(t *testing.T) {
			before := count(t)
			withKey(t, api, strings.Repeat("k", 256), body).wantErr(t, 400, "parameter_invalid", "Idempotency-Key")
			if n := count(t); n != before {
				t.Fatalf("a refused key created %d requests", n-before)
			}
			r := withKey(t, api, strings.Repeat("k", 255), body)
			r.want(t, 201, nil)
			if n := count(t); n != before+1 {
				t.Fatalf("a 255-character key: %d requests created, want 1", n-before)
			}
		})

		t.Run("api key secret is not replayed", func(t *testing.T) {
			key := "apikey-" + randomHex(8)
			keysBefore := len(api.listIDs(t, "/v1/api_keys", 100))
			create := func() (*lgResp, map[string]json.RawMessage) {
				r := api.do(t, "POST", "/v1/api_keys", map[string]any{"name": "idem"}, lgHdr{"Idempotency-Key": key})
				var m map[string]json.RawMessage
				r.want(t, 201, &m)
				return r, m
			}
			first, m1 := create()
			var secret string
			if err := json.Unmarshal(m1["key"], &secret); err != nil || !strings.HasPrefix(secret, "nx_test_sk_") {
				t.Fatalf("the create answer lacks the key: %s", first)
			}
			second, m2 := create()
			if second.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("second create was not a replay: %s", second)
			}
			if _, has := m2["key"]; has || strings.Contains(string(second.Body), secret) {
				t.Fatalf("the replay shows the secret again: %s", second)
			}
			// Everything else is the first answer's.
			delete(m1, "key")
			if len(m1) != len(m2) {
				t.Fatalf("replay fields differ:\nfirst  %s\nsecond %s", first, second)
			}
			for k, v := range m1 {
				if string(m2[k]) != string(v) {
					t.Fatalf("replay field %s = %s, first answer had %s", k, m2[k], v)
				}
			}
			if n := len(api.listIDs(t, "/v1/api_keys", 100)); n != keysBefore+1 {
				t.Fatalf("%d api keys made by a create and its replay, want 1", n-keysBefore)
			}
			// The key made works.
			api.as(secret).get(t, "/v1/balances").want(t, 200, nil)
		})
	})
}
