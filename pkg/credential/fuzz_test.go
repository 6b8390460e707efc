package credential

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"nx_",
		"nx_live_sk_" + random30 + "4C9crE",
		"nx_live_sk_" + random30 + "4C9crF",
		"nx_test_pk_abcdefghijklmnopqrstuvwxyzABCD0qq9c1",
		"nx_live_ss_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz01XjFL",
		"nx_prod_sk_" + random30 + "000000",
		"nx_live_xx_" + random30 + "000000",
		"nx_live_sk_" + random30[:29] + "-4C9crE",
		"sk_live_" + random30,
	}
	for _, env := range allEnvs {
		for _, kind := range allKinds {
			seeds = append(seeds, MustNew(env, kind))
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("Parse(%q) returned unexpected error %v", s, err)
			}
			if c != (Credential{}) {
				t.Fatalf("Parse(%q) = %+v with error, want zero Credential", s, c)
			}
			return
		}
		// Anything accepted must re-validate independently of Parse.
		if len(s) < ChecksumLen {
			t.Fatalf("Parse accepted %q: shorter than a checksum", s)
		}
		body, sum := s[:len(s)-ChecksumLen], s[len(s)-ChecksumLen:]
		if got := Checksum(body); got != sum {
			t.Fatalf("Parse accepted %q: Checksum(body) = %q, want %q", s, got, sum)
		}
		if got := refChecksum(body); got != sum {
			t.Fatalf("Parse accepted %q: refChecksum(body) = %q, want %q", s, got, sum)
		}
		if c.Env != "live" && c.Env != "test" {
			t.Fatalf("Parse accepted %q with env %q", s, c.Env)
		}
		if !validKind(c.Kind) {
			t.Fatalf("Parse accepted %q with kind %q", s, c.Kind)
		}
		if want := "nx_" + c.Env + "_" + string(c.Kind) + "_" + c.Random; body != want {
			t.Fatalf("Parse(%q) fields rebuild body %q, want %q", s, want, body)
		}
		if len(c.Random) != RandomLen || c.Raw != s {
			t.Fatalf("Parse(%q) = %+v: bad Random length or Raw", s, c)
		}
	})
}
