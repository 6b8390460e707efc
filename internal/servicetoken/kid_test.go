package servicetoken

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// A kid that is no credential or service id (a NUL in it, which PostgreSQL
// refuses in a query, say) is an invalid token on both databases, never an
// internal error (issue 11, item 10).
func TestVerifyMalformedKid(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrate(t, db)
		v := NewVerifier(VerifierConfig{Service: NewService(db, nil), Partners: partner.NewService(db)})
		id := nexus.NewID("sc")
		for _, kid := range []string{
			"sc_\x00", id[:len(id)-1] + "\x00", "svc_\x00" + id[4:], "sc_" + "'; --", "sc_" + string(make([]byte, 26)),
		} {
			tok := signed(t, jwt.SigningMethodHS256, kid, claims(kid), []byte("secret"))
			_, err := v.Verify(ctx, tok)
			if got := nexus.CodeOf(err); got != nexus.CodeInvalidToken {
				t.Errorf("kid %q: %v (%s), want invalid_token", kid, err, got)
			}
		}
	})
}
