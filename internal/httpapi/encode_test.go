package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
)

// The hand-written encoders must write exactly what encoding/json writes.
func TestPartnerViewJSON(t *testing.T) {
	names := []string{
		"Acme", "", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\x01\x7f",
		"Zürich GmbH", "line\u2028sep\u2029", "bad \xff utf8", "emoji 🙂",
	}
	times := []time.Time{
		time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.FixedZone("x", -5*3600-30*60)),
		{},
	}
	scopes := []nexus.ScopeSet{0, nexus.ReadScopes, nexus.ReadScopes | nexus.WriteScopes | nexus.ScopeSet(nexus.ScopeAdminAll) | nexus.InternalScopes}
	for _, name := range names {
		for _, at := range times {
			for _, set := range scopes {
				p := &nexus.Principal{
					Partner:     nexus.Partner{ID: "ptr_01", Name: name, Status: nexus.PartnerApproved, CreatedAt: at},
					Environment: nexus.Test, Scopes: set, CredentialID: "key_01", CredentialType: nexus.CredentialAPIKey,
				}
				want, err := json.Marshal(newPartnerView(p, set.Names()))
				if err != nil {
					t.Fatal(err)
				}
				var buf [16]string
				v := newPartnerView(p, set.AppendNames(buf[:0]))
				if got := v.appendJSON(nil); string(got) != string(want) {
					t.Errorf("name %q, time %v, scopes %v:\n got %s\nwant %s", name, at, set, got, want)
				}
			}
		}
	}
}

// Headers set with SetCanonical skip fasthttp's normalization, so their
// names must already be what c.Set wrote.
func TestCanonicalHeaderNames(t *testing.T) {
	for given, name := range map[string][]byte{
		"X-Request-Id": headerRequestID, "RateLimit-Limit": headerRateLimit,
		"RateLimit-Remaining": headerRateRemaining, "RateLimit-Reset": headerRateReset,
		"Retry-After": headerRetryAfter,
	} {
		var h fasthttp.ResponseHeader
		h.Set(given, "1")
		h.VisitAll(func(k, _ []byte) {
			if string(k) != "Content-Type" && string(k) != string(name) {
				t.Errorf("c.Set(%q) writes %q, the guard writes %q", given, k, name)
			}
		})
	}
}

// GET /v1/partner answers what the principal holds now: a principal built
// after a change (as the verifiers build one once its entry is dropped)
// answers the change, while the same principal answers from its memo.
func TestPartnerViewPerPrincipal(t *testing.T) {
	mk := func(name string) *nexus.Principal {
		return &nexus.Principal{
			Partner:     nexus.Partner{ID: "ptr_01", Name: name, Status: nexus.PartnerApproved},
			Environment: nexus.Test, CredentialID: "key_01", CredentialType: nexus.CredentialAPIKey,
		}
	}
	old := mk("Before")
	first := old.View(encodePartner)
	if !strings.Contains(string(first), `"name":"Before"`) {
		t.Fatalf("body %s lacks the name", first)
	}
	if again := old.View(encodePartner); &again[0] != &first[0] {
		t.Error("the same principal's answer was encoded twice")
	}
	if b := mk("After").View(encodePartner); !strings.Contains(string(b), `"name":"After"`) {
		t.Errorf("a new principal answered %s, want the new name", b)
	}
}

// The answer kept on a principal goes with it: once the partner's topic
// is dropped (as every change announces), GET /v1/partner answers the
// partner as it is now, not the body encoded before.
func TestPartnerAnswerFollowsChanges(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	p, err := e.partners.Create(ctx, partner.CreateParams{Name: "Follow", Status: nexus.PartnerApproved})
	if err != nil {
		t.Fatal(err)
	}
	k, err := e.keys.Create(ctx, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}, apikey.CreateParams{})
	if err != nil {
		t.Fatal(err)
	}
	status := func() string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/v1/partner", nil)
		req.Header.Set("Authorization", "Bearer "+k.Plain)
		res, err := e.srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v struct{ Status string }
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/partner: %d, %v", res.StatusCode, err)
		}
		return v.Status
	}
	for range 2 { // the second from the principal's memo
		if got := status(); got != "approved" {
			t.Fatalf("status %q, want approved", got)
		}
	}
	// Pending partners keep the sandbox: the test key still answers.
	if _, err := e.partners.SetStatus(ctx, p.ID, nexus.PartnerPending); err != nil {
		t.Fatal(err)
	}
	e.srv.cfg.Auth.Drop(store.TopicPartner(p.ID))
	if got := status(); got != "pending" {
		t.Fatalf("after the change: status %q, want pending", got)
	}
}
