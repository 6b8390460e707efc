// Package secretscan is Nexus's side of GitHub's secret-scanning partner
// program: a code host that finds a Nexus secret in public code reports it,
// signed with ECDSA P-256; Nexus revokes what is real and says which
// reports were.
package secretscan

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// keyFile is the format GitHub serves its secret-scanning keys in
// (https://api.github.com/meta/public_keys/secret_scanning), so that an
// operator can mirror that document into NEXUS_SECRET_SCANNING_KEYS as is.
type keyFile struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// Keys verifies report signatures with the keys of a file. The file is read
// again when it changes (an operator mirrors GitHub's rotations without a
// restart); a changed file that does not parse is logged and the keys read
// before are kept.
type Keys struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	keys    map[string]*ecdsa.PublicKey
	modTime time.Time
	size    int64
	checked time.Time
}

// LoadKeys reads path, which must hold at least one valid P-256 key.
func LoadKeys(path string, log *slog.Logger) (*Keys, error) {
	if log == nil {
		log = slog.Default()
	}
	k := &Keys{path: path, log: log}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("NEXUS_SECRET_SCANNING_KEYS: %w", err)
	}
	keys, err := readKeys(path)
	if err != nil {
		return nil, fmt.Errorf("NEXUS_SECRET_SCANNING_KEYS (%s): %w", path, err)
	}
	k.keys, k.modTime, k.size, k.checked = keys, fi.ModTime(), fi.Size(), time.Now()
	return k, nil
}

// ParseKeys reads a key document in GitHub's format.
func ParseKeys(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var f keyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf(`not a {"public_keys": [...]} document: %w`, err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(f.PublicKeys))
	for i, e := range f.PublicKeys {
		if e.KeyIdentifier == "" {
			return nil, fmt.Errorf("public_keys[%d]: key_identifier is empty", i)
		}
		b, _ := pem.Decode([]byte(e.Key))
		if b == nil {
			return nil, fmt.Errorf("public_keys[%d] (%s): key is not PEM", i, e.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public_keys[%d] (%s): %w", i, e.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("public_keys[%d] (%s): not an ECDSA P-256 key", i, e.KeyIdentifier)
		}
		keys[e.KeyIdentifier] = ec
	}
	if len(keys) == 0 {
		return nil, errors.New("public_keys is empty")
	}
	return keys, nil
}

func readKeys(path string) (map[string]*ecdsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKeys(data)
}

// key returns the key named id, reading the file again first when it
// changed (looked at no more than once a second).
func (k *Keys) key(id string) *ecdsa.PublicKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) >= time.Second {
		k.checked = now
		if fi, err := os.Stat(k.path); err == nil && (!fi.ModTime().Equal(k.modTime) || fi.Size() != k.size) {
			if keys, err := readKeys(k.path); err != nil {
				k.log.Warn("secret scanning: the changed key file does not parse; keeping the keys read before", "path", k.path, "err", err)
			} else {
				k.keys = keys
			}
			k.modTime, k.size = fi.ModTime(), fi.Size()
		}
	}
	return k.keys[id]
}

// ErrSignature is every reason a report is not believed: no signature, an
// unknown key, or a signature that does not verify.
var ErrSignature = errors.New("secretscan: bad signature")

// Verify checks that sigB64 (base64 of an ASN.1 DER ECDSA signature) signs
// the SHA-256 digest of body with the key named keyID.
func (k *Keys) Verify(keyID, sigB64 string, body []byte) error {
	if k == nil || keyID == "" || sigB64 == "" {
		return ErrSignature
	}
	pub := k.key(keyID)
	if pub == nil {
		return ErrSignature
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return ErrSignature
	}
	d := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		return ErrSignature
	}
	return nil
}
