package e2e

// The balances cache (issue 7) across a fleet: a balance read right after a
// write on the same instance is already fresh; another instance converges
// within seconds (PostgreSQL NOTIFY, the SQLite poll, Redis when
// configured); and money movements do not drop the credential caches. The
// helpers of this file are prefixed bc so that they never collide with the
// harness's own.

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBalancesCacheAcrossInstances runs on two dedicated servers of each
// backend (on PostgreSQL with Redis too when the harness has one).
func TestBalancesCacheAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		bcCheckFleet(t, b.NewServer(t), b.NewServer(t), b.NewTenant(t, "approved"))
	})
}

// TestBalancesCacheAcrossInstancesRedis is the same with both servers on
// Redis as well, whatever the backend.
func TestBalancesCacheAcrossInstancesRedis(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		redis := "NEXUS_REDIS_URL=" + flRedisURL(t, b)
		bcCheckFleet(t, flNewServer(t, b, redis), flNewServer(t, b, redis), b.NewTenant(t, "approved"))
	})
}

// bcCheckFleet moves money through one server and then the other, and
// checks both views of the balance after each step.
func bcCheckFleet(t *testing.T, serverA, serverB *Server, tn Tenant) {
	a := lgClient(t, serverA, tn.Admin.Key, 2)
	b := lgClient(t, serverB, tn.Admin.Key, 2)
	a.balances(t) // cached on both, with the admin key's verification
	b.balances(t)
	authMissesA, authMissesB := bcAuthMisses(t, serverA), bcAuthMisses(t, serverB)

	adr := a.addAddress(t, "ethereum", lgEthAddr())
	var req lgRequest
	steps := []struct {
		name          string
		via, other    *lgAPI // via made the last write
		change        func()
		avail, pendng int64 // usdc afterwards
	}{
		{"credit on A", a, b, func() { a.credit(t, "usdc", 1000) }, 1000, 0},
		{"withdrawal on A", a, b, func() { req = a.mustWithdraw(t, 300, "usdc", adr.ID) }, 700, 300},
		{"cancel on B", b, a, func() { b.transition(t, "/v1/requests/"+req.ID+"/cancel", "cancelled") }, 1000, 0},
		{"withdrawal on B, failed on A", a, b, func() {
			req = b.mustWithdraw(t, 400, "usdc", adr.ID)
			a.transition(t, "/v1/test_helpers/requests/"+req.ID+"/fail", "failed")
		}, 1000, 0},
		{"withdrawal and completion on B", b, a, func() {
			req = b.mustWithdraw(t, 250, "usdc", adr.ID)
			b.transition(t, "/v1/test_helpers/requests/"+req.ID+"/complete", "completed")
		}, 750, 0},
		{"pending deposit completed on A", a, b, func() {
			f := a.fund(t, "usdc", 50, "pending")
			a.transition(t, "/v1/test_helpers/funding/"+f.ID+"/complete", "completed")
		}, 800, 0},
	}
	for _, st := range steps {
		for _, api := range []*lgAPI{a, b} {
			api.balances(t) // both hold the value before the change
		}
		st.change()
		// Read-your-writes: no polling on the instance that made the change.
		if got := st.via.balances(t)["usdc"]; got.Available != st.avail || got.Pending != st.pendng {
			t.Fatalf("%s: the same instance read available %d pending %d right after, want %d %d",
				st.name, got.Available, got.Pending, st.avail, st.pendng)
		}
		var got lgBalance
		took, ok := poll(3*time.Second, 10*time.Millisecond, func() bool {
			got = st.other.balances(t)["usdc"]
			return got.Available == st.avail && got.Pending == st.pendng
		})
		if !ok {
			t.Fatalf("%s: the other instance still reads available %d pending %d after %s, want %d %d",
				st.name, got.Available, got.Pending, took, st.avail, st.pendng)
		}
		// The cache's maximum age (1 s) would also get there: converging
		// well before it shows the invalidation arrived.
		if took > 700*time.Millisecond {
			t.Errorf("%s: the other instance took %s to converge, want < 700ms", st.name, took)
		}
		var one lgBalance
		st.other.get(t, "/v1/balances/usdc").want(t, 200, &one)
		if one.Available != st.avail || one.Pending != st.pendng {
			t.Errorf("%s: GET /v1/balances/usdc on the other instance: %+v after the list converged", st.name, one)
		}
		t.Logf("%s: the other instance converged after %s", st.name, took.Round(time.Millisecond))
	}

	// Balances topics travel with credential topics; credential caches
	// must not read them as "drop everything".
	if m := bcAuthMisses(t, serverA); m != authMissesA {
		t.Errorf("server A: API-key cache misses went from %d to %d while only money moved", authMissesA, m)
	}
	if m := bcAuthMisses(t, serverB); m != authMissesB {
		t.Errorf("server B: API-key cache misses went from %d to %d while only money moved", authMissesB, m)
	}
}

// bcAuthMisses reads nexus_auth_cache_misses_total from s's /metrics.
func bcAuthMisses(t *testing.T, s *Server) int64 {
	t.Helper()
	r := scrape(t, s)
	wantStatus(t, r, 200)
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "nexus_auth_cache_misses_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", sc.Text(), err)
			}
			return int64(f)
		}
	}
	t.Fatalf("/metrics lacks nexus_auth_cache_misses_total")
	return 0
}
