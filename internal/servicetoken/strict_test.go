package servicetoken

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nexus-fintech/nexus/internal/nexus"
	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// rawToken signs header and payload exactly as written (duplicate names,
// other cases, other JSON types included), as a careless or hostile signer
// could.
func rawToken(tb testing.TB, m jwt.SigningMethod, header, payload string, key any) string {
	tb.Helper()
	in := b64([]byte(header)) + "." + b64([]byte(payload))
	sig, err := m.Sign(in, key)
	if err != nil {
		tb.Fatal(err)
	}
	return in + "." + b64(sig)
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// flipLastBit changes the lowest bit of the last base64url character of the
// token's signature: a non-canonical spelling of the same bytes whenever the
// signature's length leaves unused trailing bits (32 bytes: 2, 64 bytes: 4).
func flipLastBit(tb testing.TB, tok string) string {
	tb.Helper()
	i := strings.IndexByte(b64Alphabet, tok[len(tok)-1])
	out := tok[:len(tok)-1] + string(b64Alphabet[i^1])
	sig := func(t string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(t[strings.LastIndexByte(t, '.')+1:])
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	if string(sig(out)) != string(sig(tok)) {
		tb.Fatal("the flipped signature decodes to other bytes: not a malleability case")
	}
	return out
}

// insertInSig puts s in the middle of the token's signature segment.
func insertInSig(tok, s string) string {
	dot := strings.LastIndexByte(tok, '.')
	mid := dot + (len(tok)-dot)/2
	return tok[:mid] + s + tok[mid:]
}

// stdAlphabetSig returns a token from mk whose signature, spelled in the
// standard base64 alphabet, differs from its base64url spelling.
func stdAlphabetSig(tb testing.TB, mk func(i int) string) string {
	tb.Helper()
	for i := 0; i < 100; i++ {
		tok := mk(i)
		dot := strings.LastIndexByte(tok, '.')
		if sig := tok[dot+1:]; strings.ContainsAny(sig, "-_") {
			return tok[:dot+1] + strings.NewReplacer("-", "+", "_", "/").Replace(sig)
		}
	}
	tb.Fatal("no signature with - or _ in 100 tokens")
	return ""
}

// TestVerifyStrict covers what RFC 7515, RFC 7519 and RFC 8725 leave to a
// verifier's care: every token below is signed with the credential's real
// key, so only the verifier's strictness can refuse it.
func TestVerifyStrict(t *testing.T) { forEachEnv(t, testVerifyStrict) }

func testVerifyStrict(t *testing.T, e *env) {
	now := time.Now().Unix()
	hs := func(header, payload string) string {
		return rawToken(t, jwt.SigningMethodHS256, header, payload, []byte(e.hsSecret))
	}
	hdr := fmt.Sprintf(`{"alg":"HS256","typ":"JWT","kid":%q}`, e.hs.ID)
	// body is a well-formed payload for the HS256 credential with extra
	// members spliced in before the closing brace.
	body := func(extra string) string {
		s := fmt.Sprintf(`{"iss":%q,"aud":"nexus-api","iat":%d,"exp":%d`, e.hs.ID, now, now+300)
		if extra != "" {
			s += "," + extra
		}
		return s + "}"
	}
	// Tokens whose every claim is named by args in the given order.
	claimsOf := func(members ...string) string { return "{" + strings.Join(members, ",") + "}" }
	iss := fmt.Sprintf(`"iss":%q`, e.hs.ID)
	aud := `"aud":"nexus-api"`
	iat := fmt.Sprintf(`"iat":%d`, now)
	exp := fmt.Sprintf(`"exp":%d`, now+300)

	plHdr := fmt.Sprintf(`{"alg":"EdDSA","kid":%q}`, e.plEd.ID)
	pl := func(members ...string) string {
		return rawToken(t, jwt.SigningMethodEdDSA, plHdr, claimsOf(append([]string{
			fmt.Sprintf(`"iss":%q`, e.plEd.ID), `"aud":"nexus-internal"`, iat, exp}, members...)...), e.plEdKey)
	}

	accepts := []struct{ name, tok string }{
		{"the raw signer's plain token", hs(hdr, body(""))},
		{"no typ", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q}`, e.hs.ID), body(""))},
		{"typ jwt in lower case (media types ignore case)", hs(fmt.Sprintf(`{"alg":"HS256","typ":"jwt","kid":%q}`, e.hs.ID), body(""))},
		{"typ application/jwt", hs(fmt.Sprintf(`{"alg":"HS256","typ":"application/jwt","kid":%q}`, e.hs.ID), body(""))},
		{"a header parameter Nexus does not use", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"x5t":"abc"}`, e.hs.ID), body(""))},
		{"a claim Nexus does not use, of any type", hs(hdr, body(`"jti":"j-1","extra":{"a":[1,{"a":2}]},"ok":true`))},
		{"a fractional NumericDate", hs(hdr, claimsOf(iss, aud, fmt.Sprintf(`"iat":%d.25`, now), fmt.Sprintf(`"exp":%d.5`, now+300)))},
		{"a NumericDate with an exponent", hs(hdr, claimsOf(iss, aud, iat, fmt.Sprintf(`"exp":%de0`, now+300)))},
		{"members in any order, whitespace around them", hs(" {\"kid\" : \""+e.hs.ID+"\", \"alg\":\"HS256\"}\n", "\t"+claimsOf(exp, aud, iat, iss)+" ")},
		{"a claim name spelled with a JSON escape", hs(hdr, claimsOf(`"\u0069ss":"`+e.hs.ID+`"`, aud, iat, exp))},
		{"permissions as an empty array (the credential's scopes)", hs(hdr, body(`"permissions":[]`))},
		{"the platform service's plain token", pl(fmt.Sprintf(`"sub":%q`, e.partner.ID), `"env":"test"`)},
	}
	for _, tc := range accepts {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			if _, err := e.v.Verify(e.ctx, tc.tok); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}

	valid := hs(hdr, body(""))
	validES := mint(t, sdk.ServiceTokenParams{CredentialID: e.es.ID, PrivateKey: e.esKey})
	validEd := mint(t, sdk.ServiceTokenParams{CredentialID: e.ed.ID, PrivateKey: e.edKey})
	validPl := mintPlatform(t, sdk.PlatformTokenParams{ServiceID: e.plEd.ID, PrivateKey: e.plEdKey, Partner: e.partner.ID, Environment: "test"})
	refuses := []struct{ name, tok string }{
		// RFC 7515 §4.1.11: Nexus understands no extension, so any crit is refused.
		{"crit naming a claim", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"crit":["exp"],"exp":1}`, e.hs.ID), body(""))},
		{"crit naming b64 (RFC 7797)", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"crit":["b64"],"b64":true}`, e.hs.ID), body(""))},
		{"crit empty", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"crit":[]}`, e.hs.ID), body(""))},
		{"crit null", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"crit":null}`, e.hs.ID), body(""))},
		// RFC 7519 §5.2: a cty says the payload is not our claims (nesting).
		{"cty JWT (a nested token)", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"cty":"JWT"}`, e.hs.ID), body(""))},
		// RFC 8725 §3.11: another type of JWT is not a service token.
		{"typ at+jwt", hs(fmt.Sprintf(`{"alg":"HS256","typ":"at+jwt","kid":%q}`, e.hs.ID), body(""))},
		{"typ secevent+jwt", hs(fmt.Sprintf(`{"alg":"HS256","typ":"secevent+jwt","kid":%q}`, e.hs.ID), body(""))},
		{"typ not a string", hs(fmt.Sprintf(`{"alg":"HS256","typ":1,"kid":%q}`, e.hs.ID), body(""))},
		// Names are case-sensitive (RFC 7515 §4, RFC 7519 §4).
		{"Exp instead of exp", hs(hdr, claimsOf(iss, aud, iat, fmt.Sprintf(`"Exp":%d`, now+300)))},
		{"EXP instead of exp", hs(hdr, claimsOf(iss, aud, iat, fmt.Sprintf(`"EXP":%d`, now+300)))},
		{"Iat instead of iat", hs(hdr, claimsOf(iss, aud, fmt.Sprintf(`"Iat":%d`, now), exp))},
		{"ISS instead of iss", hs(hdr, claimsOf(fmt.Sprintf(`"ISS":%q`, e.hs.ID), aud, iat, exp))},
		{"Aud instead of aud", hs(hdr, claimsOf(iss, `"Aud":"nexus-api"`, iat, exp))},
		{"exp and a later EXP", hs(hdr, claimsOf(iss, aud, iat, exp, fmt.Sprintf(`"EXP":%d`, now+200)))},
		{"Permissions instead of permissions", hs(hdr, body(`"Permissions":["read:balances"]`))},
		{"Nbf beside exp", hs(hdr, body(fmt.Sprintf(`"Nbf":%d`, now)))},
		{"Sub instead of sub (platform)", pl(fmt.Sprintf(`"Sub":%q`, e.partner.ID), `"env":"test"`)},
		{"ENV instead of env (platform)", pl(fmt.Sprintf(`"sub":%q`, e.partner.ID), `"ENV":"test"`)},
		{"Kid instead of kid", hs(fmt.Sprintf(`{"alg":"HS256","Kid":%q}`, e.hs.ID), body(""))},
		{"kid and a KID", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"KID":"sc_other"}`, e.hs.ID), body(""))},
		{"ALG beside alg", hs(fmt.Sprintf(`{"alg":"HS256","ALG":"none","kid":%q}`, e.hs.ID), body(""))},
		{"Crit instead of crit", hs(fmt.Sprintf(`{"alg":"HS256","kid":%q,"Crit":["exp"]}`, e.hs.ID), body(""))},
		// NumericDate only (RFC 7519 §2).
		{"exp as a string", hs(hdr, claimsOf(iss, aud, iat, fmt.Sprintf(`"exp":"%d"`, now+300)))},
		{"iat as a string", hs(hdr, claimsOf(iss, aud, fmt.Sprintf(`"iat":"%d"`, now), exp))},
		{"nbf as a string", hs(hdr, body(fmt.Sprintf(`"nbf":"%d"`, now)))},
		{"exp as a date string", hs(hdr, claimsOf(iss, aud, iat, `"exp":"2030-01-01T00:00:00Z"`))},
		{"exp as a boolean", hs(hdr, claimsOf(iss, aud, iat, `"exp":true`))},
		{"exp null", hs(hdr, claimsOf(iss, aud, iat, `"exp":null`))},
		{"nbf null", hs(hdr, body(`"nbf":null`))},
		{"exp negative", hs(hdr, claimsOf(iss, aud, `"iat":-100`, `"exp":-1`))},
		{"exp far beyond year 9999", hs(hdr, claimsOf(iss, aud, iat, `"exp":1e300`))},
		// RFC 7519 §4.1.4, §4.1.6: a token cannot expire before it was issued.
		{"exp before iat", hs(hdr, claimsOf(iss, aud, fmt.Sprintf(`"iat":%d`, now+20), fmt.Sprintf(`"exp":%d`, now+10)))},
		{"exp equal to iat", hs(hdr, claimsOf(iss, aud, fmt.Sprintf(`"iat":%d`, now+10), fmt.Sprintf(`"exp":%d`, now+10)))},
		// Unique names (RFC 7515 §4, RFC 7519 §4, RFC 8259 §4).
		{"exp twice, the last one valid", hs(hdr, claimsOf(iss, aud, iat, fmt.Sprintf(`"exp":%d`, now-3600), exp))},
		{"exp twice, the same value", hs(hdr, claimsOf(iss, aud, iat, exp, exp))},
		{"iss twice", hs(hdr, claimsOf(`"iss":"sc_other"`, iss, aud, iat, exp))},
		{"permissions twice", hs(hdr, body(`"permissions":["read:balances"],"permissions":["write:addresses"]`))},
		{"an unused claim twice", hs(hdr, body(`"jti":"a","jti":"b"`))},
		{"exp twice, once escaped", hs(hdr, claimsOf(iss, aud, iat, exp, fmt.Sprintf(`"\u0065xp":%d`, now+200)))},
		{"kid twice", hs(fmt.Sprintf(`{"alg":"HS256","kid":"sc_other","kid":%q}`, e.hs.ID), body(""))},
		{"alg twice", hs(fmt.Sprintf(`{"alg":"none","alg":"HS256","kid":%q}`, e.hs.ID), body(""))},
		// Types of the other claims and parameters.
		{"kid a number", hs(`{"alg":"HS256","kid":7}`, body(""))},
		{"kid an array", hs(fmt.Sprintf(`{"alg":"HS256","kid":[%q]}`, e.hs.ID), body(""))},
		{"alg lower case", hs(fmt.Sprintf(`{"alg":"hs256","kid":%q}`, e.hs.ID), body(""))},
		{"alg HS512 on an HS256 credential", rawToken(t, jwt.SigningMethodHS512, fmt.Sprintf(`{"alg":"HS512","kid":%q}`, e.hs.ID), body(""), []byte(e.hsSecret))},
		{"iss a number", hs(hdr, claimsOf(`"iss":1`, aud, iat, exp))},
		{"aud a number", hs(hdr, claimsOf(iss, `"aud":1`, iat, exp))},
		{"aud an empty array", hs(hdr, claimsOf(iss, `"aud":[]`, iat, exp))},
		{"permissions a string", hs(hdr, body(`"permissions":"read:balances"`))},
		{"permissions null", hs(hdr, body(`"permissions":null`))},
		{"permissions holding a number", hs(hdr, body(`"permissions":["read:balances",1]`))},
		{"service a number", hs(hdr, body(`"service":1`))},
		{"env null", hs(hdr, body(`"env":null`))},
		{"sub a number (platform)", pl(`"sub":1`, `"env":"test"`)},
		// One JSON object per segment, in UTF-8 (RFC 8259 §8.1).
		{"claims not UTF-8", hs(hdr, body("\"service\":\"caf\xe9\""))},
		{"header not UTF-8", hs(fmt.Sprintf("{\"alg\":\"HS256\",\"kid\":%q,\"x\":\"\xff\"}", e.hs.ID), body(""))},
		{"claims followed by another object", hs(hdr, body("")+"{}")},
		{"header followed by another object", hs(hdr+"{}", body(""))},
		{"claims an array", hs(hdr, "["+body("")+"]")},
		{"header an array", hs("["+hdr+"]", body(""))},
		// One spelling of the signature (RFC 7515 §2, §7.1; RFC 4648 §3.5).
		{"HS256 signature with its last unused bit set", flipLastBit(t, valid)},
		{"ES256 signature with its last unused bit set", flipLastBit(t, validES)},
		{"EdDSA signature with its last unused bit set", flipLastBit(t, validEd)},
		{"platform signature with its last unused bit set", flipLastBit(t, validPl)},
		{"signature with a newline inside", insertInSig(valid, "\n")},
		{"signature with a carriage return inside", insertInSig(valid, "\r")},
		{"signature padded with =", valid + "="},
		{"signature in the standard alphabet", stdAlphabetSig(t, func(i int) string { return hs(hdr, body(fmt.Sprintf(`"jti":"%d"`, i))) })},
		{"signature with a space inside", insertInSig(valid, " ")},
		{"an empty signature", valid[:strings.LastIndexByte(valid, '.')+1]},
	}
	for _, tc := range refuses {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			p, err := e.v.Verify(e.ctx, tc.tok)
			if err == nil {
				t.Fatalf("accepted: principal %s %v", p.CredentialID, p.Scopes.Names())
			}
			if got := nexus.CodeOf(err); got != nexus.CodeInvalidToken {
				t.Fatalf("code %q (%v), want invalid_token", got, err)
			}
		})
	}
	// The tokens the malformed ones were made from are accepted.
	for _, tok := range []string{valid, validES, validEd, validPl} {
		if _, err := e.v.Verify(e.ctx, tok); err != nil {
			t.Fatalf("an untouched token: %v", err)
		}
	}
}
