package oauth

import (
	"context"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// BenchmarkIntrospect measures /oauth/introspect's work on PostgreSQL: the
// owning client authenticates, then its access token is introspected (the
// serving wiring: a verifier that receives the invalidations).
func BenchmarkIntrospect(b *testing.B) {
	db := storetest.OpenPostgres(b)
	ctx := context.Background()
	if _, err := db.MigrateUp(ctx); err != nil {
		b.Fatal(err)
	}
	partners := partner.NewService(db)
	svc := NewService(db)
	v := NewVerifier(svc, partners)
	db.OnLocalPublish(v.Drop)
	dev, err := partners.Create(ctx, partner.CreateParams{Name: "Dev", Status: nexus.PartnerApproved})
	if err != nil {
		b.Fatal(err)
	}
	user, err := partners.Create(ctx, partner.CreateParams{Name: "User", Status: nexus.PartnerApproved})
	if err != nil {
		b.Fatal(err)
	}
	cv, err := svc.CreateClient(ctx, nexus.Tenant{PartnerID: dev.ID, Environment: nexus.Test},
		CreateClientParams{Name: "App", Type: Confidential, RedirectURIs: []string{appRedirect}, Scopes: []string{"read:balances"}})
	if err != nil {
		b.Fatal(err)
	}
	c, err := svc.clientByID(ctx, cv.ID)
	if err != nil {
		b.Fatal(err)
	}
	verifier, challenge := pkce()
	q := authQuery(&app{v: cv, c: c}, challenge, "")
	r, err := svc.ValidateAuthorize(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	code, err := svc.Approve(ctx, &Session{MemberID: nexus.NewID("mbr"), PartnerID: user.ID}, r, nexus.PartnerApproved)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := svc.ExchangeCode(ctx, c, code, appRedirect, verifier)
	if err != nil {
		b.Fatal(err)
	}
	auth := ClientAuth{ID: cv.ID, Secret: cv.ClientSecret, Basic: true}
	introspect := func(b *testing.B, withClient bool) {
		for b.Loop() {
			owner := ""
			if withClient {
				cl, err := svc.AuthenticateClient(ctx, auth)
				if err != nil {
					b.Fatal(err)
				}
				owner = cl.ID
			}
			in, err := svc.Introspect(ctx, tr.AccessToken, owner)
			if err != nil || !in.Active {
				b.Fatalf("introspect: %+v %v", in, err)
			}
		}
	}
	// A platform service's call: its bearer token is verified elsewhere.
	b.Run("token", func(b *testing.B) { introspect(b, false) })
	// The owning client's call: client authentication, then the token.
	b.Run("client+token", func(b *testing.B) { introspect(b, true) })
}
