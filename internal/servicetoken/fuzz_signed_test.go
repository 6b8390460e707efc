package servicetoken

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// FuzzVerifySigned signs whatever header and claims the fuzzer makes with
// a real HS256 credential's secret, so that mutations get past the
// signature to the header and claims checks (FuzzVerify, holding no key,
// rarely does). The verifier must never panic, must refuse with a token
// code only, and may accept only what the contract allows: the signing
// credential's kid and iss, the nexus-api audience, a lifetime within the
// bound, and no permission the credential lacks. Whatever it was fed, a
// valid token still verifies afterwards.
func FuzzVerifySigned(f *testing.F) {
	e := newEnv(f)
	key := []byte(e.hsSecret)
	now := time.Now().Unix()
	hdr := fmt.Sprintf(`{"alg":"HS256","typ":"JWT","kid":%q}`, e.hs.ID)
	body := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":"nexus-api","iat":%d,"exp":%d%s}`, e.hs.ID, now, now+300, extra)
	}
	good := rawToken(f, jwt.SigningMethodHS256, hdr, body(""), key)
	if _, err := e.v.Verify(e.ctx, good); err != nil {
		f.Fatalf("the valid token: %v", err)
	}
	for _, seed := range [][2]string{
		{hdr, body("")},
		{hdr, body(`,"permissions":["read:balances"],"service":"fuzz","jti":"1"`)},
		{hdr, body(`,"permissions":["admin:all"]`)},
		{hdr, body(`,"env":"test","nbf":0`)},
		{hdr, body(`,"env":"live"`)},
		{hdr, body(`,"aud":["nexus-api","other"]`)},
		{hdr, fmt.Sprintf(`{"iss":%q,"aud":["nexus-api"],"iat":%d.5,"exp":%d}`, e.hs.ID, now, now+3601)},
		{hdr, fmt.Sprintf(`{"iss":"sc\u005f%s","aud":"nexus-api","iat":%d,"exp":1e10}`, e.hs.ID[3:], now)},
		{hdr, `{"iss":null,"aud":{},"iat":[],"exp":"x"}`},
		{fmt.Sprintf(`{"alg":"HS256","kid":%q,"kid":"x"}`, e.hs.ID), body("")},
		{fmt.Sprintf(`{"alg":"none","kid":%q}`, e.hs.ID), body("")},
		{fmt.Sprintf(`{"alg":"HS256","kid":%q,"crit":[]}`, e.hs.ID), body("")},
		{`{}`, `{}`},
		{`[]`, `null`},
	} {
		f.Add(seed[0], seed[1])
	}
	allowed := e.hs.Scopes
	f.Fuzz(func(t *testing.T, header, payload string) {
		tok := rawToken(t, jwt.SigningMethodHS256, header, payload, key)
		p, err := e.v.Verify(e.ctx, tok)
		if err != nil {
			if c := nexus.CodeOf(err); c != nexus.CodeInvalidToken && c != nexus.CodeTokenExpired {
				t.Fatalf("refused with %q (%v), want invalid_token or token_expired", c, err)
			}
		} else {
			checkAccepted(t, e, p, payload, allowed)
		}
		if _, err := e.v.Verify(e.ctx, good); err != nil {
			t.Fatalf("the valid token after %q.%q: %v", header, payload, err)
		}
	})
}

// checkAccepted holds an accepted token to the contract, reading its claims
// with encoding/json into a map (exact names, as the verifier reads them).
func checkAccepted(t *testing.T, e *env, p *nexus.Principal, payload string, allowed []string) {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		t.Fatalf("accepted claims encoding/json cannot read: %v: %q", err, payload)
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	switch {
	case p.CredentialID != e.hs.ID || p.CredentialType != nexus.CredentialServiceToken:
		t.Fatalf("accepted as %s %s, want service_token %s", p.CredentialType, p.CredentialID, e.hs.ID)
	case p.Partner.ID != e.partner.ID || p.Environment != nexus.Test:
		t.Fatalf("accepted for %s/%s, want %s/test", p.Partner.ID, p.Environment, e.partner.ID)
	case c["iss"] != e.hs.ID:
		t.Fatalf("accepted iss %v, want %s", c["iss"], e.hs.ID)
	case exp <= iat || time.Duration(exp-iat)*time.Second > MaxPartnerLifetime:
		t.Fatalf("accepted iat %v, exp %v", c["iat"], c["exp"])
	}
	switch a := c["aud"].(type) {
	case string:
		if a != "nexus-api" {
			t.Fatalf("accepted aud %q", a)
		}
	case []any:
		if !slices.Contains(a, any("nexus-api")) {
			t.Fatalf("accepted aud %v", a)
		}
	default:
		t.Fatalf("accepted aud %v", c["aud"])
	}
	have, _, _ := nexus.ParseScopes(allowed)
	if !have.Contains(p.Scopes) {
		t.Fatalf("accepted scopes %v beyond the credential's %v", p.Scopes.Names(), allowed)
	}
}
