package auth

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// fuzzRequest builds a Request from fuzzed header values: repeated holds
// further credential lines, one per "\n", each "<name index>:<value>".
func fuzzRequest(authz, xAPIKey, xPartner, repeated string) *Request {
	r := &Request{Authorization: authz, XAPIKey: xAPIKey, XPartnerAPIKey: xPartner}
	names := []string{HeaderAuthorization, HeaderXAPIKey, HeaderXPartnerAPIKey, "authorization"}
	if repeated != "" {
		for _, line := range strings.Split(repeated, "\n") {
			n, v, _ := strings.Cut(line, ":")
			name := names[0]
			if len(n) > 0 {
				name = names[int(n[0])%len(names)]
			}
			r.Repeated = append(r.Repeated, Header{Name: name, Value: v})
		}
	}
	return r
}

// FuzzExtract: whatever the headers hold, extract answers one credential
// or one of the contract's credential errors, and the answer is a function
// of the set of credentials it saw: repeating the credential changes
// nothing, adding another makes the request ambiguous.
func FuzzExtract(f *testing.F) {
	key := "nx_test_sk_0123456789abcdefghijklmnopqrstuv"
	for _, s := range [][4]string{
		{"Bearer " + key, "", "", ""},
		{"ApiKey " + key, "", "", ""},
		{"", key, "", ""},
		{"", "", " " + key + " ", ""},
		{"Bearer " + key, key, key, "\x01:" + key},
		{"Bearer a", "b", "", ""},
		{"Basic dXNlcjpwYXNz", "", "", ""},
		{"Bearer", "", "", ""},
		{"bearer  x ", "", "", "\x00:Bearer y"},
		{"", "", "", "\x00:ApiKey z\n\x02:z"},
		{"", "", "", ""},
		{"Bearer eyJ.eyJ.sig", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	codes := map[nexus.Code]bool{
		nexus.CodeMissingCredentials: true, nexus.CodeAmbiguousCredentials: true, nexus.CodeMalformedCredentials: true,
	}
	f.Fuzz(func(t *testing.T, authz, xAPIKey, xPartner, repeated string) {
		r := fuzzRequest(authz, xAPIKey, xPartner, repeated)
		tok, keyOnly, err := extract(r)
		if err != nil {
			if !codes[nexus.CodeOf(err)] {
				t.Fatalf("error %v (code %s) is not a credential error", err, nexus.CodeOf(err))
			}
			if tok != "" {
				t.Fatalf("a token (%q) beside an error", tok)
			}
			return
		}
		if tok == "" || tok != strings.TrimSpace(tok) {
			t.Fatalf("token %q is empty or untrimmed", tok)
		}
		// The token came from one of the lines.
		all := authz + "\n" + xAPIKey + "\n" + xPartner + "\n" + repeated
		if !strings.Contains(all, tok) {
			t.Fatalf("token %q is in none of the headers", tok)
		}
		// Alone in a header, it is found again, and the header says whether
		// it was sent for API keys only.
		for _, h := range []struct {
			r       Request
			keyOnly bool
		}{
			{Request{Authorization: "Bearer " + tok}, false},
			{Request{Authorization: "ApiKey " + tok}, true},
			{Request{XAPIKey: tok}, true},
		} {
			got, gotKeyOnly, err := extract(&h.r)
			if err != nil || got != tok || gotKeyOnly != h.keyOnly {
				t.Fatalf("%+v: got %q, %v, %v; want %q, %v", h.r, got, gotKeyOnly, err, tok, h.keyOnly)
			}
		}
		// Sent once more for API keys only: the same answer.
		again := *r
		again.Repeated = append(append([]Header(nil), r.Repeated...), Header{Name: HeaderXAPIKey, Value: tok})
		if got, gotKeyOnly, err := extract(&again); err != nil || got != tok || gotKeyOnly != keyOnly {
			t.Fatalf("repeated: got %q, %v, %v; want %q, %v", got, gotKeyOnly, err, tok, keyOnly)
		}
		// Another credential beside it: ambiguous.
		other := *r
		other.Repeated = append(append([]Header(nil), r.Repeated...), Header{Name: HeaderXAPIKey, Value: tok + "x"})
		if _, _, err := extract(&other); nexus.CodeOf(err) != nexus.CodeAmbiguousCredentials {
			t.Fatalf("a second credential: %v, want ambiguous_credentials", err)
		}
	})
}

// FuzzClientIP: the client address is the peer's or one named in
// X-Forwarded-For; it is the peer's unless the peer is trusted; what the
// client wrote left of where the walk stopped does not matter, nor does one
// more trusted proxy on the right of a client's address.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct {
		remote, xff string
		trust       uint8
	}{
		{"10.0.0.1", "203.0.113.7", 1},
		{"10.0.0.1", "198.51.100.1, 10.0.0.2, 203.0.113.7", 1},
		{"10.0.0.1", "not-an-ip, 10.0.0.3", 1},
		{"203.0.113.9", "198.51.100.1", 1},
		{"::ffff:10.0.0.1", "::ffff:203.0.113.7", 1},
		{"::1", "2001:db8::1,,", 2},
		{"127.0.0.1", " 10.1.1.1 ,\t10.2.2.2", 3},
		{"", "203.0.113.7", 3},
		{"10.0.0.1", "fe80::1%eth0", 4},
	} {
		f.Add(s.remote, s.xff, s.trust)
	}
	lists := [][]netip.Prefix{
		nil,
		{netip.MustParsePrefix("10.0.0.0/8")},
		{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		{netip.MustParsePrefix("0.0.0.0/0")},
		{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
	}
	f.Fuzz(func(t *testing.T, remoteText, xff string, trust uint8) {
		trusted := lists[int(trust)%len(lists)]
		remote, _ := netip.ParseAddr(remoteText) // the zero Addr if not one
		got := ClientIP(remote, xff, trusted)
		if got.Is4In6() {
			t.Fatalf("%v is not unmapped", got)
		}
		peer := remote.Unmap()
		if !contains(trusted, peer) && got != peer {
			t.Fatalf("untrusted peer %v: got %v", peer, got)
		}
		if got != peer {
			named := false
			for _, part := range strings.Split(xff, ",") {
				if a, err := netip.ParseAddr(strings.TrimSpace(part)); err == nil && a.Unmap() == got {
					named = true
				}
			}
			if !named {
				t.Fatalf("%v is neither the peer %v nor in X-Forwarded-For %q", got, peer, xff)
			}
		}
		if again := ClientIP(remote, "junk,"+xff, trusted); again != got {
			t.Fatalf("a client-written prefix changed the answer: %v, then %v", got, again)
		}
		// When the walk stopped at an untrusted address (a client), a
		// further proxy on the right is skipped. (When it stopped at
		// something unreadable, the answer is the last trusted hop, which
		// that proxy would then be.)
		if len(trusted) > 0 && xff != "" && contains(trusted, peer) && !contains(trusted, got) {
			proxy := trusted[0].Addr()
			if again := ClientIP(remote, xff+", "+proxy.String(), trusted); again != got {
				t.Fatalf("one more trusted proxy %v changed the answer: %v, then %v", proxy, got, again)
			}
		}
	})
}
