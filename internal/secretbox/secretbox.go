// Package secretbox encrypts the few secrets Nexus must be able to read back
// (HS256 signing secrets) with AES-256-GCM under the master key. The
// object's id is bound as additional data, so a ciphertext copied onto
// another row does not decrypt.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Box seals and opens secrets.
type Box struct{ aead cipher.AEAD }

// ErrNoKey is returned when no master key is configured where one is needed.
var ErrNoKey = errors.New("NEXUS_MASTER_KEY is required: 32 bytes, base64 or hex encoded")

// New returns a box for a 32-byte key given base64 (std or url) or hex.
func New(encoded string) (*Box, error) {
	key, err := decodeKey(strings.TrimSpace(encoded))
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, ErrNoKey
	}
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("NEXUS_MASTER_KEY must decode to exactly 32 bytes (base64 or hex)")
}

// Seal encrypts plain for the object id.
func (b *Box) Seal(id, plain string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := b.aead.Seal(nonce, nonce, []byte(plain), []byte(id))
	return "v1:" + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made for the same id.
func (b *Box) Open(id, sealed string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, "v1:")
	if !ok {
		return "", errors.New("secretbox: unknown format")
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < b.aead.NonceSize() {
		return "", errors.New("secretbox: corrupt ciphertext")
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, data[:n], data[n:], []byte(id))
	if err != nil {
		return "", errors.New("secretbox: cannot decrypt (wrong NEXUS_MASTER_KEY?)")
	}
	return string(plain), nil
}

// LoadOrCreateKeyFile reads a key file, creating it with a fresh random key
// (mode 0600) when absent: the embedded SQLite default's convenience. It
// reports whether it created the file.
func LoadOrCreateKeyFile(path string) (string, bool, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
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
