// Package credential generates, parses and fingerprints Nexus API secrets.
//
// Every secret has the public shape
//
//	nx_<env>_<kind>_<30 random base62 chars><6-char checksum>
//
// where env is "live" or "test", kind is a two-letter type code, and the
// checksum is the CRC-32 (IEEE) of everything before it, written in base62
// (alphabet 0-9A-Za-z, most significant digit first, zero-padded to 6).
//
// The fixed prefix makes leaked secrets easy for scanners to find, and the
// checksum lets those scanners (and our own request path) reject typos and
// random look-alikes offline, before any database lookup. The checksum is
// not a security control: secrets are stored and compared only as SHA-256
// digests (see Digest).
package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"unsafe"
)

// Kind is the two-letter type code embedded in a secret.
type Kind string

// Known kinds.
const (
	KindSecretKey      Kind = "sk" // server-side API secret key
	KindPublishableKey Kind = "pk" // client-side publishable key
	KindAccessToken    Kind = "at" // OAuth access token
	KindRefreshToken   Kind = "rt" // OAuth refresh token
	KindClientSecret   Kind = "cs" // OAuth client secret
	KindSigningSecret  Kind = "ss" // service-token signing secret
)

// Lengths of the variable parts of a secret.
const (
	RandomLen   = 30 // 30 base62 chars ≈ 178 bits of entropy
	ChecksumLen = 6  // 62^6 > 2^32, so any CRC-32 fits
)

// Errors returned by Parse. They are sentinels so callers can use errors.Is
// and so that Parse never allocates on the failure path either.
var (
	ErrMalformed = errors.New("credential: malformed")
	ErrChecksum  = errors.New("credential: checksum mismatch")
)

const (
	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

	// Layout: "nx_" env(4) "_" kind(2) "_" random(30) checksum(6).
	// Both envs are four letters, so every valid secret has the same length
	// and every field sits at a fixed offset.
	envOff      = 3
	envLen      = 4
	kindOff     = envOff + envLen + 1 // 8
	kindLen     = 2
	randomOff   = kindOff + kindLen + 1 // 11
	checksumOff = randomOff + RandomLen // 41
	totalLen    = checksumOff + ChecksumLen

	displayLen = randomOff + 4 // prefix plus first 4 random chars
)

// Credential is a parsed secret; its string fields are substrings of the input (no allocation).
type Credential struct {
	Env    string // "live" or "test"
	Kind   Kind
	Random string // the 30 random chars
	Raw    string // the whole secret as given to Parse
}

func validEnv(env string) bool { return env == "live" || env == "test" }

func validKind(k Kind) bool {
	switch k {
	case KindSecretKey, KindPublishableKey, KindAccessToken,
		KindRefreshToken, KindClientSecret, KindSigningSecret:
		return true
	}
	return false
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// New returns a fresh secret for env and kind. It fails only for an unknown
// env or kind (or if the system random source fails).
func New(env string, kind Kind) (string, error) {
	if !validEnv(env) {
		return "", fmt.Errorf("credential: unknown env %q", env)
	}
	if !validKind(kind) {
		return "", fmt.Errorf("credential: unknown kind %q", kind)
	}
	var buf [totalLen]byte
	n := copy(buf[:], "nx_")
	n += copy(buf[n:], env)
	buf[n] = '_'
	n++
	n += copy(buf[n:], kind)
	buf[n] = '_'
	if err := fillRandom(buf[randomOff:checksumOff]); err != nil {
		return "", err
	}
	sum := encodeChecksum(crc32.ChecksumIEEE(buf[:checksumOff]))
	copy(buf[checksumOff:], sum[:])
	return string(buf[:]), nil
}

// MustNew is like New but panics on error; meant for fixed, known-good
// env/kind pairs.
func MustNew(env string, kind Kind) string {
	s, err := New(env, kind)
	if err != nil {
		panic(err)
	}
	return s
}

// fillRandom fills dst with uniformly distributed base62 chars.
//
// Each random byte is masked to 6 bits (uniform over 0..63) and values
// 62 and 63 are rejected; a plain "% 62" would favour the first chars.
func fillRandom(dst []byte) error {
	var pool [64]byte
	used := len(pool) // force a refill on first use
	for i := 0; i < len(dst); {
		if used == len(pool) {
			if _, err := rand.Read(pool[:]); err != nil {
				return fmt.Errorf("credential: reading random bytes: %w", err)
			}
			used = 0
		}
		v := pool[used] & 0x3f
		used++
		if v < 62 {
			dst[i] = alphabet[v]
			i++
		}
	}
	return nil
}

// encodeChecksum writes sum in base62, most significant digit first,
// zero-padded to ChecksumLen. It returns an array so callers can compare
// without allocating.
func encodeChecksum(sum uint32) [ChecksumLen]byte {
	var out [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[sum%62]
		sum /= 62
	}
	return out
}

// crcString computes CRC-32 (IEEE) over s without copying it to a []byte:
// the conversion would escape into crc32's dispatch and allocate. The view
// is read-only, which is all crc32 needs.
func crcString(s string) uint32 {
	if len(s) == 0 {
		return crc32.ChecksumIEEE(nil)
	}
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Checksum returns the 6-char checksum of body (everything before the
// checksum, e.g. "nx_live_sk_" followed by the random chars).
func Checksum(body string) string {
	sum := encodeChecksum(crcString(body))
	return string(sum[:])
}

// Parse validates s and splits it into its parts. It returns ErrMalformed
// if s does not have the shape of a secret and ErrChecksum if the shape is
// right but the checksum is not. It does not allocate, because it runs on
// every authenticated request.
func Parse(s string) (Credential, error) {
	if len(s) != totalLen || !LooksLike(s) ||
		s[kindOff-1] != '_' || s[randomOff-1] != '_' {
		return Credential{}, ErrMalformed
	}
	env := s[envOff : envOff+envLen]
	kind := Kind(s[kindOff : kindOff+kindLen])
	if !validEnv(env) || !validKind(kind) {
		return Credential{}, ErrMalformed
	}
	for i := randomOff; i < totalLen; i++ {
		if !isBase62(s[i]) {
			return Credential{}, ErrMalformed
		}
	}
	want := encodeChecksum(crcString(s[:checksumOff]))
	if string(want[:]) != s[checksumOff:] { // compiler compares without allocating
		return Credential{}, ErrChecksum
	}
	return Credential{
		Env:    env,
		Kind:   kind,
		Random: s[randomOff:checksumOff],
		Raw:    s,
	}, nil
}

// LooksLike reports whether s has the "nx_" prefix. It is a cheap test for
// routing a bearer value to this package; it does not validate s.
func LooksLike(s string) bool {
	return len(s) >= 3 && s[:3] == "nx_"
}

// Prefix returns the display prefix, e.g. "nx_live_sk_Ab3d": enough to
// identify a secret in dashboards and logs without revealing it.
func (c Credential) Prefix() string {
	if len(c.Raw) < displayLen {
		return c.Raw
	}
	return c.Raw[:displayLen]
}

// Last4 returns the last 4 chars of the secret, for display next to Prefix.
func (c Credential) Last4() string {
	if len(c.Raw) < 4 {
		return c.Raw
	}
	return c.Raw[len(c.Raw)-4:]
}

// Digest returns the SHA-256 of the whole secret. Secrets are stored and
// looked up only by digest, so a database leak does not leak usable
// secrets; a fast hash suffices because the secret has ~178 bits of entropy.
func Digest(s string) [32]byte {
	// Hash the string's bytes in place: a 47-byte []byte(s) copy would be
	// the one heap allocation of the cached verification path.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// DigestHex returns Digest(s) as lower-case hex, the storage form.
func DigestHex(s string) string {
	d := Digest(s)
	return hex.EncodeToString(d[:])
}
