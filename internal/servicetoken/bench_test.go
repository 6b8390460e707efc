package servicetoken

import (
	"context"
	"fmt"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// staticPartners answers every lookup with one partner, without storage:
// it isolates the verification's own cost from the SQLite partner read.
type staticPartners struct{ p nexus.Partner }

func (s staticPartners) Get(context.Context, string) (nexus.Partner, error) { return s.p, nil }

// tokenPool mints n distinct tokens (distinct jti) for one credential.
func tokenPool(b *testing.B, n int, m jwt.SigningMethod, kid string, key any) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = signed(b, m, kid, with(claims(kid), "jti", fmt.Sprintf("jti-%d", i), "service", "bench"), key)
	}
	return out
}

// benchUncached verifies a different token on every iteration, so the
// token cache never answers; the key cache does (it is warmed first), as it
// would in a running server. The token cache is emptied, timer stopped,
// each time the pool wraps around.
func benchUncached(b *testing.B, v *Verifier, pool []string) {
	ctx := context.Background()
	if _, err := v.Verify(ctx, pool[0]); err != nil {
		b.Fatal(err)
	}
	v.mu.Lock()
	clear(v.tokens)
	v.mu.Unlock()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if i == len(pool) {
			b.StopTimer()
			v.mu.Lock()
			clear(v.tokens)
			v.mu.Unlock()
			i = 0
			b.StartTimer()
		}
		if _, err := v.Verify(ctx, pool[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyHS256Cached(b *testing.B) {
	e := newEnv(b)
	tok := signed(b, jwt.SigningMethodHS256, e.hs.ID, with(claims(e.hs.ID), "service", "bench"), []byte(e.hsSecret))
	ctx := context.Background()
	if _, err := e.v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	before := e.partners.n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.partners.n.Load(); n != before {
		b.Fatalf("%d partner lookups: the token cache was not used", n-before)
	}
}

func BenchmarkVerifyHS256Uncached(b *testing.B) {
	e := newEnv(b)
	benchUncached(b, e.v, tokenPool(b, 1000, jwt.SigningMethodHS256, e.hs.ID, []byte(e.hsSecret)))
}

func BenchmarkVerifyES256Uncached(b *testing.B) {
	e := newEnv(b)
	benchUncached(b, e.v, tokenPool(b, 1000, jwt.SigningMethodES256, e.es.ID, e.esKey))
}

func BenchmarkVerifyEdDSAUncached(b *testing.B) {
	e := newEnv(b)
	benchUncached(b, e.v, tokenPool(b, 1000, jwt.SigningMethodEdDSA, e.ed.ID, e.edKey))
}

// The same without the partner read: what the JWT checks themselves cost.
func BenchmarkVerifyUncachedNoPartnerRead(b *testing.B) {
	for _, tc := range []struct {
		name string
		m    jwt.SigningMethod
		kid  func(*env) string
		key  func(*env) any
	}{
		{"HS256", jwt.SigningMethodHS256, func(e *env) string { return e.hs.ID }, func(e *env) any { return []byte(e.hsSecret) }},
		{"ES256", jwt.SigningMethodES256, func(e *env) string { return e.es.ID }, func(e *env) any { return e.esKey }},
		{"EdDSA", jwt.SigningMethodEdDSA, func(e *env) string { return e.ed.ID }, func(e *env) any { return e.edKey }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b)
			v := NewVerifier(VerifierConfig{Service: e.svc, Partners: staticPartners{e.partner}})
			benchUncached(b, v, tokenPool(b, 1000, tc.m, tc.kid(e), tc.key(e)))
		})
	}
}
