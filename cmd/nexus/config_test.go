package main

import "testing"

func TestDefaultIssuer(t *testing.T) {
	for _, c := range []struct{ scheme, listen, want string }{
		{"http", ":8080", "http://localhost:8080"},
		{"http", "0.0.0.0:8080", "http://localhost:8080"},
		{"http", "[::]:8080", "http://localhost:8080"},
		{"https", ":8443", "https://localhost:8443"},
		{"http", "127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http", "10.0.0.5:8080", "http://10.0.0.5:8080"},
		{"http", "[::1]:8080", "http://[::1]:8080"},
		{"http", "nexus.internal:8080", "http://nexus.internal:8080"},
	} {
		if got := defaultIssuer(c.scheme, c.listen); got != c.want {
			t.Errorf("defaultIssuer(%q, %q) = %q, want %q", c.scheme, c.listen, got, c.want)
		}
	}
}

func TestProbeURL(t *testing.T) {
	for _, c := range []struct {
		listen string
		tls    bool
		want   string
	}{
		{":8080", false, "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:8080", false, "http://127.0.0.1:8080/readyz"},
		{"[::]:8443", true, "https://[::1]:8443/readyz"},
		{"127.0.0.1:9000", false, "http://127.0.0.1:9000/readyz"},
		{"10.0.0.5:8080", true, "https://10.0.0.5:8080/readyz"},
	} {
		if got := probeURL(c.listen, c.tls); got != c.want {
			t.Errorf("probeURL(%q, %v) = %q, want %q", c.listen, c.tls, got, c.want)
		}
	}
}
