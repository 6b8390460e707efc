package credential

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"
)

var (
	allEnvs  = []string{"live", "test"}
	allKinds = []Kind{
		KindSecretKey, KindPublishableKey, KindAccessToken,
		KindRefreshToken, KindClientSecret, KindSigningSecret,
	}
)

// refChecksum is an independent implementation of the checksum used to
// cross-check Checksum: math/big's base 62 uses the alphabet 0-9a-zA-Z, so
// swapping letter case yields our 0-9A-Za-z alphabet.
func refChecksum(body string) string {
	n := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(body))))
	swapped := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, n.Text(62))
	return strings.Repeat("0", ChecksumLen-len(swapped)) + swapped
}

// withChecksum appends the reference checksum to body.
func withChecksum(body string) string { return body + refChecksum(body) }

const random30 = "0123456789ABCDEFGHIJKLMNOPQRST"

func TestChecksumKnownVectors(t *testing.T) {
	// want values computed outside Go (Python zlib.crc32 + manual base62)
	// to pin the wire format; the cases include leading-zero padding.
	tests := []struct {
		body, want string
	}{
		{"nx_live_sk_0123456789ABCDEFGHIJKLMNOPQRST", "4C9crE"},
		{"nx_test_pk_abcdefghijklmnopqrstuvwxyzABCD", "0qq9c1"},
		{"nx_live_ss_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "01XjFL"},
		{"", "000000"},
	}
	for _, tt := range tests {
		if got := Checksum(tt.body); got != tt.want {
			t.Errorf("Checksum(%q) = %q, want %q", tt.body, got, tt.want)
		}
		if got := refChecksum(tt.body); got != tt.want {
			t.Errorf("refChecksum(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	for i := 0; i < 200; i++ {
		body := MustNew(allEnvs[i%2], allKinds[i%len(allKinds)])[:len("nx_live_sk_")+RandomLen]
		if got, want := Checksum(body), refChecksum(body); got != want {
			t.Fatalf("Checksum(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestNewParseRoundTrip(t *testing.T) {
	for _, env := range allEnvs {
		for _, kind := range allKinds {
			t.Run(env+"_"+string(kind), func(t *testing.T) {
				s, err := New(env, kind)
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				wantPrefix := "nx_" + env + "_" + string(kind) + "_"
				if !strings.HasPrefix(s, wantPrefix) {
					t.Fatalf("New = %q, want prefix %q", s, wantPrefix)
				}
				if got, want := len(s), len(wantPrefix)+RandomLen+ChecksumLen; got != want {
					t.Fatalf("len(New) = %d, want %d", got, want)
				}
				body := s[:len(s)-ChecksumLen]
				if got, want := s[len(s)-ChecksumLen:], refChecksum(body); got != want {
					t.Fatalf("checksum = %q, want %q", got, want)
				}
				c, err := Parse(s)
				if err != nil {
					t.Fatalf("Parse(%q): %v", s, err)
				}
				want := Credential{Env: env, Kind: kind, Random: s[len(wantPrefix):len(body)], Raw: s}
				if c != want {
					t.Fatalf("Parse = %+v, want %+v", c, want)
				}
			})
		}
	}
}

func TestNewUnknown(t *testing.T) {
	tests := []struct {
		env  string
		kind Kind
	}{
		{"prod", KindSecretKey},
		{"", KindSecretKey},
		{"LIVE", KindSecretKey},
		{"live", "xx"},
		{"live", ""},
		{"test", "SK"},
	}
	for _, tt := range tests {
		if s, err := New(tt.env, tt.kind); err == nil {
			t.Errorf("New(%q, %q) = %q, want error", tt.env, tt.kind, s)
		}
	}
}

func TestMustNewPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustNew with unknown env did not panic")
		}
	}()
	MustNew("prod", KindSecretKey)
}

func TestParseKnownValid(t *testing.T) {
	s := "nx_live_sk_" + random30 + "4C9crE"
	c, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	want := Credential{Env: "live", Kind: KindSecretKey, Random: random30, Raw: s}
	if c != want {
		t.Fatalf("Parse = %+v, want %+v", c, want)
	}
}

// flip replaces s[i] with a different base62 char.
func flip(t *testing.T, s string, i int) string {
	t.Helper()
	b := []byte(s)
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func TestParseErrors(t *testing.T) {
	valid := withChecksum("nx_live_sk_" + random30)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"prefix only", "nx_", ErrMalformed},
		{"missing prefix", valid[3:], ErrMalformed},
		{"wrong prefix", "xx" + valid[2:], ErrMalformed},
		{"upper prefix", "NX" + valid[2:], ErrMalformed},
		{"bad env", withChecksum("nx_prod_sk_" + random30), ErrMalformed},
		{"upper env", withChecksum("nx_LIVE_sk_" + random30), ErrMalformed},
		{"short env", withChecksum("nx_liv_sk_" + random30 + "0"), ErrMalformed},
		{"bad kind", withChecksum("nx_live_xx_" + random30), ErrMalformed},
		{"upper kind", withChecksum("nx_live_SK_" + random30), ErrMalformed},
		{"bad separator", withChecksum("nx_live-sk_" + random30), ErrMalformed},
		{"bad separator 2", withChecksum("nx_live_sk-" + random30), ErrMalformed},
		{"too short", valid[:len(valid)-1], ErrMalformed},
		{"too long", valid + "0", ErrMalformed},
		{"random too short", withChecksum("nx_live_sk_" + random30[1:]), ErrMalformed},
		{"random too long", withChecksum("nx_live_sk_" + random30 + "U"), ErrMalformed},
		{"non-base62 in random", withChecksum("nx_live_sk_" + "-" + random30[1:]), ErrMalformed},
		{"underscore in random", withChecksum("nx_live_sk_" + random30[:29] + "_"), ErrMalformed},
		{"non-base62 in checksum", valid[:len(valid)-1] + "+", ErrMalformed},
		{"non-ascii", withChecksum("nx_live_sk_" + random30[:28] + "é"), ErrMalformed},
		{"wrong checksum", valid[:len(valid)-ChecksumLen] + "000000", ErrChecksum},
		{"flipped checksum char", flip(t, valid, len(valid)-1), ErrChecksum},
		{"flipped random char", flip(t, valid, len("nx_live_sk_")+7), ErrChecksum},
		{"env swapped", "nx_test" + valid[7:], ErrChecksum},
		{"kind swapped", "nx_live_pk" + valid[10:], ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.want)
			}
			if c != (Credential{}) {
				t.Fatalf("Parse(%q) = %+v on error, want zero Credential", tt.in, c)
			}
		})
	}
}

func TestFlipEveryRandomChar(t *testing.T) {
	// CRC-32 detects every single-byte change, so each flip must fail.
	s := MustNew("test", KindAccessToken)
	for i := len("nx_test_at_"); i < len(s); i++ {
		if _, err := Parse(flip(t, s, i)); !errors.Is(err, ErrChecksum) {
			t.Fatalf("flip at %d: error = %v, want ErrChecksum", i, err)
		}
	}
}

func TestPrefixLast4(t *testing.T) {
	s := "nx_live_sk_" + random30 + "4C9crE"
	c, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, got, want string
	}{
		{"Prefix", c.Prefix(), "nx_live_sk_0123"},
		{"Last4", c.Last4(), "9crE"},
		{"zero Prefix", Credential{}.Prefix(), ""},
		{"zero Last4", Credential{}.Last4(), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestLooksLike(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"nx", false},
		{"nx_", true},
		{"nx_anything", true},
		{"Bearer nx_live", false},
		{"NX_live", false},
		{MustNew("live", KindSecretKey), true},
	}
	for _, tt := range tests {
		if got := LooksLike(tt.in); got != tt.want {
			t.Errorf("LooksLike(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDigest(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		// SHA-256 of the empty string and of "abc" (FIPS 180-2 test vectors).
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		if got := DigestHex(tt.in); got != tt.want {
			t.Errorf("DigestHex(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	s := MustNew("live", KindSecretKey)
	if got, want := Digest(s), sha256.Sum256([]byte(s)); got != want {
		t.Errorf("Digest = %x, want %x", got, want)
	}
	d := Digest(s)
	if got, want := DigestHex(s), hex.EncodeToString(d[:]); got != want {
		t.Errorf("DigestHex = %q, want %q", got, want)
	}
}

func TestUnique(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	randoms := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		s := MustNew("live", KindSecretKey)
		if seen[s] {
			t.Fatalf("duplicate secret after %d: %q", i, s)
		}
		seen[s] = true
		r := s[len("nx_live_sk_") : len(s)-ChecksumLen]
		if randoms[r] {
			t.Fatalf("duplicate random part after %d: %q", i, r)
		}
		randoms[r] = true
	}
}

func TestRandomCharsCoverAlphabet(t *testing.T) {
	// A coarse sanity check that all 62 symbols occur (including the last
	// two, 'y' and 'z', which a broken rejection step could drop).
	// With 30,000 draws, the chance a given symbol is missing is ~e^-484.
	counts := make(map[byte]int)
	for i := 0; i < 1000; i++ {
		s := MustNew("test", KindSecretKey)
		for _, c := range []byte(s[len("nx_test_sk_") : len(s)-ChecksumLen]) {
			counts[c]++
		}
	}
	if got := len(counts); got != 62 {
		t.Fatalf("saw %d distinct random chars, want 62", got)
	}
}

func TestParseZeroAllocs(t *testing.T) {
	valid := MustNew("live", KindSecretKey)
	inputs := []struct {
		name, in string
	}{
		{"valid", valid},
		{"bad checksum", valid[:len(valid)-ChecksumLen] + "000000"},
		{"malformed", "nx_live_sk_short"},
	}
	for _, tt := range inputs {
		allocs := testing.AllocsPerRun(1000, func() {
			_, _ = Parse(tt.in)
		})
		if allocs != 0 {
			t.Errorf("Parse(%s) allocs = %v, want 0", tt.name, allocs)
		}
	}
}

var (
	sinkCred Credential
	sinkStr  string
)

func BenchmarkParse(b *testing.B) {
	s := MustNew("live", KindSecretKey)
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		sinkCred = c
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s, err := New("live", KindSecretKey)
		if err != nil {
			b.Fatal(err)
		}
		sinkStr = s
	}
}
