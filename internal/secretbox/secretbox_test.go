package secretbox

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal("sc_1", "nx_test_ss_secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "nx_test_ss_secret") {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := b.Open("sc_1", sealed)
	if err != nil || got != "nx_test_ss_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := b.Open("sc_2", sealed); err == nil {
		t.Fatal("opened a ciphertext under another id")
	}
	other, _ := New(base64.StdEncoding.EncodeToString([]byte("ffffffffffffffffffffffffffffffff")))
	if _, err := other.Open("sc_1", sealed); err == nil {
		t.Fatal("opened under another key")
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	for _, k := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := New(k); err == nil {
			t.Errorf("New(%q) accepted a bad key", k)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "data", "master.key")
	k1, created, err := LoadOrCreateKeyFile(p)
	if err != nil || !created {
		t.Fatalf("first call: %v created=%v", err, created)
	}
	k2, created, err := LoadOrCreateKeyFile(p)
	if err != nil || created || k1 != k2 {
		t.Fatalf("second call: %v created=%v same=%v", err, created, k1 == k2)
	}
	if _, err := New(k1); err != nil {
		t.Fatalf("generated key unusable: %v", err)
	}
}
