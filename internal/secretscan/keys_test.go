package secretscan

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func genKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func keyDoc(t testing.TB, entries ...[2]string) []byte {
	t.Helper()
	var l []map[string]any
	for _, e := range entries {
		l = append(l, map[string]any{"key_identifier": e[0], "key": e[1], "is_current": true})
	}
	b, _ := json.Marshal(map[string]any{"public_keys": l})
	return b
}

func sign(t testing.TB, k *ecdsa.PrivateKey, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestParseKeysRefusesWhatIsNotAP256Key(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256 := pemOf(t, &genKey(t, elliptic.P256()).PublicKey)
	for name, doc := range map[string][]byte{
		"not json":       []byte("-----BEGIN PUBLIC KEY-----"),
		"no keys":        []byte(`{"public_keys": []}`),
		"no identifier":  keyDoc(t, [2]string{"", p256}),
		"not pem":        keyDoc(t, [2]string{"k1", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}),
		"rsa":            keyDoc(t, [2]string{"k1", pemOf(t, &rsaKey.PublicKey)}),
		"p384":           keyDoc(t, [2]string{"k1", pemOf(t, &genKey(t, elliptic.P384()).PublicKey)}),
		"one bad of two": keyDoc(t, [2]string{"k1", p256}, [2]string{"k2", "junk"}),
	} {
		if _, err := ParseKeys(doc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	keys, err := ParseKeys(keyDoc(t, [2]string{"k1", p256}, [2]string{"k2", pemOf(t, &genKey(t, elliptic.P256()).PublicKey)}))
	if err != nil || len(keys) != 2 {
		t.Fatalf("two good keys: %v, %d", err, len(keys))
	}
}

func TestVerify(t *testing.T) {
	good, other := genKey(t, elliptic.P256()), genKey(t, elliptic.P256())
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, keyDoc(t, [2]string{"good", pemOf(t, &good.PublicKey)}), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeys(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"token":"nx_test_sk_x","type":"t","url":"u","source":"content"}]`)
	if err := k.Verify("good", sign(t, good, body), body); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	tampered := []byte(strings.Replace(string(body), "content", "commit", 1))
	for name, c := range map[string]struct {
		id, sig string
		body    []byte
	}{
		"unknown key":     {"nope", sign(t, good, body), body},
		"other key":       {"good", sign(t, other, body), body},
		"other body":      {"good", sign(t, good, body), tampered},
		"no signature":    {"good", "", body},
		"no identifier":   {"", sign(t, good, body), body},
		"not base64":      {"good", "%%", body},
		"not a signature": {"good", base64.StdEncoding.EncodeToString([]byte("hello")), body},
	} {
		if err := k.Verify(c.id, c.sig, c.body); err != ErrSignature {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
	var none *Keys
	if err := none.Verify("good", sign(t, good, body), body); err != ErrSignature {
		t.Errorf("no keys configured: %v", err)
	}

	// A mirrored rotation is read without a restart; a broken file keeps
	// the keys read before.
	if err := os.WriteFile(path, keyDoc(t, [2]string{"next", pemOf(t, &other.PublicKey)}), 0o600); err != nil {
		t.Fatal(err)
	}
	k.checked = time.Time{}
	if err := k.Verify("next", sign(t, other, body), body); err != nil {
		t.Fatalf("the rotated key: %v", err)
	}
	if err := k.Verify("good", sign(t, good, body), body); err != ErrSignature {
		t.Errorf("the key no longer listed still verifies: %v", err)
	}
	if err := os.WriteFile(path, []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	k.checked = time.Time{}
	if err := k.Verify("next", sign(t, other, body), body); err != nil {
		t.Errorf("a broken file dropped the keys: %v", err)
	}
	if _, err := LoadKeys(path, nil); err == nil {
		t.Error("LoadKeys accepted a broken file")
	}
	if _, err := LoadKeys(filepath.Join(t.TempDir(), "missing.json"), nil); err == nil {
		t.Error("LoadKeys accepted a missing file")
	}
}
