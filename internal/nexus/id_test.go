package nexus

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// idMillis decodes the 48-bit millisecond timestamp from the first ten
// base32 digits (50 bits, two of them leading padding).
func idMillis(t *testing.T, body string) int64 {
	t.Helper()
	var v uint64
	for i := 0; i < 10; i++ {
		d := strings.IndexByte(idAlphabet, body[i])
		if d < 0 {
			t.Fatalf("id body %q: %q is not in the alphabet", body, body[i])
		}
		v = v<<5 | uint64(d)
	}
	return int64(v)
}

func TestNewIDShape(t *testing.T) {
	for _, prefix := range []string{"key", "ptr", "req", "evt", "x"} {
		before := time.Now().UnixMilli()
		id := NewID(prefix)
		after := time.Now().UnixMilli()
		body, ok := strings.CutPrefix(id, prefix+"_")
		if !ok {
			t.Fatalf("NewID(%q) = %q: missing prefix", prefix, id)
		}
		if len(id) != len(prefix)+1+26 || len(body) != 26 {
			t.Fatalf("NewID(%q) = %q: length %d, want %d", prefix, id, len(id), len(prefix)+27)
		}
		for i := 0; i < len(body); i++ {
			if strings.IndexByte(idAlphabet, body[i]) < 0 {
				t.Fatalf("NewID(%q) = %q: %q is not Crockford base32 lower case", prefix, id, body[i])
			}
		}
		// Two leading pad bits: the first digit encodes 3 bits only.
		if body[0] > '7' {
			t.Errorf("NewID(%q) = %q: first digit %q exceeds 3 bits", prefix, id, body[0])
		}
		// The id starts with the time it was made (a later id in the same
		// millisecond may carry the previous id's millisecond, never an
		// earlier one than the last).
		ms := idMillis(t, body)
		if ms < before-1000 || ms > after {
			t.Errorf("NewID(%q) = %q encodes %d ms, made between %d and %d", prefix, id, ms, before, after)
		}
	}
	if id := NewID(""); len(id) != 27 || id[0] != '_' {
		t.Errorf("NewID(\"\") = %q", id)
	}
}

func TestNewIDStrictlyIncreasing(t *testing.T) {
	const n = 10000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = NewID("key")
	}
	seen := make(map[string]struct{}, n)
	for i, id := range ids {
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate id %q at %d", id, i)
		}
		seen[id] = struct{}{}
		if i > 0 && id <= ids[i-1] {
			t.Fatalf("id %d %q is not greater than id %d %q", i, id, i-1, ids[i-1])
		}
	}
	// The timestamps never go backwards either.
	if a, b := idMillis(t, ids[0][4:]), idMillis(t, ids[n-1][4:]); b < a {
		t.Errorf("timestamp went backwards: %d then %d", a, b)
	}
}

func TestNewIDConcurrentUnique(t *testing.T) {
	const workers, each = 8, 2000
	results := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]string, each)
			for i := range ids {
				ids[i] = NewID("req")
			}
			results[w] = ids
		}()
	}
	wg.Wait()
	seen := make(map[string]struct{}, workers*each)
	for w, ids := range results {
		for i, id := range ids {
			if _, dup := seen[id]; dup {
				t.Fatalf("duplicate id %q", id)
			}
			seen[id] = struct{}{}
			// Each goroutine sees a strictly increasing sequence.
			if i > 0 && id <= ids[i-1] {
				t.Fatalf("worker %d: id %q not greater than %q", w, id, ids[i-1])
			}
		}
	}
}

func TestIsID(t *testing.T) {
	id := NewID("sc")
	for _, tc := range []struct {
		prefix, s string
		want      bool
	}{
		{"sc", id, true},
		{"sc", "sc_0000000000000000000000000", false}, // 25 characters
		{"sc", "sc_00000000000000000000000000", true},
		{"svc", id, false},
		{"sc", "sc-" + id[3:], false},
		{"sc", id[:len(id)-1] + "\x00", false},
		{"sc", id[:len(id)-1] + "u", false}, // not in the alphabet
		{"sc", id[:len(id)-1] + "Z", false},
		{"sc", id + "0", false},
		{"sc", "", false},
	} {
		if got := IsID(tc.prefix, tc.s); got != tc.want {
			t.Errorf("IsID(%q, %q) = %v, want %v", tc.prefix, tc.s, got, tc.want)
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID("req")
	}
}

func TestFirstIDAt(t *testing.T) {
	at := time.Now()
	first := FirstIDAt("evt", at)
	if !IsID("evt", first) {
		t.Fatalf("FirstIDAt = %q: not an id", first)
	}
	if got, want := FirstIDAt("evt", time.UnixMilli(0)), "evt_"+strings.Repeat("0", 26); got != want {
		t.Errorf("FirstIDAt(epoch) = %s, want %s", got, want)
	}
	if id := NewID("evt"); id < first {
		t.Errorf("an id made after %v, %s, sorts below its first id %s", at, id, first)
	}
	if FirstIDAt("evt", at.Add(time.Millisecond)) <= first || FirstIDAt("evt", at.Add(-time.Millisecond)) >= first {
		t.Error("FirstIDAt does not follow time")
	}
}
