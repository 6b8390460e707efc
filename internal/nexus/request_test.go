package nexus

import (
	"context"
	"net/netip"
	"sync"
	"testing"
)

// WithPrincipal and WithOrigin compose, as two context values did, and
// never change the request of the context they derive from.
func TestRequestCompose(t *testing.T) {
	p := &Principal{CredentialID: "key_1"}
	o := Origin{Actor: "mem_1", IP: "192.0.2.1"}
	base := context.Background()
	if RequestFrom(base) != nil || PrincipalFrom(base) != nil {
		t.Fatal("a bare context carries a request")
	}
	withP := WithPrincipal(base, p)
	both := WithOrigin(withP, o)
	if got := PrincipalFrom(both); got != p {
		t.Errorf("PrincipalFrom(both) = %v, want %v", got, p)
	}
	if got := RequestFrom(both).Origin; got != o {
		t.Errorf("origin = %+v, want %+v", got, o)
	}
	if got := RequestFrom(withP).Origin; got != (Origin{}) {
		t.Errorf("WithOrigin changed its parent's request: origin %+v", got)
	}
	r := &Request{ID: "req_1", Principal: p}
	ctx := WithOrigin(r.Attach(base), o)
	if got := RequestFrom(ctx); got.ID != "req_1" || got.Principal != p || got.Origin != o {
		t.Errorf("request = %+v, want the attached one's id and principal with the origin", got)
	}
	if r.Origin != (Origin{}) {
		t.Errorf("WithOrigin changed the attached request: %+v", r.Origin)
	}
}

func TestPrincipalDerived(t *testing.T) {
	key := &Principal{CredentialID: "key_1", CredentialType: CredentialAPIKey, Partner: Partner{ID: "ptr_1"}}
	svc := &Principal{CredentialID: "svc_1", CredentialType: CredentialInternalService, Partner: Partner{ID: "ptr_2"}}
	for _, tt := range []struct {
		p    *Principal
		want string
	}{{key, "cred:key_1"}, {svc, "cred:svc_1:ptr_2"}} {
		if got := tt.p.LimitKey(); got != tt.want {
			t.Errorf("LimitKey = %q, want %q", got, tt.want)
		}
		if got := tt.p.LimitKey(); got != tt.want {
			t.Errorf("LimitKey (remembered) = %q, want %q", got, tt.want)
		}
	}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, addr := range []netip.Addr{a, a, b, a, {}} {
		if got := key.AddrString(addr); got != addr.String() {
			t.Errorf("AddrString(%v) = %q", addr, got)
		}
	}
	calls := 0
	enc := func(p *Principal) []byte { calls++; return []byte(p.CredentialID) }
	for range 3 {
		if got := string(key.View(enc)); got != "key_1" {
			t.Errorf("View = %q", got)
		}
	}
	if calls != 1 {
		t.Errorf("encoded %d times, want once", calls)
	}
}

// A cached principal is shared by concurrent requests, from several
// addresses: its remembered values stay right (meant for -race).
func TestPrincipalDerivedConcurrent(t *testing.T) {
	p := &Principal{CredentialID: "key_1", CredentialType: CredentialAPIKey}
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::3")}
	enc := func(p *Principal) []byte { return []byte(p.CredentialID) }
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				a := addrs[(g+i)%len(addrs)]
				if got := p.AddrString(a); got != a.String() {
					errs <- "AddrString(" + a.String() + ") = " + got
					return
				}
				if p.LimitKey() != "cred:key_1" || string(p.View(enc)) != "key_1" {
					errs <- "LimitKey or View wrong"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
