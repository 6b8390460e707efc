// Package csrf makes and checks the CSRF tokens of Nexus's HTML forms (the
// sign-in, consent and sign-out pages and every dashboard form).
package csrf

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// Signer makes tokens under one key; instances behind one load balancer
// need the same key.
type Signer struct{ key []byte }

// New returns a signer under key, or under a random key of this process
// when key is empty.
func New(key []byte) *Signer {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &Signer{key: key}
}

// MinBinding is the shortest binding a token may be checked against: a
// missing or truncated cookie never passes.
const MinBinding = 32

// Token is the CSRF token of a form of purpose for a browser known by
// binding (its session cookie, or its pre-session cookie before login):
// HMAC-SHA256 under the server's key. Unlike a bare double-submit value, a
// cookie planted in the browser is useless without its token, which only
// the server can make, and a token fits only its own session and form.
func (s *Signer) Token(purpose, binding string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Valid checks got in constant time against the token of purpose and
// binding.
func (s *Signer) Valid(purpose, binding, got string) bool {
	if len(binding) < MinBinding {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(s.Token(purpose, binding)), []byte(got)) == 1
}
