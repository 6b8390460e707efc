package idempotency

import (
	"sync"
	"testing"

	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// dbOf is the database opener newStore uses for a test run by
// TestOnPostgres (keyed by its *testing.T); other tests get SQLite.
var dbOf sync.Map

// TestOnPostgres runs the store's tests again on a fresh PostgreSQL
// database each (storetest: skipped, with the reason, when there is none).
// A new test of the store belongs in its list.
func TestOnPostgres(t *testing.T) {
	for name, fn := range map[string]func(*testing.T){
		"BeginFinishReplay":       TestBeginFinishReplay,
		"AbandonedKeyIsReclaimed": TestAbandonedKeyIsReclaimed,
		"ExpiredKeyIsForgotten":   TestExpiredKeyIsForgotten,
		"PruneExpired":            TestPruneExpired,
	} {
		t.Run(name, func(t *testing.T) {
			storetest.AdminDB(t) // skips (or fails) here when there is no PostgreSQL
			opened := false
			dbOf.Store(t, func(tb testing.TB) *store.DB { opened = true; return storetest.OpenPostgres(tb) })
			t.Cleanup(func() { dbOf.Delete(t) })
			fn(t)
			if !opened {
				t.Fatal("the test did not open its database through newStore: it ran on nothing")
			}
		})
	}
}
