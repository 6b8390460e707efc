package killswitch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"sync"
	"testing"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/killswitch"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// A lockdown revokes the keys that still work or are suspended and the
// active service credentials of one tenant, in one transaction announced on
// the partner topic; the other environment and keys already ended are left
// alone, and a second lockdown finds nothing.
func TestRevokeAll(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.MigrateUp(ctx); err != nil {
			t.Fatal(err)
		}
		storetest.CheckTenancy(t, db)
		var mu sync.Mutex
		var published []string
		db.OnLocalPublish(func(topic string) { mu.Lock(); published = append(published, topic); mu.Unlock() })
		p, err := partner.NewService(db).Create(ctx, partner.CreateParams{Name: "lockdown", Status: nexus.PartnerApproved})
		if err != nil {
			t.Fatal(err)
		}
		tn := nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}
		live := nexus.Tenant{PartnerID: p.ID, Environment: nexus.Live}
		keys, creds := apikey.NewService(db), servicetoken.NewService(db, nil)
		key := func(tn nexus.Tenant) string {
			t.Helper()
			k, err := keys.Create(ctx, tn, apikey.CreateParams{})
			if err != nil {
				t.Fatal(err)
			}
			return k.ID
		}
		active, suspended, revoked, other := key(tn), key(tn), key(tn), key(live)
		if _, err := keys.Suspend(ctx, tn, suspended); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Revoke(ctx, tn, revoked); err != nil {
			t.Fatal(err)
		}
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		cred := func(tn nexus.Tenant) string {
			t.Helper()
			c, err := creds.Create(ctx, tn, servicetoken.CreateParams{Algorithm: servicetoken.ES256, PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			return c.ID
		}
		sc, otherSC := cred(tn), cred(live)
		mu.Lock()
		published = nil
		mu.Unlock()

		ks := killswitch.New(db)
		r, err := ks.RevokeAll(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		if r.APIKeys != 2 || r.ServiceCredentials != 1 || r.NothingRevoked || r.RevokedAt == nil {
			t.Errorf("lockdown: %+v, want 2 api keys and 1 service credential", r)
		}
		mu.Lock()
		if !slices.Equal(published, []string{store.TopicPartner(p.ID)}) {
			t.Errorf("published %v, want the partner topic once", published)
		}
		mu.Unlock()
		for _, c := range []struct {
			tn   nexus.Tenant
			id   string
			want apikey.Status
		}{{tn, active, apikey.Revoked}, {tn, suspended, apikey.Revoked}, {tn, revoked, apikey.Revoked}, {live, other, apikey.Active}} {
			if k, err := keys.Get(ctx, c.tn, c.id); err != nil || k.Status != c.want {
				t.Errorf("key %s: %+v, %v; want %s", c.id, k, err, c.want)
			}
		}
		for id, want := range map[string]struct {
			tn     nexus.Tenant
			status string
		}{sc: {tn, "revoked"}, otherSC: {live, "active"}} {
			if c, err := creds.Get(ctx, want.tn, id); err != nil || c.Status != want.status || (want.status == "revoked") != (c.RevokedAt != nil) {
				t.Errorf("service credential %s: %+v, %v; want %s", id, c, err, want.status)
			}
		}

		if r, err := ks.RevokeAll(ctx, tn); err != nil || !r.NothingRevoked || r.RevokedAt != nil || r.APIKeys+r.ServiceCredentials != 0 {
			t.Errorf("second lockdown: %+v, %v; want nothing revoked", r, err)
		}
	})
}
