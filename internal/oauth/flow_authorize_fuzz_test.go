package oauth

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// FuzzValidateAuthorize feeds /oauth/authorize queries to ValidateAuthorize:
// it must not panic, an accepted request must carry a redirect URI
// registered exactly, an S256 challenge a verifier can match (required of
// public clients) and only scopes the client may ask for, and an error that
// is sent back must go to a registered redirect URI.
func FuzzValidateAuthorize(f *testing.F) {
	ctx := context.Background()
	db := storetest.OpenSQLite(f)
	if _, err := db.MigrateUp(ctx); err != nil {
		f.Fatal(err)
	}
	partners := partner.NewService(db)
	dev, err := partners.Create(ctx, partner.CreateParams{Name: "Dev", Status: nexus.PartnerApproved})
	if err != nil {
		f.Fatal(err)
	}
	svc := NewService(db)
	NewVerifier(svc, partners) // the serving wiring: clients come from the cache
	t := nexus.Tenant{PartnerID: dev.ID, Environment: nexus.Test}
	var clients []*Client
	for _, p := range []CreateClientParams{
		{Name: "SPA", Type: Public, RedirectURIs: []string{"https://spa.example.com/cb"}, Scopes: []string{"read:balances"}},
		{Name: "Web", Type: Confidential, RedirectURIs: []string{appRedirect, "http://127.0.0.1:8080/cb"},
			Scopes: []string{"read:balances", "read:funding", "write:addresses"}},
	} {
		v, err := svc.CreateClient(ctx, t, p)
		if err != nil {
			f.Fatal(err)
		}
		c, err := svc.clientByID(ctx, v.ID)
		if err != nil || c == nil {
			f.Fatal(err)
		}
		clients = append(clients, c)
	}

	// The fixture's writes are other packages' (audit); the fuzzed
	// lookups are checked.
	storetest.CheckTenancy(f, db)

	_, challenge := pkce()
	f.Add(uint8(0), "response_type=code&state=s&code_challenge_method=S256&code_challenge="+challenge)
	f.Add(uint8(1), "response_type=code&redirect_uri="+url.QueryEscape(appRedirect)+"&scope=read:balances+write:addresses")
	f.Add(uint8(1), "response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb&code_challenge_method=S256&code_challenge="+challenge)
	f.Add(uint8(1), "response_type=code&redirect_uri="+url.QueryEscape(appRedirect)+"&code_challenge_method=S256&code_challenge="+strings.Repeat("a", 128))
	f.Add(uint8(0), "response_type=code&code_challenge_method=S256&code_challenge="+strings.Repeat("~", 43))
	f.Add(uint8(1), "response_type=code&redirect_uri="+url.QueryEscape(appRedirect+"/")+"&scope=admin:all")
	f.Add(uint8(2), "client_id=cli_nobody&response_type=token")
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		var c *Client
		if int(which) < len(clients) {
			c = clients[which]
			q.Set("client_id", c.ID)
		}
		r, err := svc.ValidateAuthorize(ctx, q)
		var fatal *FatalError
		var oe *Error
		switch {
		case err == nil:
		case errors.As(err, &fatal):
			if r != nil {
				t.Fatalf("a fatal error with a request to redirect to: %+v", r)
			}
			return
		case errors.As(err, &oe):
			// Sent back to the redirect URI: it must be registered.
			if r == nil || c == nil || !slices.Contains(c.URIs(), r.RedirectURI) {
				t.Fatalf("error %v redirects to %+v", err, r)
			}
			return
		default:
			t.Fatalf("ValidateAuthorize(%q) = %v (%T)", q.Encode(), err, err)
		}
		if c == nil || r.Client.ID != c.ID {
			t.Fatalf("accepted for client %q: %+v", q.Get("client_id"), r)
		}
		if !slices.Contains(c.URIs(), r.RedirectURI) {
			t.Fatalf("accepted redirect URI %q is not registered (%v)", r.RedirectURI, c.URIs())
		}
		if g := q.Get("redirect_uri"); g != "" && g != r.RedirectURI {
			t.Fatalf("redirect_uri %q answered at %q", g, r.RedirectURI)
		}
		if q.Get("response_type") != "code" {
			t.Fatalf("accepted response_type %q", q.Get("response_type"))
		}
		if c.Type == Public && r.CodeChallenge == "" {
			t.Fatal("a public client accepted without PKCE")
		}
		if r.CodeChallenge != "" && (q.Get("code_challenge_method") != "S256" || !isS256Challenge(r.CodeChallenge)) {
			t.Fatalf("accepted challenge %q (method %q): not an S256 challenge", r.CodeChallenge, q.Get("code_challenge_method"))
		}
		if r.Scopes == 0 || !c.ScopeSet().Contains(r.Scopes) || r.Scopes&^nexus.PartnerScopes != 0 {
			t.Fatalf("accepted scopes %q for a client of %q", r.Scopes, c.Scopes)
		}
		if _, _, ok := nexus.ParseScopes(r.Scopes.Names()); !ok {
			t.Fatalf("accepted unknown scopes %q", r.Scopes)
		}
	})
}

// isS256Challenge: BASE64URL(SHA-256(verifier)) without padding is 43
// characters of the base64url alphabet (RFC 7636 §4.2).
func isS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
