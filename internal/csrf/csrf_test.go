package csrf

import (
	"strings"
	"testing"
)

func TestTokenBindsPurposeAndBinding(t *testing.T) {
	t.Parallel()
	s := New([]byte("0123456789abcdef0123456789abcdef"))
	b := strings.Repeat("s", 43)
	tok := s.Token("dashboard", b)
	if !s.Valid("dashboard", b, tok) {
		t.Fatal("a token does not pass for its own purpose and binding")
	}
	for name, ok := range map[string]bool{
		"other purpose": s.Valid("logout", b, tok),
		"other binding": s.Valid("dashboard", strings.Repeat("t", 43), tok),
		"short binding": s.Valid("dashboard", "short", s.Token("dashboard", "short")),
		"empty token":   s.Valid("dashboard", b, ""),
		"other key":     New(nil).Valid("dashboard", b, tok),
		"truncated":     s.Valid("dashboard", b, tok[:len(tok)-1]),
	} {
		if ok {
			t.Errorf("%s: passed", name)
		}
	}
}
