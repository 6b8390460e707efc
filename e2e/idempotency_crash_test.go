package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIdempotencyKill9 kills the server with SIGKILL while many idempotent
// withdrawals run, again and again, then retries every key once the longest
// abandonment window has passed: each key must have made exactly one
// withdrawal, and the balance must account for exactly those (issue 12.1).
// Before the answer was stored in the transaction of the change, a kill
// between the commit and the stored answer let the retry withdraw again.
func TestIdempotencyKill9(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		b.RequirePostgres(t)
		// The window is short so the retries need not wait a minute; what
		// is tested is what happens after it.
		const window = time.Second
		env := []string{"NEXUS_IDEMPOTENCY_ABANDON_AFTER=" + window.String()}
		start := func() *Server {
			s, err := startServer(b, t.Name(), env)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		ten := b.NewTenant(t, "approved")
		srv := start()
		setup := lgClient(t, srv, ten.Admin.Key, 2)
		const funded = 1_000_000_000
		setup.credit(t, "usdc", funded)
		ad := setup.addAddress(t, "ethereum", lgEthAddr())
		body := func(key string) map[string]any {
			w := lgWithdrawal(1, "usdc", ad.ID)
			w["metadata"] = map[string]string{"k": key}
			return w
		}

		const rounds, workers, answersBeforeKill = 4, 48, 200
		var keys []string
		var keysMu sync.Mutex
		var unavailable atomic.Int64
		for round := 0; round < rounds; round++ {
			api := lgClient(t, srv, ten.Admin.Key, workers)
			var answered atomic.Int64
			killed := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-killed:
							return
						default:
						}
						k := fmt.Sprintf("kill9-%d-%d-%d", round, w, i)
						keysMu.Lock()
						keys = append(keys, k)
						keysMu.Unlock()
						r, err := api.send("POST", "/v1/requests", body(k), lgHdr{"Idempotency-Key": k})
						if err != nil {
							return // the server is gone
						}
						switch {
						case r.Status == 503 && r.Header.Get("Retry-After") != "":
							// An overloaded machine (the whole suite on two
							// cores) may time out; the retry below settles it.
							unavailable.Add(1)
						case r.Status != 201:
							t.Errorf("round %d before the kill: %s", round, r)
						}
						if answered.Add(1) == answersBeforeKill {
							srv.kill() // SIGKILL, with requests in flight
							close(killed)
						}
					}
				}()
			}
			wg.Wait()
			api.hc.CloseIdleConnections()
			srv = start()
		}
		// Keys left running by the last killed process are taken back once
		// the abandonment window is over (no sooner: until then a retry is
		// idempotency_key_in_use, retried below; some slack for the load).
		reclaimable := time.Now().Add(window + 3*time.Second)
		defer func() {
			for _, p := range srv.stopAndCheck() {
				t.Errorf("server after the kills: %s", p)
			}
		}()

		api := lgClient(t, srv, ten.Admin.Key, 16)
		ids := make(map[string]string, len(keys))
		var idsMu sync.Mutex
		var wg sync.WaitGroup
		next := make(chan string)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range next {
					r, err := api.send("POST", "/v1/requests", body(k), lgHdr{"Idempotency-Key": k})
					for try := 0; err == nil && try < 50; try++ {
						if e, _ := r.apiErr(); r.Status == 409 && e.Code == "idempotency_key_in_use" && time.Now().Before(reclaimable) {
							time.Sleep(50 * time.Millisecond) // until the window is over
							try--
						} else if r.Status == 503 {
							unavailable.Add(1)
							time.Sleep(100 * time.Millisecond) // Retry-After, shortened
						} else {
							break
						}
						r, err = api.send("POST", "/v1/requests", body(k), lgHdr{"Idempotency-Key": k})
					}
					if err != nil {
						t.Errorf("retry %s: %v", k, err)
						continue
					}
					var rq lgRequest
					if r.Status != 201 || json.Unmarshal(r.Body, &rq) != nil {
						t.Errorf("retry %s: %s", k, r)
						continue
					}
					idsMu.Lock()
					ids[k] = rq.ID
					idsMu.Unlock()
				}
			}()
		}
		for _, k := range keys {
			next <- k
		}
		close(next)
		wg.Wait()

		// Exactly one request per key, and it is the one the retry answered.
		db := OpenDB(t, b.URL)
		rows, err := db.Query(b.SQL(`SELECT id, metadata FROM requests WHERE partner_id = ? AND environment = 'test'`), ten.Partner.ID)
		if err != nil {
			t.Fatal(err)
		}
		perKey := map[string][]string{}
		for rows.Next() {
			var id, meta string
			if err := rows.Scan(&id, &meta); err != nil {
				t.Fatal(err)
			}
			var m map[string]string
			if err := json.Unmarshal([]byte(meta), &m); err != nil {
				t.Fatalf("request %s metadata %q: %v", id, meta, err)
			}
			perKey[m["k"]] = append(perKey[m["k"]], id)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		duplicates, total := 0, 0
		for k, got := range perKey {
			total += len(got)
			if len(got) > 1 {
				duplicates += len(got) - 1
				t.Errorf("key %s made %d withdrawals: %v", k, len(got), got)
			} else if id, ok := ids[k]; ok && id != got[0] {
				t.Errorf("key %s: the retry answered %s, but the withdrawal is %s", k, id, got[0])
			}
		}
		for _, k := range keys {
			if _, ok := perKey[k]; !ok {
				t.Errorf("key %s: no withdrawal after its retry answered 201", k)
			}
		}
		t.Logf("%d kills, %d keys, %d withdrawals, %d duplicates (%.2f per kill), %d answers 503 (retried)",
			rounds, len(keys), total, duplicates, float64(duplicates)/rounds, unavailable.Load())
		api.wantBalance(t, "usdc", funded-int64(total), int64(total))
	})
}
