package httpapi

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// failFinish makes every write of an idempotent answer fail in the
// database, the way a lost connection or a full disk would, until undone.
func failFinish(t *testing.T, db *store.DB) (undo func()) {
	t.Helper()
	ctx := context.Background()
	var create, drop []string
	if db.Dialect == store.Postgres {
		create = []string{
			`CREATE FUNCTION nexus_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
			`CREATE TRIGGER nexus_test_fail BEFORE UPDATE ON idempotency_keys FOR EACH ROW WHEN (NEW.state = 'done') EXECUTE FUNCTION nexus_test_fail()`,
		}
		drop = []string{`DROP TRIGGER nexus_test_fail ON idempotency_keys`, `DROP FUNCTION nexus_test_fail()`}
	} else {
		create = []string{`CREATE TRIGGER nexus_test_fail BEFORE UPDATE ON idempotency_keys WHEN NEW.state = 'done'
			BEGIN SELECT RAISE(ABORT, 'injected failure'); END`}
		drop = []string{`DROP TRIGGER nexus_test_fail`}
	}
	for _, q := range create {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		for _, q := range drop {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// TestIdempotentAnswerCommitsWithTheChange fails the write of the stored
// answer of an idempotent withdrawal: the withdrawal must roll back with it
// and the client get a retryable 503, never a 500 over a committed change;
// the retry with the same key then withdraws exactly once (issue 12.1).
func TestIdempotentAnswerCommitsWithTheChange(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		e := newTestEnvOn(t, db)
		base := serveLoopback(t, e.srv)
		key := e.testKey(t)
		if a := send(t, "POST", base+"/v1/test_helpers/funding", key, "", `{"amount":1000,"currency":"usdc","status":"completed"}`); a.status != 201 {
			t.Fatalf("funding: %d %s", a.status, a.body)
		}
		a := send(t, "POST", base+"/v1/addresses", key, "", `{"network":"ethereum","address":"0x52908400098527886e0f7030069857d2e4169ee7"}`)
		var addr struct{ ID string }
		if a.status != 201 || json.Unmarshal(a.body, &addr) != nil {
			t.Fatalf("address: %d %s", a.status, a.body)
		}
		body := `{"type":"withdrawal","amount":100,"currency":"usdc","address_id":"` + addr.ID + `"}`
		balance := func() (available, pending int64) {
			t.Helper()
			a := send(t, "GET", base+"/v1/balances/usdc", key, "", "")
			var b struct{ Available, Pending int64 }
			if a.status != 200 || json.Unmarshal(a.body, &b) != nil {
				t.Fatalf("balance: %d %s", a.status, a.body)
			}
			return b.Available, b.Pending
		}
		requests := func() int {
			t.Helper()
			a := send(t, "GET", base+"/v1/requests", key, "", "")
			var l struct{ Data []json.RawMessage }
			if a.status != 200 || json.Unmarshal(a.body, &l) != nil {
				t.Fatalf("list: %d %s", a.status, a.body)
			}
			return len(l.Data)
		}

		undo := failFinish(t, db)
		a = send(t, "POST", base+"/v1/requests", key, "k1", body)
		var env errEnvelope
		if json.Unmarshal(a.body, &env) != nil || a.status != 503 || env.Error.Code != nexus.CodeServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Fatalf("withdrawal whose answer cannot be stored: %d %v %s; want 503 service_unavailable with Retry-After", a.status, a.header, a.body)
		}
		if n := requests(); n != 0 {
			t.Fatalf("%d requests after the rolled-back withdrawal, want 0", n)
		}
		if av, pe := balance(); av != 1000 || pe != 0 {
			t.Fatalf("balance after the rolled-back withdrawal: available %d pending %d, want 1000 and 0", av, pe)
		}
		undo()

		// The key was released: the retry runs, and the one after replays.
		first := send(t, "POST", base+"/v1/requests", key, "k1", body)
		if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry: %d %v %s, want a fresh 201", first.status, first.header, first.body)
		}
		again := send(t, "POST", base+"/v1/requests", key, "k1", body)
		if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) {
			t.Fatalf("second retry: %d %v %s, want the replay of %s", again.status, again.header, again.body, first.body)
		}
		if n := requests(); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		if av, pe := balance(); av != 900 || pe != 100 {
			t.Fatalf("balance: available %d pending %d, want 900 and 100", av, pe)
		}
	})
}
