package jsonenc

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "/v1/partner", `a"b\c`, "tab\tnew\nline\r\x00\x1f\x7f", "é€😀", "bad\xffutf8\xc3", "\u2028<>&"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, rng.IntN(20))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		check(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("/v1/requests/req_01")
	f.Add("\xff\x00\"<")
	f.Fuzz(check)
}

func check(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
		t.Fatalf("%q: got %s, encoding/json writes %s", s, got[1:], want)
	}
}
