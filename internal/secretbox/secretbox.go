// Package secretbox encrypts the few secrets Nexus must be able to read back
// (HS256 signing secrets) with AES-256-GCM under the master key. The
// object's id is bound as additional data, so a ciphertext copied onto
// another row does not decrypt.
//
// A box holds the current key, which seals, and optionally the previous
// one, which still opens: that is how the master key is rotated.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Box seals and opens secrets.
type Box struct {
	keys []key // keys[0] is the current key; the others only open
}

type key struct {
	aead  cipher.AEAD
	check string
	raw   []byte // for Derive
}

// ErrNoKey is returned when no master key is configured where one is needed.
var ErrNoKey = errors.New("NEXUS_MASTER_KEY is required: 32 bytes, base64 or hex encoded")

// New returns a box for a 32-byte key given base64 (std or url) or hex, and
// optionally the previous key (NEXUS_MASTER_KEY_PREVIOUS; empty: none).
func New(encoded string, previous ...string) (*Box, error) {
	cur, err := newKey(encoded, "NEXUS_MASTER_KEY")
	if err != nil {
		return nil, err
	}
	b := &Box{keys: []key{cur}}
	for _, p := range previous {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, err := newKey(p, "NEXUS_MASTER_KEY_PREVIOUS")
		if err != nil {
			return nil, err
		}
		b.keys = append(b.keys, k)
	}
	return b, nil
}

func newKey(encoded, name string) (key, error) {
	raw, err := decodeKey(strings.TrimSpace(encoded), name)
	if err != nil {
		return key{}, err
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	return key{aead: aead, check: checkValue(raw), raw: raw}, nil
}

func decodeKey(s, name string) ([]byte, error) {
	if s == "" {
		if name == "NEXUS_MASTER_KEY" {
			return nil, ErrNoKey
		}
		return nil, fmt.Errorf("%s is empty", name)
	}
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s must decode to exactly 32 bytes (base64 or hex)", name)
}

// checkLabel is what a key check value authenticates. A new label (v2)
// would make every stored check value unknown, so it never changes.
const checkLabel = "nexus master key check v1"

// checkValue identifies a key without revealing it: an HMAC of a fixed
// label under the key, so it can be stored beside the data it protects.
func checkValue(raw []byte) string {
	m := hmac.New(sha256.New, raw)
	m.Write([]byte(checkLabel))
	return "kc1:" + base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// Check is the current key's check value, to be stored so that a later
// start with another key is caught before it serves anything.
func (b *Box) Check() string { return b.keys[0].check }

// Match says which of the box's keys a stored check value belongs to.
type Match int

const (
	MatchNone     Match = iota // neither key: refuse
	MatchCurrent               // the current key
	MatchPrevious              // the previous key: a rotation is under way
)

// Match compares a stored check value with the box's keys, in constant time.
func (b *Box) Match(stored string) Match {
	for i, k := range b.keys {
		if hmac.Equal([]byte(k.check), []byte(stored)) {
			if i == 0 {
				return MatchCurrent
			}
			return MatchPrevious
		}
	}
	return MatchNone
}

// PreviousCheck is the previous key's check value ("" without one).
func (b *Box) PreviousCheck() string {
	if len(b.keys) < 2 {
		return ""
	}
	return b.keys[1].check
}

// Derive returns a 32-byte key for purpose, derived from the current master
// key (HKDF-SHA256): another use (signing CSRF tokens) never handles the
// master key itself, and every instance with the same master key derives
// the same.
func (b *Box) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, b.keys[0].raw, nil, "nexus "+purpose, 32)
	if err != nil {
		panic(err) // only for an output longer than HKDF allows
	}
	return k
}

// Seal encrypts plain for the object id under the current key.
func (b *Box) Seal(id, plain string) (string, error) {
	aead := b.keys[0].aead
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(plain), []byte(id))
	return "v1:" + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made for the same id, under either key.
func (b *Box) Open(id, sealed string) (string, error) {
	plain, _, err := b.open(id, sealed)
	return plain, err
}

// ErrCannotOpen means no key of the box opens a ciphertext.
var ErrCannotOpen = errors.New("secretbox: cannot decrypt (wrong NEXUS_MASTER_KEY?)")

// open returns the plaintext and the index of the key that opened it. The
// ciphertext carries no key id: GCM's tag tells a wrong key for certain,
// and a box has at most two keys.
func (b *Box) open(id, sealed string) (string, int, error) {
	raw, ok := strings.CutPrefix(sealed, "v1:")
	if !ok {
		return "", 0, errors.New("secretbox: unknown format")
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil {
		return "", 0, errors.New("secretbox: corrupt ciphertext")
	}
	for i, k := range b.keys {
		n := k.aead.NonceSize()
		if len(data) < n {
			return "", 0, errors.New("secretbox: corrupt ciphertext")
		}
		if plain, err := k.aead.Open(nil, data[:n], data[n:], []byte(id)); err == nil {
			return string(plain), i, nil
		}
	}
	return "", 0, ErrCannotOpen
}

// Reseal opens sealed under either key and seals it again under the
// current one; previous reports that it was sealed under the previous key.
func (b *Box) Reseal(id, sealed string) (resealed string, previous bool, err error) {
	plain, i, err := b.open(id, sealed)
	if err != nil {
		return "", false, err
	}
	resealed, err = b.Seal(id, plain)
	return resealed, i > 0, err
}

// ReadKeyFile reads a key file; ok is false when it does not exist.
func ReadKeyFile(path string) (key string, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

// LoadOrCreateKeyFile reads a key file, creating it with a fresh random key
// (mode 0600) when absent: the embedded SQLite default's convenience. It
// reports whether it created the file.
func LoadOrCreateKeyFile(path string) (string, bool, error) {
	if k, ok, err := ReadKeyFile(path); ok || err != nil {
		return k, false, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", false, err
	}
	enc := base64.StdEncoding.EncodeToString(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	if _, err := f.WriteString(enc + "\n"); err != nil {
		return "", false, err
	}
	return enc, true, nil
}
