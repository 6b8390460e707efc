package e2e

import (
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The key API's answers, lists, pagination and strict input (CONTRACT §2,
// §4, §5), and the public endpoints.
func TestKeyAPI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		admin := bearer(tn.Admin.Key)
		keysURL := s.URL + "/v1/api_keys"

		t.Run("create shows the key once", func(t *testing.T) {
			r := do(t, "POST", keysURL, admin, map[string]any{"name": "ci", "scopes": []string{"read:balances"}})
			wantStatus(t, r, 201)
			if r.Str("object") != "api_key" || r.Str("name") != "ci" || r.Str("type") != "secret" ||
				r.Str("environment") != "test" || r.Str("status") != "active" {
				t.Errorf("create answer: %s", r)
			}
			plain, id := r.Str("key"), r.Str("id")
			if !strings.HasPrefix(plain, "nx_test_sk_") || len(plain) != 47 {
				t.Fatalf("key %q is not nx_test_sk_ + 36 chars", plain)
			}
			if r.Str("prefix") != plain[:15] || r.Str("last4") != plain[len(plain)-4:] {
				t.Errorf("prefix %q / last4 %q do not match the key", r.Str("prefix"), r.Str("last4"))
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("an answer holding a secret must not be cached: Cache-Control %q", cc)
			}
			g := do(t, "GET", keysURL+"/"+id, admin, nil)
			wantStatus(t, g, 200)
			if _, ok := g.JSON["key"]; ok || strings.Contains(string(g.Body), plain) {
				t.Errorf("GET shows the secret again: %s", g)
			}
			if g.Str("id") != id || g.Str("prefix") != plain[:15] {
				t.Errorf("GET answer: %s", g)
			}
			l := do(t, "GET", keysURL+"?limit=100", admin, nil)
			wantStatus(t, l, 200)
			if strings.Contains(string(l.Body), plain) {
				t.Errorf("the list shows a secret: %s", l)
			}
			for _, k := range l.Data() {
				if _, ok := k["key"]; ok {
					t.Errorf("list item with a key field: %v", k)
				}
			}
		})

		t.Run("last_used_at", func(t *testing.T) {
			k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{})
			if k.ExpiresAt != nil {
				t.Errorf("a new key without expires_at: %+v", k)
			}
			before := time.Now().UTC()
			wantStatus(t, partnerAs(t, s, bearer(k.Key)), 200)
			// Written off the request path, kept to the minute.
			var r *Response
			if _, ok := poll(6*time.Second, 100*time.Millisecond, func() bool {
				r = do(t, "GET", keysURL+"/"+k.ID, admin, nil)
				return r.Get("last_used_at") != nil
			}); !ok {
				t.Fatalf("last_used_at still unset 6 s after use: %s", r)
			}
			at, err := time.Parse(time.RFC3339Nano, r.Str("last_used_at"))
			if err != nil || !at.Equal(at.Truncate(time.Minute)) || at.Before(before.Truncate(time.Minute)) || at.After(time.Now()) {
				t.Errorf("last_used_at %q, want a whole minute between %s and now", r.Str("last_used_at"), before.Format(time.RFC3339))
			}
		})

		t.Run("pagination", func(t *testing.T) {
			p := b.NewTenant(t, "approved")
			h := bearer(p.Admin.Key)
			created := []string{p.Admin.ID}
			for i := 0; i < 3; i++ {
				created = append(created, apiCreateKey(t, s, p.Admin.Key, map[string]any{"name": fmt.Sprint("k", i)}).ID)
			}
			slices.Reverse(created) // newest first

			r := do(t, "GET", s.URL+"/v1/api_keys?limit=2", h, nil)
			wantStatus(t, r, 200)
			if r.Str("object") != "list" || r.Get("has_more") != true || len(r.Data()) != 2 {
				t.Fatalf("first page: %s", r)
			}
			var got []string
			for _, k := range r.Data() {
				got = append(got, k["id"].(string))
			}
			r = do(t, "GET", s.URL+"/v1/api_keys?limit=2&starting_after="+got[1], h, nil)
			wantStatus(t, r, 200)
			if r.Get("has_more") != false || len(r.Data()) != 2 {
				t.Fatalf("second page: %s", r)
			}
			for _, k := range r.Data() {
				got = append(got, k["id"].(string))
			}
			if !slices.Equal(got, created) {
				t.Errorf("pages gave %v, want newest first %v", got, created)
			}
			r = do(t, "GET", s.URL+"/v1/api_keys", h, nil)
			wantStatus(t, r, 200)
			if len(r.Data()) != 4 || r.Get("has_more") != false {
				t.Errorf("default page: %s", r)
			}
			r = do(t, "GET", s.URL+"/v1/api_keys?starting_after="+created[3], h, nil)
			wantStatus(t, r, 200)
			if len(r.Data()) != 0 || r.Get("has_more") != false || !strings.Contains(string(r.Body), `"data":[]`) {
				t.Errorf("past the last page: want an empty data array, got %s", r)
			}
		})

		t.Run("strict input", func(t *testing.T) {
			big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
			cases := []struct {
				name, method, path string
				h                  H
				body               any
				status             int
				code, param        string
			}{
				{"limit=0", "GET", "/v1/api_keys?limit=0", admin, nil, 400, "parameter_invalid", "limit"},
				{"limit=101", "GET", "/v1/api_keys?limit=101", admin, nil, 400, "parameter_invalid", "limit"},
				{"limit=abc", "GET", "/v1/api_keys?limit=abc", admin, nil, 400, "parameter_invalid", "limit"},
				{"unknown query parameter", "GET", "/v1/api_keys?colour=red", admin, nil, 400, "parameter_unknown", "colour"},
				{"unknown body field", "POST", "/v1/api_keys", admin, map[string]any{"name": "x", "colour": "red"}, 400, "parameter_unknown", "colour"},
				{"wrong field type", "POST", "/v1/api_keys", admin, map[string]any{"name": 5}, 400, "parameter_invalid", "name"},
				{"bad type", "POST", "/v1/api_keys", admin, map[string]any{"type": "magic"}, 400, "parameter_invalid", "type"},
				{"not JSON", "POST", "/v1/api_keys", admin.with("Content-Type", "application/json"), "{not json", 400, "body_invalid_json", ""},
				{"JSON but not an object", "POST", "/v1/api_keys", admin.with("Content-Type", "application/json"), `["a"]`, 400, "body_invalid_json", ""},
				{"wrong content type", "POST", "/v1/api_keys", admin.with("Content-Type", "text/plain"), `{"name":"x"}`, 415, "unsupported_media_type", ""},
				{"unknown body field on an action", "POST", "/v1/api_keys/" + tn.Admin.ID + "/suspend", admin, map[string]any{"why": "x"}, 400, "parameter_unknown", "why"},
				{"unknown route", "GET", "/v1/nothing_here", admin, nil, 404, "route_not_found", ""},
				{"unknown route without a key", "GET", "/nope", nil, nil, 404, "route_not_found", ""},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := do(t, c.method, s.URL+c.path, c.h, c.body)
					e := wantError(t, r, c.status, c.code)
					if c.param != "" {
						wantParam(t, r, e, c.param)
					}
				})
			}
			t.Run("body too large", func(t *testing.T) {
				r := doOversized(t, s, "POST", "/v1/api_keys", admin.with("Content-Type", "application/json"), big)
				wantError(t, r, 413, "body_too_large")
			})
			// Nothing refused above was created.
			l := do(t, "GET", keysURL+"?limit=100", admin, nil)
			wantStatus(t, l, 200)
			for _, k := range l.Data() {
				if k["name"] == "x" {
					t.Errorf("a refused request created a key: %v", k)
				}
			}
		})

		t.Run("lifecycle answers", func(t *testing.T) {
			k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"name": "lifecycle"})
			for _, step := range []struct {
				method, path, status string
			}{
				{"POST", "/suspend", "suspended"},
				{"POST", "/reactivate", "active"},
				{"DELETE", "", "revoked"},
			} {
				r := do(t, step.method, keysURL+"/"+k.ID+step.path, admin, nil)
				wantStatus(t, r, 200)
				if r.Str("object") != "api_key" || r.Str("id") != k.ID || r.Str("status") != step.status || r.Str("name") != "lifecycle" {
					t.Errorf("%s %s: want the key object with status %s, got %s", step.method, step.path, step.status, r)
				}
				if _, ok := r.JSON["key"]; ok {
					t.Errorf("%s %s shows the secret: %s", step.method, step.path, r)
				}
			}
			r := do(t, "GET", keysURL+"?status=revoked&limit=100", admin, nil)
			wantStatus(t, r, 200)
			found := false
			for _, x := range r.Data() {
				if x["status"] != "revoked" {
					t.Errorf("status=revoked lists %v", x)
				}
				found = found || x["id"] == k.ID
			}
			if !found {
				t.Errorf("status=revoked does not list %s: %s", k.ID, r)
			}
			r = do(t, "GET", keysURL+"/key_doesnotexist", admin, nil)
			wantError(t, r, 404, "resource_missing")
		})

		t.Run("public endpoints", func(t *testing.T) {
			for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
				r := do(t, "GET", s.URL+path, nil, nil)
				wantStatus(t, r, 200)
			}
			wantStatus(t, partnerAs(t, s, admin), 200)
			r := scrape(t, s)
			wantStatus(t, r, 200)
			for _, want := range []string{"nexus_http_requests_total", `route="/v1/partner"`} {
				if !strings.Contains(string(r.Body), want) {
					t.Errorf("/metrics lacks %s:\n%s", want, tail(string(r.Body), 2000))
				}
			}
		})
	})
}

// /metrics keeps answering, with intact labels, after requests of several
// methods (regression: labels once aliased Fiber's reused request buffers,
// so series collided and /metrics answered 500).
func TestMetricsAfterMixedTraffic(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.NewServer(t)
		tn := b.NewTenant(t, "approved")
		for i := 0; i < 5; i++ {
			apiCreateKey(t, s, tn.Admin.Key, map[string]any{})
			partnerAs(t, s, bearer(tn.Admin.Key))
			partnerAs(t, s, nil)
			do(t, "DELETE", s.URL+"/v1/api_keys/key_nothing", bearer(tn.Admin.Key), nil)
		}
		r := scrape(t, s)
		if r.Status != 200 {
			t.Fatalf("GET /metrics after mixed traffic: %s", tail(r.String(), 600))
		}
		for _, line := range strings.Split(string(r.Body), "\n") {
			if strings.HasPrefix(line, "nexus_http_requests_total{") &&
				!regexp.MustCompile(`method="(GET|POST|DELETE)"`).MatchString(line) {
				t.Errorf("corrupted method label: %s", line)
			}
		}
	})
}

// Rotation (CONTRACT §2): the successor is shown once, both work during the
// grace period, then the old one expires.
func TestRotation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		admin := bearer(tn.Admin.Key)
		keysURL := s.URL + "/v1/api_keys"

		t.Run("grace period", func(t *testing.T) {
			me := sourceIP(t).String()
			old := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"name": "rotating", "scopes": []string{"read:balances"}, "allowed_ips": []string{me}})
			wantStatus(t, partnerAs(t, s, bearer(old.Key)), 200)

			r := do(t, "POST", keysURL+"/"+old.ID+"/rotate", admin, map[string]any{"grace_period_seconds": 2})
			rotatedAt := time.Now()
			wantStatus(t, r, 201)
			var nk Key
			r.Decode(t, &nk)
			if nk.Object != "api_key" || nk.ID == old.ID || !strings.HasPrefix(nk.Key, "nx_test_sk_") || nk.Key == old.Key || nk.Status != "active" {
				t.Fatalf("rotate answer: %s", r)
			}
			if nk.Name != "rotating" || !sameSet(nk.Scopes, []string{"read:balances"}) || !sameSet(nk.AllowedIPs, []string{me}) || nk.Type != "secret" {
				t.Errorf("the successor must keep name, type, scopes and allowlists: %s", r)
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("rotate answer Cache-Control %q, want no-store", cc)
			}

			g := do(t, "GET", keysURL+"/"+old.ID, admin, nil)
			wantStatus(t, g, 200)
			if g.Str("replaced_by") != nk.ID || g.Str("status") != "active" {
				t.Errorf("old key after rotation: %s", g)
			}
			exp, err := time.Parse(time.RFC3339Nano, g.Str("expires_at"))
			if err != nil || exp.Sub(rotatedAt).Abs() > 2*time.Second+time.Second {
				t.Errorf("old key expires_at %q, want about 2 s after the rotation", g.Str("expires_at"))
			}

			wantStatus(t, partnerAs(t, s, bearer(old.Key)), 200)
			r = partnerAs(t, s, bearer(nk.Key))
			wantStatus(t, r, 200)
			if r.Str("credential.id") != nk.ID {
				t.Errorf("the new key authenticates as %q, want %s", r.Str("credential.id"), nk.ID)
			}
			wantError(t, do(t, "POST", keysURL+"/"+old.ID+"/rotate", admin, nil), 409, "invalid_state")

			wantError(t, awaitRefusal(t, "the old key at the end of its grace", exp, func() *Response { return partnerAs(t, s, bearer(old.Key)) }), 401, "api_key_expired")
			wantStatus(t, partnerAs(t, s, bearer(nk.Key)), 200)
			g = do(t, "GET", keysURL+"/"+old.ID, admin, nil)
			if g.Str("status") != "expired" {
				t.Errorf("old key after its grace: %s", g)
			}
		})

		t.Run("no grace", func(t *testing.T) {
			old := apiCreateKey(t, s, tn.Admin.Key, map[string]any{})
			wantStatus(t, partnerAs(t, s, bearer(old.Key)), 200)
			r := do(t, "POST", keysURL+"/"+old.ID+"/rotate", admin, map[string]any{"grace_period_seconds": 0})
			wantStatus(t, r, 201)
			wantError(t, partnerAs(t, s, bearer(old.Key)), 401, "api_key_expired")
			wantStatus(t, partnerAs(t, s, bearer(r.Str("key"))), 200)
		})

		t.Run("default grace is 24 h", func(t *testing.T) {
			old := apiCreateKey(t, s, tn.Admin.Key, map[string]any{})
			r := do(t, "POST", keysURL+"/"+old.ID+"/rotate", admin, nil)
			wantStatus(t, r, 201)
			g := do(t, "GET", keysURL+"/"+old.ID, admin, nil)
			exp, err := time.Parse(time.RFC3339Nano, g.Str("expires_at"))
			if err != nil || exp.Sub(time.Now().Add(24*time.Hour)).Abs() > time.Minute {
				t.Errorf("default grace: old expires_at %q, want about 24 h from now", g.Str("expires_at"))
			}
			wantStatus(t, partnerAs(t, s, bearer(old.Key)), 200)
		})

		t.Run("invalid grace", func(t *testing.T) {
			k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{})
			for _, body := range []map[string]any{
				{"grace_period_seconds": 700000},
				{"grace_period_seconds": -1},
				{"grace_period_seconds": "soon"},
			} {
				r := do(t, "POST", keysURL+"/"+k.ID+"/rotate", admin, body)
				wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), "grace_period_seconds")
			}
			g := do(t, "GET", keysURL+"/"+k.ID, admin, nil)
			if g.Get("replaced_by") != nil || g.Get("expires_at") != nil {
				t.Errorf("a refused rotation changed the key: %s", g)
			}
		})

		t.Run("revoked key", func(t *testing.T) {
			k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{})
			wantStatus(t, do(t, "POST", keysURL+"/"+k.ID+"/revoke", admin, nil), 200)
			wantError(t, do(t, "POST", keysURL+"/"+k.ID+"/rotate", admin, map[string]any{"grace_period_seconds": 2}), 409, "invalid_state")
		})
	})
}

// Tenancy (CONTRACT §1): another partner's objects, or another
// environment's, do not exist for a credential.
func TestTenancy(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		a := b.NewTenant(t, "approved")
		bb := b.NewTenant(t, "approved")
		target := b.CreateKey(t, a.Partner.ID, "test", "secret", "read")
		asB := bearer(bb.Admin.Key)
		keysURL := s.URL + "/v1/api_keys"

		// What a missing id looks like, to compare: a foreign id must be
		// indistinguishable from it.
		missing := wantError(t, do(t, "GET", keysURL+"/key_00000000000000000000000000", asB, nil), 404, "resource_missing")

		for _, req := range []struct{ method, path string }{
			{"GET", ""},
			{"DELETE", ""},
			{"POST", "/suspend"},
			{"POST", "/reactivate"},
			{"POST", "/revoke"},
			{"POST", "/rotate"},
		} {
			t.Run(req.method+req.path, func(t *testing.T) {
				r := do(t, req.method, keysURL+"/"+target.ID+req.path, asB, nil)
				e := wantError(t, r, 404, "resource_missing")
				gotMsg := strings.ReplaceAll(fmt.Sprint(e["message"]), target.ID, "ID")
				wantMsg := strings.ReplaceAll(fmt.Sprint(missing["message"]), "key_00000000000000000000000000", "ID")
				if gotMsg != wantMsg {
					t.Errorf("a foreign key's 404 differs from a missing key's: %q vs %q", gotMsg, wantMsg)
				}
			})
		}
		r := do(t, "GET", keysURL+"/"+target.ID, bearer(a.Admin.Key), nil)
		wantStatus(t, r, 200)
		if r.Str("status") != "active" || r.Get("replaced_by") != nil || r.Get("expires_at") != nil {
			t.Errorf("partner B's attempts changed A's key: %s", r)
		}
		wantStatus(t, partnerAs(t, s, bearer(target.Key)), 200)

		r = do(t, "GET", keysURL+"?limit=100", asB, nil)
		wantStatus(t, r, 200)
		for _, k := range r.Data() {
			if k["id"] == target.ID || k["id"] == a.Admin.ID {
				t.Errorf("partner B lists partner A's key %v", k["id"])
			}
		}
		if len(r.Data()) != 1 || r.Str("data.0.id") != bb.Admin.ID {
			t.Errorf("partner B should list exactly its own key %s: %s", bb.Admin.ID, r)
		}

		t.Run("environments", func(t *testing.T) {
			live := b.CreateKey(t, a.Partner.ID, "live", "secret")
			liveOther := b.CreateKeyWith(t, a.Partner.ID, "live", "publishable", "--allowed-origins", "https://shop.example")
			asLive := bearer(live.Key)
			wantError(t, do(t, "GET", keysURL+"/"+target.ID, asLive, nil), 404, "resource_missing")
			wantError(t, do(t, "POST", keysURL+"/"+target.ID+"/revoke", asLive, nil), 404, "resource_missing")
			r := do(t, "GET", keysURL+"?limit=100", asLive, nil)
			wantStatus(t, r, 200)
			var ids []string
			for _, k := range r.Data() {
				ids = append(ids, k["id"].(string))
				if k["environment"] != "live" {
					t.Errorf("a live key lists a %v key: %v", k["environment"], k)
				}
			}
			if !sameSet(ids, []string{live.ID, liveOther.ID}) {
				t.Errorf("live list %v, want exactly %v", ids, []string{live.ID, liveOther.ID})
			}
			// A key created by a live credential is a live key.
			k := apiCreateKey(t, s, live.Key, map[string]any{})
			if k.Environment != "live" || !strings.HasPrefix(k.Key, "nx_live_sk_") {
				t.Errorf("key created with a live credential: %+v", k)
			}
			// A test-environment cursor is not the live list's.
			r = do(t, "GET", keysURL+"?starting_after="+target.ID, asLive, nil)
			wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), "starting_after")
		})

		t.Run("foreign cursor", func(t *testing.T) {
			r := do(t, "GET", keysURL+"?starting_after="+url.QueryEscape(target.ID), asB, nil)
			wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), "starting_after")
			r = do(t, "GET", keysURL+"?starting_after=key_00000000000000000000000000", asB, nil)
			wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), "starting_after")
		})
	})
}

// No issued key is stored in plaintext (CONTRACT §2), nor logged: after
// creating, using, rotating and revoking keys, every column of every table
// and the server log are searched for each secret.
func TestNoPlaintextKeysStored(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		keys := []Key{
			tn.Admin,
			b.CreateKey(t, tn.Partner.ID, "live", "secret", "read:balances"),
			b.CreateKey(t, tn.Partner.ID, "test", "publishable"),
			apiCreateKey(t, s, tn.Admin.Key, map[string]any{"name": "api", "allowed_ips": []string{sourceIP(t).String()}}),
			apiCreateKey(t, s, tn.Admin.Key, map[string]any{"type": "publishable", "allowed_origins": []string{"https://shop.example"}}),
		}
		for i := 0; i < 2; i++ { // rotate, then rotate the successor
			prev := keys[len(keys)-1]
			if prev.Type == "publishable" {
				prev = keys[3]
			}
			r := do(t, "POST", s.URL+"/v1/api_keys/"+prev.ID+"/rotate", bearer(tn.Admin.Key), map[string]any{"grace_period_seconds": 60})
			wantStatus(t, r, 201)
			var nk Key
			r.Decode(t, &nk)
			keys = append(keys, nk)
		}
		// Use every key (last_used_at, access records), fail some on purpose,
		// and revoke one, so that every write path has run.
		var used []string
		for _, k := range keys {
			// From the page the publishable key is bound to (other keys ignore Origin).
			if r := partnerAs(t, s, bearer(k.Key).with("Origin", "https://shop.example")); r.Status == 200 {
				used = append(used, r.Header.Get("X-Request-Id"))
			}
			partnerAs(t, s, H{"X-API-Key": lastCharChanged(k.Key)})
		}
		r := do(t, "POST", s.URL+"/v1/api_keys/"+keys[1].ID+"/revoke", H{"Authorization": "Bearer " + b.CreateKey(t, tn.Partner.ID, "live", "secret").Key}, nil)
		wantStatus(t, r, 200)
		// Access records are written off the request path: the scan waits
		// for them.
		awaitAccessLogged(t, b, tn.Partner.ID, append(used, r.Header.Get("X-Request-Id"))...)

		cells := dumpDatabase(t, b.Name, OpenDB(t, b.URL))
		for _, k := range keys {
			random := k.Key[11:41]
			forbidden := map[string]string{
				"the key":              k.Key,
				"its random part":      random,
				"the key in hex":       hex.EncodeToString([]byte(k.Key)),
				"the key in base64":    base64.StdEncoding.EncodeToString([]byte(k.Key)),
				"the key in base64url": base64.RawURLEncoding.EncodeToString([]byte(k.Key)),
			}
			seen := false
			for _, c := range cells {
				seen = seen || strings.Contains(c.text, k.ID)
				for what, needle := range forbidden {
					if strings.Contains(c.text, needle) {
						t.Errorf("%s.%s holds %s of %s (%s…)", c.table, c.column, what, k.ID, k.Key[:15])
					}
				}
			}
			if !seen {
				t.Errorf("key %s appears nowhere in the database: the scan did not see the server's data", k.ID)
			}
			if logs := s.Logs(); strings.Contains(logs, random) {
				t.Errorf("the server log holds the secret of %s", k.ID)
			}
		}
	})
}

type cell struct{ table, column, text string }

// dumpDatabase reads every column of every table as text.
func dumpDatabase(t *testing.T, dialect string, db *sql.DB) []cell {
	t.Helper()
	var tables []string
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if dialect == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("listing tables: %v", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if !slices.Contains(tables, "api_keys") {
		t.Fatalf("no api_keys table among %v", tables)
	}
	var out []cell
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`)
		if err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("reading %s: %v", table, err)
			}
			for i, v := range vals {
				var s string
				switch x := v.(type) {
				case nil:
					continue
				case []byte:
					s = string(x)
				case string:
					s = x
				default:
					s = fmt.Sprint(x)
				}
				out = append(out, cell{table, cols[i], s})
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		rows.Close()
	}
	return out
}

// A connection that never sends a request is closed after the server's read
// timeout, silently or with a 408 (which HTTP clients recognise as "closing
// an idle connection"), never with another status: a client about to reuse
// the connection would take that answer for its own request's (regression:
// it once got a 400 parameter_invalid). It waits out the 15 s read timeout.
func TestIdleConnectionClose(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for the server's 15 s read timeout")
	}
	s := backends[0].Server(t)
	conn := dialFrom(t, s.Addr)
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	data, _ := io.ReadAll(conn)
	if len(data) > 0 && !strings.HasPrefix(string(data), "HTTP/1.1 408 ") {
		t.Errorf("an idle connection received %q", tail(string(data), 300))
	}
}

// lastCharChanged is s with its last character replaced by another one: a
// key whose last character is already the replacement would otherwise be
// its own "wrong" key once in 62 runs.
func lastCharChanged(s string) string {
	if strings.HasSuffix(s, "x") {
		return s[:len(s)-1] + "y"
	}
	return s[:len(s)-1] + "x"
}
