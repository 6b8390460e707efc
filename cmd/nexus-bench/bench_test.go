package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketOfRange(t *testing.T) {
	// Every value falls in a bucket whose range holds it, buckets are
	// ordered, and a bucket is at most 1/histHalf of its values wide.
	vals := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123_456_789, 1 << 40, 1<<51 - 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		vals = append(vals, r.Uint64N(1<<45))
	}
	prev := -1
	slices.Sort(vals)
	for _, v := range vals {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", v, i, prev)
		}
		prev = i
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("bucketOf(%d) = %d with range [%d, %d]", v, i, lo, hi)
		}
		if v >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histHalf+1e-12 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, histHalf)
		}
	}
	// Buckets tile the line: each starts right after the previous ends.
	for i := 1; i < histBuckets; i++ {
		_, phi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != phi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, phi)
		}
	}
	if got := bucketOf(math.MaxUint64); got != histBuckets-1 {
		t.Errorf("bucketOf(max) = %d, want the last bucket %d", got, histBuckets-1)
	}
}

func TestQuantileExactSmallValues(t *testing.T) {
	// Below histSub ns every value has its own bucket: nearest rank exactly.
	var h histogram
	for v := 1; v <= 100; v++ {
		h.record(time.Duration(v))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.01, 1}, {0.5, 50}, {0.501, 51}, {0.99, 99}, {0.995, 100}, {1, 100}} {
		if got := h.quantile(c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h.mean() != 50 { // (1+…+100)/100 = 50.5, integer ns
		t.Errorf("mean = %v, want 50ns", h.mean())
	}
}

func TestQuantileAgainstSortedSample(t *testing.T) {
	// Latency-like values (log-normal around 1 ms): each quantile is within
	// one bucket width of the exact nearest-rank value, never below it.
	r := rand.New(rand.NewPCG(3, 4))
	var h histogram
	var sample []time.Duration
	for range 200_000 {
		d := time.Duration(math.Exp(r.NormFloat64()*0.8) * float64(time.Millisecond))
		h.record(d)
		sample = append(sample, d)
	}
	slices.Sort(sample)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		rank := int(math.Ceil(q * float64(len(sample))))
		exact := sample[rank-1]
		got := h.quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/histHalf {
			t.Errorf("p%v = %v, exact %v: off by more than one bucket", q*100, got, exact)
		}
	}
	if h.quantile(1) != sample[len(sample)-1] || time.Duration(h.min) != sample[0] {
		t.Errorf("max/min = %v/%v, want %v/%v", h.quantile(1), time.Duration(h.min), sample[len(sample)-1], sample[0])
	}
}

func TestHistogramMerge(t *testing.T) {
	// Merging per-worker histograms equals recording everything in one.
	r := rand.New(rand.NewPCG(5, 6))
	var all, a, b histogram
	for i := range 50_000 {
		d := time.Duration(r.Int64N(int64(50 * time.Millisecond)))
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var m histogram
	m.merge(&a)
	m.merge(&b)
	m.merge(&histogram{}) // an idle worker changes nothing
	if m != all {
		t.Fatalf("merged histogram differs: n %d/%d, min %d/%d, max %d/%d", m.n, all.n, m.min, all.min, m.max, all.max)
	}
	var empty histogram
	if empty.quantile(0.99) != 0 || empty.mean() != 0 {
		t.Error("an empty histogram must answer 0")
	}
}

func TestLoadResultRPS(t *testing.T) {
	r := loadResult{Requests: 3000, Elapsed: 3 * time.Second}
	if r.rps() != 1000 {
		t.Errorf("rps = %v, want 1000", r.rps())
	}
	if (&loadResult{}).rps() != 0 {
		t.Error("rps of an empty window must be 0")
	}
}

func TestReportTargets(t *testing.T) {
	rep := benchReport{Connections: 64, Results: []benchResult{
		{Backend: "sqlite", Scenario: "baseline", Method: "GET", RPS: 1000, Ratio: 1, P99ms: 5},
		{Backend: "sqlite", Scenario: "partner_api_key", Method: "GET", RPS: 950, Ratio: 0.95, P99ms: 12},
		{Backend: "sqlite", Scenario: "requests", Method: "POST", RPS: 100, Ratio: 0.1, P99ms: 300},
		{Backend: "postgres", Scenario: "balances", Method: "GET", RPS: 400, Ratio: 0.4, P99ms: 30},
		{Backend: "postgres", Scenario: "partner_api_key", Method: "GET", RPS: 990, Ratio: 0.99, AccessDropped: 5},
	}}
	rep.finish()
	got := map[string]bool{}
	for _, tg := range rep.Targets {
		got[tg.Backend+"/"+tg.Scenario+"/"+tg.What] = tg.OK
	}
	want := map[string]bool{
		"sqlite/baseline/p99 latency (ms)":              true,
		"sqlite/partner_api_key/throughput vs baseline": true,
		"sqlite/partner_api_key/p99 latency (ms)":       false,
		"postgres/balances/throughput vs baseline":      false,
		// Dropped access rows make a fast run no pass.
		"postgres/partner_api_key/throughput vs baseline": false,
		// POST /v1/requests has no p99 target (see finish).
	}
	if len(got) != len(want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
	for k, v := range want {
		if ok, found := got[k]; !found || ok != v {
			t.Errorf("target %s: ok=%v found=%v, want ok=%v", k, ok, found, v)
		}
	}
	if rep.missed() != 3 {
		t.Errorf("missed = %d, want 3", rep.missed())
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 45891.6: "45,892", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "10.0.0.1:80": false, "example.com:80": false} {
		if err := loopbackOnly(addr); (err == nil) != ok {
			t.Errorf("loopbackOnly(%q) = %v", addr, err)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{0.8}, 0.8}, {[]float64{0.9, 0.2, 0.85}, 0.85}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := slices.Clone(c.in)
		if got := median(in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median reordered its argument: %v", in)
		}
	}
}

func TestMergeLoads(t *testing.T) {
	a := &loadResult{Requests: 100, Errors: 1, Elapsed: time.Second, ServerCPU: time.Millisecond, Wall: time.Second}
	b := &loadResult{Requests: 300, Elapsed: time.Second, ServerCPU: 3 * time.Millisecond, Wall: time.Second, FirstErr: "boom"}
	a.Hist.record(time.Millisecond)
	b.Hist.record(3 * time.Millisecond)
	b.Hist.record(3 * time.Millisecond)
	m := mergeLoads([]*loadResult{a, b})
	if m.Requests != 400 || m.Errors != 1 || m.Elapsed != 2*time.Second || m.ServerCPU != 4*time.Millisecond || m.FirstErr != "boom" {
		t.Fatalf("merged %+v", m)
	}
	if m.rps() != 200 {
		t.Errorf("rps %v, want 200", m.rps())
	}
	if q := m.Hist.quantile(0.5); q < 2*time.Millisecond {
		t.Errorf("median latency %v: the rounds' histograms were not merged", q)
	}
}
