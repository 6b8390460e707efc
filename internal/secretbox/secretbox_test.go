package secretbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
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

func testKey(c byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(c), 32)))
}

// A box with a previous key opens what either key sealed and seals under
// the current one: that is how the master key rotates.
func TestRotation(t *testing.T) {
	old, err := New(testKey('a'))
	if err != nil {
		t.Fatal(err)
	}
	sealedOld, _ := old.Seal("sc_1", "secret-1")

	rot, err := New(testKey('b'), testKey('a'))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rot.Open("sc_1", sealedOld); err != nil || got != "secret-1" {
		t.Fatalf("the rotating box cannot open the previous key's secret: %q, %v", got, err)
	}
	sealedNew, _ := rot.Seal("sc_2", "secret-2")
	if _, err := old.Open("sc_2", sealedNew); err == nil {
		t.Fatal("a new secret was sealed under the previous key")
	}
	resealed, previous, err := rot.Reseal("sc_1", sealedOld)
	if err != nil || !previous {
		t.Fatalf("Reseal of a previous-key secret: previous=%v, %v", previous, err)
	}
	if _, previous, err := rot.Reseal("sc_2", sealedNew); err != nil || previous {
		t.Fatalf("Reseal of a current-key secret: previous=%v, %v", previous, err)
	}
	cur, _ := New(testKey('b'))
	if got, err := cur.Open("sc_1", resealed); err != nil || got != "secret-1" {
		t.Fatalf("the resealed secret does not open under the new key alone: %q, %v", got, err)
	}
	other, _ := New(testKey('c'))
	if _, _, err := other.Reseal("sc_1", sealedOld); !errors.Is(err, ErrCannotOpen) {
		t.Fatalf("Reseal under unrelated keys: %v, want ErrCannotOpen", err)
	}
}

func TestCheckValue(t *testing.T) {
	a, _ := New(testKey('a'))
	b, _ := New(testKey('b'))
	ba, _ := New(testKey('b'), testKey('a'))
	a2, _ := New(hex.EncodeToString([]byte(strings.Repeat("a", 32)))) // same key, other encoding
	if a.Check() == b.Check() || !strings.HasPrefix(a.Check(), "kc1:") {
		t.Fatalf("check values: a %q, b %q", a.Check(), b.Check())
	}
	for _, c := range []struct {
		name  string
		box   *Box
		check string
		want  Match
	}{
		{"same key", a, a.Check(), MatchCurrent},
		{"same key, hex", a2, a.Check(), MatchCurrent},
		{"other key", b, a.Check(), MatchNone},
		{"rotating, old check", ba, a.Check(), MatchPrevious},
		{"rotating, new check", ba, b.Check(), MatchCurrent},
		{"empty", a, "", MatchNone},
	} {
		if got := c.box.Match(c.check); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
	if strings.Contains(a.Check(), testKey('a')) || strings.Contains(a.Check(), strings.Repeat("a", 32)) {
		t.Fatal("the check value contains the key")
	}
	if ba.PreviousCheck() != a.Check() || a.PreviousCheck() != "" {
		t.Fatalf("PreviousCheck: %q / %q", ba.PreviousCheck(), a.PreviousCheck())
	}
}

func TestPreviousKeyErrorsNameTheVariable(t *testing.T) {
	_, err := New(testKey('a'), "short")
	if err == nil || !strings.Contains(err.Error(), "NEXUS_MASTER_KEY_PREVIOUS") {
		t.Fatalf("a bad previous key: %v, want an error naming NEXUS_MASTER_KEY_PREVIOUS", err)
	}
	if b, err := New(testKey('a'), ""); err != nil || b.PreviousCheck() != "" {
		t.Fatalf("an empty previous key means none: %v", err)
	}
}

// Derived keys are the same for the same master key and purpose (every
// instance agrees), come from the current key while a rotation is under
// way, and differ from each other and from the master key.
func TestDerive(t *testing.T) {
	master := []byte("0123456789abcdef0123456789abcdef")
	a, _ := New(base64.StdEncoding.EncodeToString(master))
	again, _ := New(hex.EncodeToString(master))
	other, _ := New(testKey('f'))
	k := a.Derive("csrf")
	if len(k) != 32 || bytes.Equal(k, master) {
		t.Fatalf("Derive = %x: want 32 bytes other than the master key", k)
	}
	if !bytes.Equal(again.Derive("csrf"), k) {
		t.Error("the same master key (hex instead of base64) derived another key")
	}
	if bytes.Equal(a.Derive("other"), k) || bytes.Equal(other.Derive("csrf"), k) {
		t.Error("another purpose or master key derived the same key")
	}
	rot, _ := New(testKey('f'), base64.StdEncoding.EncodeToString(master))
	if !bytes.Equal(rot.Derive("csrf"), other.Derive("csrf")) {
		t.Error("a rotating box did not derive from its current key")
	}
}
