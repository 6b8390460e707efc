package masterkey_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/nexus-fintech/nexus/internal/masterkey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/secretbox"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

func key(c byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(c), 32)))
}

func box(t *testing.T, current string, previous ...string) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func migrated(t *testing.T, db *store.DB) {
	t.Helper()
	if _, err := db.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// hs256 creates an HS256 service credential sealed under b and returns its
// id and plaintext signing secret.
func hs256(t *testing.T, db *store.DB, b *secretbox.Box) (id, secret string) {
	t.Helper()
	ctx := context.Background()
	p, err := partner.NewService(db).Create(ctx, partner.CreateParams{Name: "mk " + t.Name(), Status: nexus.PartnerApproved})
	if err != nil {
		t.Fatal(err)
	}
	v, err := servicetoken.NewService(db, b).Create(ctx, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test},
		servicetoken.CreateParams{Algorithm: servicetoken.HS256})
	if err != nil {
		t.Fatal(err)
	}
	return v.ID, v.Secret
}

// opens reports whether only the box opens credential id's stored secret
// to want.
func opens(t *testing.T, db *store.DB, b *secretbox.Box, id, want string) bool {
	t.Helper()
	var enc string
	if err := store.CrossTenant(db.DB, "test: a sealed secret by id").Select(nil).Table("service_credentials").Column("secret_enc").Where("id = ?", id).Scan(context.Background(), &enc); err != nil {
		t.Fatal(err)
	}
	got, err := b.Open(id, enc)
	return err == nil && got == want
}

// A restart with another master key is refused (it used to start and
// answer 500 to every HS256 token); the same key, in any encoding, passes.
func TestVerifyRefusesAnotherKey(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		a := box(t, key('a'))
		if m, err := masterkey.Verify(ctx, db, a); err != nil || m != secretbox.MatchCurrent {
			t.Fatalf("first start: %v, %v", m, err)
		}
		hs256(t, db, a)
		if _, err := masterkey.Verify(ctx, db, a); err != nil {
			t.Fatalf("restart with the same key: %v", err)
		}
		if _, err := masterkey.Verify(ctx, db, box(t, key('b'))); !errors.Is(err, masterkey.ErrMismatch) {
			t.Fatalf("restart with another key: %v, want ErrMismatch", err)
		}
		// Not even an empty database of secrets lets a new key in: the
		// recorded key stays the reference.
		if _, err := masterkey.Verify(ctx, db, box(t, key('c'), key('b'))); !errors.Is(err, masterkey.ErrMismatch) {
			t.Fatalf("another key with an unrelated previous one: %v, want ErrMismatch", err)
		}
	})
}

// A database from before checks were kept: the key is proved on the
// secrets already sealed, then recorded.
func TestVerifyProvesKeyOnExistingSecrets(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		a := box(t, key('a'))
		hs256(t, db, a) // sealed before any check was recorded
		if _, err := masterkey.Verify(ctx, db, box(t, key('b'))); !errors.Is(err, masterkey.ErrMismatch) {
			t.Fatalf("a key that opens none of the secrets: %v, want ErrMismatch", err)
		}
		if inUse, err := masterkey.InUse(ctx, db); err != nil || !inUse {
			t.Fatalf("InUse with a sealed secret = %v, %v", inUse, err)
		}
		if m, err := masterkey.Verify(ctx, db, a); err != nil || m != secretbox.MatchCurrent {
			t.Fatalf("the right key: %v, %v", m, err)
		}
		if _, err := masterkey.Verify(ctx, db, box(t, key('b'))); !errors.Is(err, masterkey.ErrMismatch) {
			t.Fatalf("after recording: another key = %v, want ErrMismatch", err)
		}
	})
}

func TestInUseOnEmptyDatabase(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		if inUse, err := masterkey.InUse(ctx, db); err != nil || inUse {
			t.Fatalf("InUse on a new database = %v, %v", inUse, err)
		}
		if _, err := masterkey.Verify(ctx, db, box(t, key('a'))); err != nil {
			t.Fatal(err)
		}
		if inUse, err := masterkey.InUse(ctx, db); err != nil || !inUse {
			t.Fatalf("InUse once a key is recorded = %v, %v", inUse, err)
		}
	})
}

// Rotation: start with the new key and the previous one, every secret
// opens and new ones are sealed under the new key; rekey re-seals the rest
// in one go and records the new key; then the previous key can go.
func TestRotationAndRekey(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		a, b := box(t, key('a')), box(t, key('b'))
		if _, err := masterkey.Verify(ctx, db, a); err != nil {
			t.Fatal(err)
		}
		oldID, oldSecret := hs256(t, db, a)

		rot := box(t, key('b'), key('a'))
		if m, err := masterkey.Verify(ctx, db, rot); err != nil || m != secretbox.MatchPrevious {
			t.Fatalf("start with the new key and the previous one: %v, %v; want MatchPrevious", m, err)
		}
		newID, newSecret := hs256(t, db, rot)
		if !opens(t, db, b, newID, newSecret) {
			t.Error("a secret created during the rotation is not sealed under the new key")
		}
		if _, err := masterkey.Verify(ctx, db, b); !errors.Is(err, masterkey.ErrMismatch) {
			t.Fatalf("the new key alone before rekey: %v, want ErrMismatch", err)
		}

		res, err := masterkey.Rekey(ctx, db, rot)
		if err != nil {
			t.Fatal(err)
		}
		if res.Resealed != 2 || res.FromPrevious != 1 || res.Tables["service_credentials"] != 2 {
			t.Errorf("rekey counts %+v, want 2 resealed, 1 from the previous key", res)
		}
		if !opens(t, db, b, oldID, oldSecret) || !opens(t, db, b, newID, newSecret) {
			t.Error("after rekey, the new key alone does not open every secret")
		}
		if m, err := masterkey.Verify(ctx, db, b); err != nil || m != secretbox.MatchCurrent {
			t.Fatalf("the new key alone after rekey: %v, %v", m, err)
		}
		if _, err := masterkey.Verify(ctx, db, a); !errors.Is(err, masterkey.ErrMismatch) {
			t.Fatalf("the old key after rekey: %v, want ErrMismatch", err)
		}
	})
}

// A rekey that meets a secret it cannot open changes nothing.
func TestRekeyIsAllOrNothing(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		a := box(t, key('a'))
		id1, s1 := hs256(t, db, a)
		// A secret under a key nobody has any more, written past the check.
		id2, _ := hs256(t, db, box(t, key('z')))

		if _, err := masterkey.Rekey(ctx, db, box(t, key('b'), key('a'))); !errors.Is(err, masterkey.ErrMismatch) || !strings.Contains(err.Error(), id2) {
			t.Fatalf("rekey over an unopenable secret: %v, want ErrMismatch naming %s", err, id2)
		}
		if !opens(t, db, a, id1, s1) {
			t.Error("the failed rekey changed a secret")
		}
		if inUse, _ := masterkey.InUse(ctx, db); !inUse {
			t.Fatal("InUse")
		}
		// And it recorded no key: the old key is still proved on the secrets.
		if _, err := masterkey.Verify(ctx, db, box(t, key('b'))); !errors.Is(err, masterkey.ErrMismatch) {
			t.Fatalf("after the failed rekey the new key passes: %v", err)
		}
	})
}

// Every column of sealed secrets (named *_enc by convention) is known to
// Verify and Rekey: a new one left out would be left behind by a rotation.
func TestEverySealedColumnIsRekeyed(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		migrated(t, db)
		q := `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		      WHERE m.type = 'table' AND p.name LIKE '%\_enc' ESCAPE '\'`
		if db.Dialect == store.Postgres {
			q = `SELECT table_name || '.' || column_name FROM information_schema.columns
			     WHERE table_schema = current_schema() AND column_name LIKE '%\_enc' ESCAPE '\'`
		}
		var cols []string
		if err := db.NewRaw(q).Scan(context.Background(), &cols); err != nil {
			t.Fatal(err)
		}
		if len(cols) == 0 {
			t.Fatal("no *_enc column found: the query is wrong")
		}
		for _, c := range cols {
			if !masterkey.Seals(c) {
				t.Errorf("%s holds sealed secrets but is not in masterkey's list", c)
			}
		}
	})
}
