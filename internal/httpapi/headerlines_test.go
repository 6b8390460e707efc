package httpapi

import (
	"bufio"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/nexus-fintech/nexus/internal/auth"
)

func parseHeader(t *testing.T, lines ...string) *fasthttp.RequestHeader {
	t.Helper()
	var h fasthttp.RequestHeader
	raw := "GET /v1/partner HTTP/1.1\r\nHost: nexus.test\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return &h
}

// Every line of a repeated header is read: the credential headers' as
// credentials, X-Forwarded-For's joined in order.
func TestHeaderLines(t *testing.T) {
	h := parseHeader(t,
		"X-Forwarded-For: 203.0.113.7",
		"Authorization: Bearer first",
		"x-api-key: k1",
		"X-Forwarded-For: 198.51.100.1, 10.0.0.2",
		"authorization: Bearer second",
		"X-API-Key: k2",
		"X-Forwarded-For: 10.0.0.1",
	)
	if got, want := forwardedFor(h), "203.0.113.7,198.51.100.1, 10.0.0.2,10.0.0.1"; got != want {
		t.Errorf("forwardedFor = %q, want %q", got, want)
	}
	var ar auth.Request
	// PeekAll reuses its result: each call must take what it needs first.
	ar.Authorization = credentialHeader(h, auth.HeaderAuthorization, &ar.Repeated)
	ar.XAPIKey = credentialHeader(h, auth.HeaderXAPIKey, &ar.Repeated)
	ar.XPartnerAPIKey = credentialHeader(h, auth.HeaderXPartnerAPIKey, &ar.Repeated)
	if ar.Authorization != "Bearer first" || ar.XAPIKey != "k1" || ar.XPartnerAPIKey != "" {
		t.Errorf("first lines: %+v", ar)
	}
	want := []auth.Header{{Name: auth.HeaderAuthorization, Value: "Bearer second"}, {Name: auth.HeaderXAPIKey, Value: "k2"}}
	if !slices.Equal(ar.Repeated, want) {
		t.Errorf("Repeated = %+v, want %+v", ar.Repeated, want)
	}

	one := parseHeader(t, "X-Forwarded-For: 198.51.100.1, 10.0.0.2", "Authorization: Bearer only")
	ar = auth.Request{}
	if got := forwardedFor(one); got != "198.51.100.1, 10.0.0.2" {
		t.Errorf("one line: forwardedFor = %q", got)
	}
	if got := credentialHeader(one, auth.HeaderAuthorization, &ar.Repeated); got != "Bearer only" || ar.Repeated != nil {
		t.Errorf("one line: %q, Repeated %+v", got, ar.Repeated)
	}
	if got := forwardedFor(parseHeader(t)); got != "" {
		t.Errorf("no X-Forwarded-For: %q", got)
	}
}
