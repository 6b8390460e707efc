package servicetoken

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// A service token is read here rather than by the JWT library, which is
// lenient where RFC 8725 asks for care: it matches claim names in any case,
// keeps the last of duplicate names, takes "exp": "1700000000" as a date,
// ignores crit, and decodes base64url with newlines or non-zero trailing
// bits (two spellings of one signature). The library still verifies the
// signature (jwt.SigningMethod); nothing here is cryptography.

// jws is a compact JWS (RFC 7515 §7.1) whose header has been read and
// whose signature is not yet verified.
type jws struct {
	signingInput string // BASE64URL(header) "." BASE64URL(payload), as sent
	payload      []byte
	sig          []byte
	alg, kid     string
}

// parseJWS splits tok into its three segments, each in the one canonical
// base64url spelling, and reads the protected header.
func parseJWS(tok string) (*jws, error) {
	h, rest, ok1 := strings.Cut(tok, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 {
		return nil, invalid("a JWT has three segments")
	}
	header, err := decodeSegment(h)
	if err != nil {
		return nil, invalid("the header is not canonical base64url")
	}
	payload, err := decodeSegment(p)
	if err != nil {
		return nil, invalid("the payload is not canonical base64url")
	}
	sig, err := decodeSegment(s)
	if err != nil {
		return nil, invalid("the signature is not canonical base64url")
	}
	if len(sig) == 0 {
		return nil, invalid("the signature is missing")
	}
	t := &jws{signingInput: tok[:len(h)+1+len(p)], payload: payload, sig: sig}
	if err := t.readHeader(header); err != nil {
		return nil, err
	}
	return t, nil
}

// decodeSegment decodes unpadded base64url (RFC 7515 §2) in its canonical
// form only: the URL alphabet and nothing else (no padding, no CR or LF,
// which the standard decoder skips), and zero trailing bits (RFC 4648
// §3.5), so that one signature has one spelling.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("not base64url")
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// Header parameters Nexus reads or refuses; a name equal to one of these
// but for case is refused, not ignored (names are case-sensitive, RFC 7515
// §4, and a signer who wrote "Kid" meant kid).
var headerNames = []string{"alg", "kid", "typ", "crit", "cty"}

func (t *jws) readHeader(data []byte) error {
	var hasAlg, hasKid bool
	err := readObject(data, headerNames, func(name string, v []byte) error {
		var err error
		switch name {
		case "alg":
			t.alg, err = jsonString(v, "alg")
			hasAlg = true
		case "kid":
			// RFC 7515 §4.1.4: a string; the credential or service id.
			t.kid, err = jsonString(v, "kid")
			hasKid = true
		case "typ":
			// RFC 8725 §3.11: another type of JWT (an OAuth access token,
			// a security event, …) is not a service token even when its
			// signature verifies. Media types ignore case (RFC 7515 §4.1.9).
			var typ string
			if typ, err = jsonString(v, "typ"); err == nil &&
				!strings.EqualFold(typ, "JWT") && !strings.EqualFold(typ, "application/jwt") {
				err = invalid("typ must be JWT")
			}
		case "crit":
			// RFC 7515 §4.1.11: Nexus understands no extension.
			err = invalid("the crit header is not supported")
		case "cty":
			// RFC 7519 §5.2: the payload would not be the claims (nesting).
			err = invalid("the cty header is not supported")
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case !hasAlg:
		return invalid("alg header is required")
	case !hasKid || t.kid == "":
		return invalid("kid header is required")
	}
	return nil
}

// tokenClaims are the claims Nexus reads from a service token (RFC 7519 §4).
type tokenClaims struct {
	iss, sub, env, service string
	aud                    []string
	permissions            []string
	exp, iat, nbf          time.Time // zero: absent
}

// Claim names Nexus reads; names equal to one of these but for case are
// refused (see headerNames).
var claimNames = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "env", "service", "permissions"}

// parseClaims reads the claims set: one JSON object with unique member
// names; the claims Nexus reads must have their registered types, dates
// NumericDate only. Other claims are ignored (RFC 7519 §4).
func parseClaims(data []byte) (*tokenClaims, error) {
	c := new(tokenClaims)
	err := readObject(data, claimNames, func(name string, v []byte) error {
		var err error
		switch name {
		case "iss":
			c.iss, err = jsonString(v, name)
		case "sub":
			c.sub, err = jsonString(v, name)
		case "env":
			c.env, err = jsonString(v, name)
		case "service":
			c.service, err = jsonString(v, name)
		case "aud":
			// RFC 7519 §4.1.3: one string or an array of them.
			if len(v) > 0 && v[0] == '"' {
				var a string
				a, err = jsonString(v, name)
				c.aud = []string{a}
			} else if c.aud, err = jsonStrings(v, name); err == nil && len(c.aud) == 0 {
				err = invalid("aud must not be empty")
			}
		case "permissions":
			c.permissions, err = jsonStrings(v, name)
		case "exp":
			c.exp, err = numericDate(v, name)
		case "iat":
			c.iat, err = numericDate(v, name)
		case "nbf":
			c.nbf, err = numericDate(v, name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// jsonString reads a JSON string; null and every other type are refused.
func jsonString(v []byte, name string) (string, error) {
	if len(v) == 0 || v[0] != '"' {
		return "", invalid(name + " must be a string")
	}
	return unquote(v), nil
}

// jsonStrings reads an array of strings.
func jsonStrings(v []byte, name string) ([]string, error) {
	out := make([]string, 0, 4)
	if !readStrings(v, func(s string) { out = append(out, s) }) {
		return nil, invalid(name + " must be an array of strings")
	}
	return out, nil
}

// maxNumericDate is 9999-12-31T23:59:59Z: later dates are mistakes, and
// keeping them out keeps time arithmetic from overflowing.
const maxNumericDate = 253402300799

// numericDate reads a NumericDate (RFC 7519 §2): a JSON number of seconds
// since the epoch, fractions allowed. A string, even of digits, is not one.
func numericDate(v []byte, name string) (time.Time, error) {
	if len(v) == 0 || !(v[0] == '-' || '0' <= v[0] && v[0] <= '9') {
		return time.Time{}, invalid(name + " must be a NumericDate (a JSON number)")
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, invalid(name + " must be a NumericDate between 1970 and 9999")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
