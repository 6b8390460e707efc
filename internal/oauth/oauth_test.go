package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// ---- fixture ----

// fx is one test's world: a fresh SQLite database, the OAuth service, an
// approved partner that registers apps (dev) and an approved partner whose
// member consents (user).
type fx struct {
	t        *testing.T
	ctx      context.Context
	db       *store.DB
	svc      *Service
	partners *partner.Service
	dev      nexus.Partner
	user     nexus.Partner
	sess     *Session
}

const appRedirect = "https://app.example.com/cb"

func newFx(t *testing.T) *fx {
	t.Helper()
	return newFxOn(t, storetest.OpenSQLite(t))
}

// newFxOn is newFx on a fresh database of storetest.ForEachDB.
func newFxOn(t *testing.T, db *store.DB) *fx {
	t.Helper()
	ctx := context.Background()
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// Every query of the test on a tenant table must be built by store.For
	// or store.CrossTenant (the partner service's queries included).
	storetest.CheckTenancy(t, db)
	f := &fx{t: t, ctx: ctx, db: db, svc: NewService(db), partners: partner.NewService(db)}
	f.dev = f.partner("Dev Co", nexus.PartnerApproved)
	f.user = f.partner("User Co", nexus.PartnerApproved)
	// Grants reference the member by id only; a synthetic session keeps the
	// (deliberately slow) argon2id out of every flow test.
	f.sess = &Session{MemberID: nexus.NewID("mbr"), PartnerID: f.user.ID}
	return f
}

func (f *fx) partner(name string, st nexus.PartnerStatus) nexus.Partner {
	f.t.Helper()
	p, err := f.partners.Create(f.ctx, partner.CreateParams{Name: name, Status: st})
	if err != nil {
		f.t.Fatalf("create partner: %v", err)
	}
	return p
}

func tenant(p nexus.Partner, env nexus.Environment) nexus.Tenant {
	return nexus.Tenant{PartnerID: p.ID, Environment: env}
}

// newClient registers a client of dev in env.
func (f *fx) newClient(typ string, env nexus.Environment, uris []string, scopes ...string) *ClientView {
	f.t.Helper()
	v, err := f.svc.CreateClient(f.ctx, tenant(f.dev, env), CreateClientParams{Name: "App " + typ, Type: typ, RedirectURIs: uris, Scopes: scopes})
	if err != nil {
		f.t.Fatalf("create client: %v", err)
	}
	return v
}

// row is the stored client, as the token endpoint hands it to the flows.
func (f *fx) row(id string) *Client {
	f.t.Helper()
	c, err := f.svc.clientByID(f.ctx, id)
	if err != nil || c == nil {
		f.t.Fatalf("client %s: %v (nil=%v)", id, err, c == nil)
	}
	return c
}

// app is a registered test-environment client plus its stored row.
type app struct {
	v *ClientView
	c *Client
}

func (f *fx) app(typ string, scopes ...string) *app {
	f.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"read:balances", "read:funding", "write:addresses"}
	}
	v := f.newClient(typ, nexus.Test, []string{appRedirect}, scopes...)
	return &app{v: v, c: f.row(v.ID)}
}

func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	return verifier, s256(verifier)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authQuery is a valid authorization request for a with PKCE.
func authQuery(a *app, challenge, scope string) url.Values {
	q := url.Values{"client_id": {a.v.ID}, "response_type": {"code"}, "redirect_uri": {appRedirect}, "state": {"xyz"}}
	if challenge != "" {
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	return q
}

// code runs authorize + approve for a with PKCE and returns the code and
// its verifier.
func (f *fx) code(a *app, scope string) (code, verifier string) {
	f.t.Helper()
	verifier, challenge := pkce()
	r, err := f.svc.ValidateAuthorize(f.ctx, authQuery(a, challenge, scope))
	if err != nil {
		f.t.Fatalf("authorize: %v", err)
	}
	code, err = f.svc.Approve(f.ctx, f.sess, r, nexus.PartnerApproved)
	if err != nil {
		f.t.Fatalf("approve: %v", err)
	}
	return code, verifier
}

// tokens runs the whole code flow for a.
func (f *fx) tokens(a *app, scope string) *TokenResponse {
	f.t.Helper()
	code, verifier := f.code(a, scope)
	tr, err := f.svc.ExchangeCode(f.ctx, a.c, code, appRedirect, verifier)
	if err != nil {
		f.t.Fatalf("exchange: %v", err)
	}
	return tr
}

// verifier returns a verifier wired to this process's invalidations, as
// serve does (Tx calls the OnLocalPublish subscribers after commit).
func (f *fx) verifier() *Verifier {
	v := NewVerifier(f.svc, f.partners)
	f.db.OnLocalPublish(v.Drop)
	return v
}

// topics records every topic published from now on.
func (f *fx) topics() func() []string {
	var mu sync.Mutex
	var got []string
	f.db.OnLocalPublish(func(topic string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, topic)
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// setExpiry moves expires_at of one row of table (keyed by col = key).
func (f *fx) setExpiry(table, col, key string, at time.Time) {
	f.t.Helper()
	res, err := f.cross("moves an expiry").Raw("UPDATE ? SET expires_at = ? WHERE ? = ?", bun.Ident(table), at, bun.Ident(col), key).Exec(f.ctx)
	if err != nil {
		f.t.Fatalf("update %s: %v", table, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		f.t.Fatalf("update %s: %d rows", table, n)
	}
}

// advance moves the clock the service checks expiry against by d (the
// database's timestamps stay where they are). Call it before concurrent use.
func (f *fx) advance(d time.Duration) {
	now := f.svc.now
	f.svc.now = func() time.Time { return now().Add(d) }
}

// cross is the test's door to rows it reads or changes behind the service.
func (f *fx) cross(why string) store.Cross { return store.CrossTenant(f.db.DB, "test: "+why) }

func (f *fx) grantID(at string) string {
	f.t.Helper()
	in, err := f.svc.Introspect(f.ctx, at, "")
	if err != nil || !in.Active {
		f.t.Fatalf("introspect: %v %+v", err, in)
	}
	return in.GrantID
}

// ---- assertions ----

func wantOAuth(t *testing.T, err error, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want OAuth error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("err = %v, want code %s", e, code)
	}
	wantStatus := 400
	if code == "invalid_client" {
		wantStatus = 401
	}
	if e.Status != wantStatus {
		t.Fatalf("%s: status %d, want %d", code, e.Status, wantStatus)
	}
	return e
}

func wantNexus(t *testing.T, err error, code nexus.Code) *nexus.Error {
	t.Helper()
	var e *nexus.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("err = %v, want code %s", e, code)
	}
	return e
}

func wantCred(t *testing.T, s, env string, kind credential.Kind) {
	t.Helper()
	c, err := credential.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	if c.Env != env || c.Kind != kind {
		t.Fatalf("%q: env %s kind %s, want %s %s", s, c.Env, c.Kind, env, kind)
	}
	if prefix := "nx_" + env + "_" + string(kind) + "_"; !strings.HasPrefix(s, prefix) {
		t.Fatalf("%q lacks prefix %s", s, prefix)
	}
}

// wantVerify asserts what the verifier answers for tok: a principal (code
// "") or the contract error code.
func wantVerify(t *testing.T, v *Verifier, tok string, code nexus.Code) *nexus.Principal {
	t.Helper()
	p, err := v.Verify(context.Background(), tok)
	if code == "" {
		if err != nil {
			t.Fatalf("Verify: %v, want success", err)
		}
		return p
	}
	if p != nil {
		t.Fatalf("Verify: principal %+v, want %s", p, code)
	}
	wantNexus(t, err, code)
	return nil
}
