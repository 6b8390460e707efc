package nexus

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// Crockford's base32, lower case: sorts like the bytes it encodes.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var idGen struct {
	sync.Mutex
	lastMS uint64
	seq    [10]byte
}

// NewID returns prefix + "_" + a 26-character ULID-style id: 48 bits of
// milliseconds then 80 random bits, incremented within one millisecond so ids
// made by one process are strictly increasing. Lists sort by id, newest first.
func NewID(prefix string) string { return NewIDAt(prefix, time.Now()) }

// NewIDAt is NewID for a caller that has read the clock already.
func NewIDAt(prefix string, now time.Time) string {
	ms := uint64(now.UnixMilli())
	idGen.Lock()
	if ms <= idGen.lastMS {
		ms = idGen.lastMS
		for i := len(idGen.seq) - 1; i >= 0; i-- {
			idGen.seq[i]++
			if idGen.seq[i] != 0 {
				break
			}
		}
	} else {
		idGen.lastMS = ms
		_, _ = rand.Read(idGen.seq[:])
		idGen.seq[0] &= 0x7f // room to increment without overflow
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	copy(b[6:], idGen.seq[:])
	idGen.Unlock()
	return encodeID(prefix, b)
}

// FirstIDAt is the least id NewID can make for prefix at time t: every id
// made before t sorts below it, every one made at or after t not. Time
// bounds on ids (a retention cut-off) use it.
func FirstIDAt(prefix string, t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	return encodeID(prefix, b)
}

func encodeID(prefix string, b [16]byte) string {
	// Built on the stack: the string is the one allocation.
	var buf [48]byte
	out := append(buf[:0], prefix...)
	out = append(out, '_')
	// 128 bits as 26 base32 digits, most significant first (2 leading pad bits).
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var digits [26]byte
	for i := 25; i >= 0; i-- {
		digits[i] = idAlphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(append(out, digits[:]...))
}

// IsID reports whether s has the shape of an id NewID makes for prefix: the
// prefix, "_" and 26 characters of its alphabet. Input that cannot name an
// object is known not to without a query.
func IsID(prefix, s string) bool {
	if len(s) != len(prefix)+27 || s[:len(prefix)] != prefix || s[len(prefix)] != '_' {
		return false
	}
	for i := len(prefix) + 1; i < len(s); i++ {
		if strings.IndexByte(idAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
