package e2e

import (
	"context"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A frozen Redis must not freeze the API (every Redis call is bounded and
// a circuit breaker skips Redis while it stalls). A latency promise, so the
// test is serial (no t.Parallel: the package's parallel tests wait until
// it ends) and logs the measured p99.
func TestRedisFrozenKeepsLatency(t *testing.T) {
	if len(backends) == 0 {
		t.Skip("no backend")
	}
	b := backends[0] // the promise is about Redis: one backend is enough
	rd := flStartRedis(t)
	s := flNewServer(t, b, "NEXUS_REDIS_URL="+rd.URL())
	tn := b.NewTenant(t, "approved")
	p := flPartner(t, b, 1_000_000)
	key := b.CreateKey(t, p.ID, "test", "secret").Key
	hc := flClient(t, 16)
	for i := 0; i < 20; i++ { // warm: the key is cached, Redis connections open
		wantStatus(t, partnerAs(t, s, bearer(key)), 200)
	}
	if r := do(t, "GET", s.URL+"/readyz", nil, nil); r.Status != 200 || r.JSON["redis"] != "ok" {
		t.Errorf("healthy Redis: /readyz %s, want 200 with redis ok", r)
	}

	// Freeze Redis for 10 s (DEBUG SLEEP blocks its only thread).
	opt, err := redis.ParseURL(rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.ReadTimeout = 15 * time.Second
	admin := redis.NewClient(opt)
	defer admin.Close()
	slept := make(chan error, 1)
	go func() { slept <- admin.Do(context.Background(), "DEBUG", "SLEEP", "10").Err() }()
	probe := redis.NewClient(&redis.Options{Addr: opt.Addr, ReadTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer probe.Close()
	if _, ok := poll(3*time.Second, 20*time.Millisecond, func() bool {
		return probe.Ping(context.Background()).Err() != nil
	}); !ok {
		t.Fatal("Redis did not freeze under DEBUG SLEEP")
	}
	frozenAt := time.Now()

	// Authenticated traffic for 6 s of the freeze: reads from 8 clients and
	// key creations (which publish an invalidation) from one more.
	var mu sync.Mutex
	var lat []time.Duration
	statuses := map[int]int{}
	stop := time.Now().Add(6 * time.Second)
	var wg sync.WaitGroup
	send := func(method, path, k string, body any) {
		t0 := time.Now()
		r, err := flSend(hc, method, s.URL+path, bearer(k), body)
		d := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		lat = append(lat, d)
		if err != nil {
			statuses[-1]++
			return
		}
		statuses[r.Status]++
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				send("GET", "/v1/partner", key, nil)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(stop) {
			send("POST", "/v1/api_keys", tn.Admin.Key, map[string]any{"name": "during the freeze"})
		}
	}()
	wg.Wait()
	// Readiness and metrics while Redis is frozen: degraded, still ready.
	ready := do(t, "GET", s.URL+"/readyz", nil, nil)
	metrics := do(t, "GET", s.URL+"/metrics", bearer(metricsToken), nil)
	if time.Since(frozenAt) > 9*time.Second {
		t.Fatalf("the load outlasted the freeze (%s): the measure is not of a frozen Redis", time.Since(frozenAt))
	}

	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("Redis frozen: %d authenticated requests, p50 %s, p99 %s, max %s; statuses %v",
		len(lat), lat[len(lat)/2].Round(time.Microsecond), p99.Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), statuses)
	if p99 >= 300*time.Millisecond {
		t.Errorf("p99 %s with Redis frozen, want < 300ms", p99)
	}
	if statuses[-1] > 0 || statuses[200]+statuses[201] != len(lat) {
		t.Errorf("requests failed while Redis was frozen: %v", statuses)
	}
	if ready.Status != 200 || ready.JSON["redis"] != "degraded" {
		t.Errorf("Redis frozen: /readyz %s, want 200 with redis degraded", ready)
	}
	if m := regexp.MustCompile(`(?m)^nexus_redis_breaker_state (\d+)`).FindSubmatch(metrics.Body); m == nil || string(m[1]) == "0" {
		t.Errorf("Redis frozen: nexus_redis_breaker_state %q, want 1 or 2 (not closed)", m)
	}
	if m := regexp.MustCompile(`(?m)^nexus_redis_errors_total (\d+)`).FindSubmatch(metrics.Body); m == nil || string(m[1]) == "0" {
		t.Errorf("Redis frozen: nexus_redis_errors_total %q, want > 0", m)
	}

	// Redis wakes up: the breaker closes by itself, and each change was
	// logged once.
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	took, ok := poll(15*time.Second, 100*time.Millisecond, func() bool {
		partnerAs(t, s, bearer(key))
		return flLogCount(s, "shared store is back") > 0
	})
	if !ok {
		t.Fatalf("the server did not return to Redis within %s:\n%s", took, tail(s.Logs(), 3000))
	}
	if r := do(t, "GET", s.URL+"/readyz", nil, nil); r.Status != 200 || r.JSON["redis"] != "ok" {
		t.Errorf("Redis back: /readyz %s, want redis ok", r)
	}
	if n := flLogCount(s, "redis unavailable"); n != 1 {
		t.Errorf("the breaker's opening was logged %d times, want once:\n%s", n, tail(s.Logs(), 3000))
	}
	if n := flLogCount(s, "shared store is back"); n != 1 {
		t.Errorf("the breaker's closing was logged %d times, want once", n)
	}
	var warns int
	for _, line := range s.LogLines() {
		if line.Fields["level"] == "WARN" || line.Fields["level"] == "ERROR" {
			warns++
		}
	}
	if warns > 5 {
		t.Errorf("%d warnings logged for one 10 s freeze, want a few (state changes only):\n%s", warns, tail(s.Logs(), 3000))
	}
}

// Every key the limiter writes in Redis expires: a read (a lockout check)
// creates none, and every write sets a TTL with the count.
func TestRedisLimiterKeysExpire(t *testing.T) {
	t.Parallel()
	if len(backends) == 0 {
		t.Skip("no backend")
	}
	b := backends[0]
	rd := flStartRedis(t)
	s := flNewServer(t, b, "NEXUS_REDIS_URL="+rd.URL(), "NEXUS_FAILED_AUTH_LIMIT=5",
		"NEXUS_TRUSTED_PROXIES="+sourceIP(t).String())
	tn := b.NewTenant(t, "approved")
	from := func(ip string, h H) H { return h.with("X-Forwarded-For", ip) }
	// Successes from many addresses, failures from some, public pages.
	for i := 0; i < 20; i++ {
		ip := flRandomIP()
		wantStatus(t, partnerAs(t, s, from(ip, bearer(tn.Admin.Key))), 200)
		if i%3 == 0 {
			wantError(t, partnerAs(t, s, from(ip, bearer(flFakeKey("test", "sk")))), 401, "invalid_api_key")
		}
		wantStatus(t, do(t, "GET", s.URL+"/login", H{"X-Forwarded-For": ip}, nil), 200)
	}
	locked := flRandomIP()
	for i := 0; i < 7; i++ {
		partnerAs(t, s, from(locked, bearer(flFakeKey("test", "sk"))))
	}
	wantError(t, partnerAs(t, s, from(locked, bearer(tn.Admin.Key))), 429, "too_many_failed_attempts")

	opt, err := redis.ParseURL(rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	var keys []string
	iter := c.Scan(ctx, 0, "nexus:rl:*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no nexus:rl:* key after the traffic: the limiter did not use Redis")
	}
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < 0 {
			t.Errorf("key %s has no expiry (PTTL %s)", k, ttl)
		}
	}
	t.Logf("%d nexus:rl:* keys, each with a TTL", len(keys))
}
