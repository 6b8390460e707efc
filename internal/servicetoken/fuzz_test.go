package servicetoken

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nexus-fintech/nexus/internal/nexus"
	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// FuzzVerify feeds the verifier mutations of valid and invalid tokens. It
// must never panic, must refuse with a token code (never a storage or
// internal error), and must accept only the valid tokens it was seeded
// with: the fuzzer holds no key, so any other token it gets accepted is a
// forgery or a second spelling of a signed token.
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	now := time.Now().Unix()
	hsKey := []byte(e.hsSecret)
	valid := []string{
		mint(f, sdk.ServiceTokenParams{CredentialID: e.hs.ID, Secret: e.hsSecret, Service: "fuzz", Permissions: []string{"read:balances"}}),
		mint(f, sdk.ServiceTokenParams{CredentialID: e.es.ID, PrivateKey: e.esKey}),
		mint(f, sdk.ServiceTokenParams{CredentialID: e.ed.ID, PrivateKey: e.edKey, Service: "fuzz"}),
		mint(f, sdk.ServiceTokenParams{CredentialID: e.live.ID, PrivateKey: e.liveKey}),
		mintPlatform(f, sdk.PlatformTokenParams{ServiceID: e.plEd.ID, PrivateKey: e.plEdKey, Partner: e.partner.ID, Environment: "test"}),
		mintPlatform(f, sdk.PlatformTokenParams{ServiceID: e.plEC.ID, PrivateKey: e.plECKey, Partner: e.partner.ID, Environment: "live"}),
	}
	accepted := make(map[string]bool)
	for _, tok := range valid {
		if _, err := e.v.Verify(e.ctx, tok); err != nil {
			f.Fatalf("seed %s…: %v", tok[:20], err)
		}
		accepted[tok] = true
		f.Add(tok)
	}
	hdr := fmt.Sprintf(`{"alg":"HS256","kid":%q}`, e.hs.ID)
	body := fmt.Sprintf(`{"iss":%q,"aud":"nexus-api","iat":%d,"exp":%d}`, e.hs.ID, now, now+300)
	for _, tok := range []string{
		rawToken(f, jwt.SigningMethodHS256, fmt.Sprintf(`{"alg":"HS256","kid":%q,"crit":["exp"]}`, e.hs.ID), body, hsKey),
		rawToken(f, jwt.SigningMethodHS256, hdr, strings.Replace(body, `"exp"`, `"Exp"`, 1), hsKey),
		rawToken(f, jwt.SigningMethodHS256, hdr, strings.Replace(body, fmt.Sprintf(`"exp":%d`, now+300), fmt.Sprintf(`"exp":"%d"`, now+300), 1), hsKey),
		rawToken(f, jwt.SigningMethodHS256, hdr, strings.Replace(body, "}", fmt.Sprintf(`,"exp":%d}`, now+200), 1), hsKey),
		rawToken(f, jwt.SigningMethodHS256, hdr, fmt.Sprintf(`{"iss":%q,"aud":"nexus-api","iat":%d,"exp":%d}`, e.hs.ID, now+20, now+10), hsKey),
		rawToken(f, jwt.SigningMethodHS256, fmt.Sprintf(`{"alg":"HS256","typ":"at+jwt","kid":%q}`, e.hs.ID), body, hsKey),
		flipLastBit(f, valid[0]),
		insertInSig(valid[1], "\n"),
		b64JSON(f, map[string]any{"alg": "none", "kid": e.hs.ID}) + "." + b64([]byte(body)) + ".",
		"a.b.c", "..", "e30.e30.e30", "",
	} {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := e.v.Verify(e.ctx, tok)
		if err == nil {
			if !accepted[tok] {
				t.Fatalf("accepted a token the fuzzer made: %q (credential %s)", tok, p.CredentialID)
			}
			return
		}
		if c := nexus.CodeOf(err); c != nexus.CodeInvalidToken && c != nexus.CodeTokenExpired {
			t.Fatalf("refused with %q (%v), want invalid_token or token_expired", c, err)
		}
	})
}
