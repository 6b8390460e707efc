package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records latencies in log-linear buckets, HDR style: values
// below 2^histSubBits nanoseconds are exact, every power of two above is
// split into histHalf equal buckets, so a reported value is within
// 1/histHalf (1.6 %) of the true one. Fixed size, no allocation per
// record; each load worker owns one and they are merged at the end.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    uint64 // nanoseconds
	min    uint64
	max    uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // 128 exact values
	histHalf    = histSub / 2      // buckets per power of two above them
	// Exponents up to 44 cover 2^51 ns (26 days): more than any timeout.
	histMaxExp  = 44
	histBuckets = (histMaxExp + 2) * histHalf
)

// bucketOf maps a value in nanoseconds to its bucket index.
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits // ≥ 1; v>>e is in [histHalf, histSub)
	if e > histMaxExp {
		return histBuckets - 1
	}
	return (e+1)*histHalf + int(v>>e) - histHalf
}

// bucketRange is the smallest and the largest value a bucket holds.
func bucketRange(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	e := uint(i/histHalf - 1)
	m := uint64(i%histHalf + histHalf)
	return m << e, (m+1)<<e - 1
}

func (h *histogram) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value below or at which a fraction q (0..1] of the
// recorded values lie (nearest rank: the ceil(q·n)-th smallest), as the
// highest value of its bucket, clamped to the exact minimum and maximum.
// Zero when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			hi = min(max(hi, h.min), h.max)
			return time.Duration(hi)
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}
