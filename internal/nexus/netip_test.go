package nexus

import (
	"net/netip"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::ffff:198.18.0.1", "198.18.0.1/32"},
		{"::ffff:198.18.0.0/112", "198.18.0.0/16"},
		{"::ffff:0:0/80", "::/80"}, // wider than IPv4: stays IPv6
	} {
		got, err := ParsePrefix(c.in)
		if err != nil || got != netip.MustParsePrefix(c.want) {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "10.0.0.256", "10.0.0.0/33", "host", "10.0.0.1/"} {
		if p, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) = %v, want an error", in, p)
		}
	}
}
