package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/pkg/credential"
)

// A key authenticates in each of the four equivalent headers (CONTRACT §2),
// and GET /v1/partner tells the partner, environment and credential.
func TestAuthHeaderForms(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		p := b.CreatePartner(t, "approved")
		testKey := b.CreateKey(t, p.ID, "test", "secret")
		liveKey := b.CreateKey(t, p.ID, "live", "secret", "read:balances", "read:funding")

		forms := []struct {
			name   string
			header func(key string) H
		}{
			{"Authorization Bearer", func(k string) H { return H{"Authorization": "Bearer " + k} }},
			{"Authorization ApiKey", func(k string) H { return H{"Authorization": "ApiKey " + k} }},
			{"X-API-Key", func(k string) H { return H{"X-API-Key": k} }},
			{"X-Partner-API-Key", func(k string) H { return H{"X-Partner-API-Key": k} }},
		}
		keys := []struct {
			key    Key
			scopes []string
		}{
			{testKey, []string{"admin:all"}},
			{liveKey, []string{"read:balances", "read:funding"}},
		}
		for _, f := range forms {
			for _, k := range keys {
				t.Run(f.name+"/"+k.key.Environment, func(t *testing.T) {
					r := partnerAs(t, s, f.header(k.key.Key))
					wantStatus(t, r, 200)
					checks := map[string]string{
						"object": "partner", "id": p.ID, "status": "approved", "environment": k.key.Environment,
						"credential.id": k.key.ID, "credential.type": "api_key",
					}
					for path, want := range checks {
						if got := r.Str(path); got != want {
							t.Errorf("%s = %q, want %q in %s", path, got, want, r)
						}
					}
					if got := r.Strs("credential.scopes"); !sameSet(got, k.scopes) {
						t.Errorf("credential.scopes = %v, want %v: %s", got, k.scopes, r)
					}
				})
			}
		}

		t.Run("two different keys are ambiguous", func(t *testing.T) {
			other := b.CreateKey(t, p.ID, "test", "secret")
			for _, h := range []H{
				{"Authorization": "Bearer " + testKey.Key, "X-API-Key": other.Key},
				{"X-API-Key": testKey.Key, "X-Partner-API-Key": other.Key},
				{"Authorization": "ApiKey " + testKey.Key, "X-Partner-API-Key": liveKey.Key},
			} {
				wantError(t, partnerAs(t, s, h), 400, "ambiguous_credentials")
			}
		})
		t.Run("the same key twice is fine", func(t *testing.T) {
			r := partnerAs(t, s, H{"Authorization": "Bearer " + testKey.Key, "X-API-Key": testKey.Key, "X-Partner-API-Key": testKey.Key})
			wantStatus(t, r, 200)
			if r.Str("credential.id") != testKey.ID {
				t.Errorf("credential.id: %s", r)
			}
		})
		// A header may come on several lines: each is a credential.
		t.Run("two different keys on repeated lines are ambiguous", func(t *testing.T) {
			other := b.CreateKey(t, p.ID, "test", "secret")
			for _, h := range []H{
				{"Authorization": lines("Bearer "+testKey.Key, "Bearer "+other.Key)},
				{"Authorization": lines("ApiKey "+testKey.Key, "Bearer "+liveKey.Key)},
				{"X-API-Key": lines(testKey.Key, other.Key)},
				{"X-Partner-API-Key": lines(testKey.Key, other.Key)},
				{"X-API-Key": lines(testKey.Key, testKey.Key, other.Key)},
			} {
				wantError(t, partnerAs(t, s, h), 400, "ambiguous_credentials")
			}
			r := partnerAs(t, s, H{"Authorization": lines("Bearer "+testKey.Key, "Bearer "+testKey.Key), "X-API-Key": lines(testKey.Key, testKey.Key)})
			wantStatus(t, r, 200)
			if r.Str("credential.id") != testKey.ID {
				t.Errorf("credential.id: %s", r)
			}
		})
	})
}

// Every way a credential can fail has its own answer (CONTRACT §2, §4).
func TestAuthFailures(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		valid := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read")

		last := valid.Key[len(valid.Key)-1]
		swap := byte('A')
		if last == 'A' {
			swap = 'B'
		}
		badChecksum := valid.Key[:len(valid.Key)-1] + string(swap)
		unknown, err := credential.New("test", credential.KindSecretKey)
		if err != nil {
			t.Fatal(err)
		}

		cases := []struct {
			name   string
			header H
			status int
			code   string
		}{
			{"missing", H{}, 401, "missing_credentials"},
			{"empty bearer", H{"Authorization": "Bearer "}, 401, "malformed_credentials"},
			{"unsupported scheme", H{"Authorization": "Basic " + valid.Key}, 401, "malformed_credentials"},
			{"hello", bearer("hello"), 401, "malformed_credentials"},
			{"hello in X-API-Key", H{"X-API-Key": "hello"}, 401, "malformed_credentials"},
			{"too short", bearer("nx_test_sk_short"), 401, "malformed_credentials"},
			{"wrong checksum", bearer(badChecksum), 401, "malformed_credentials"},
			{"unknown key", bearer(unknown), 401, "invalid_api_key"},
			{"unknown key in X-Partner-API-Key", H{"X-Partner-API-Key": unknown}, 401, "invalid_api_key"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantError(t, partnerAs(t, s, c.header), c.status, c.code)
			})
		}

		t.Run("lifecycle", func(t *testing.T) {
			k := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read:balances")
			admin := bearer(tn.Admin.Key)
			wantStatus(t, partnerAs(t, s, bearer(k.Key)), 200)

			r := do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/suspend", admin, nil)
			wantStatus(t, r, 200)
			if r.Str("status") != "suspended" || r.Str("id") != k.ID {
				t.Fatalf("suspend answer: %s", r)
			}
			wantError(t, partnerAs(t, s, bearer(k.Key)), 401, "api_key_suspended")

			r = do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/reactivate", admin, nil)
			wantStatus(t, r, 200)
			if r.Str("status") != "active" {
				t.Fatalf("reactivate answer: %s", r)
			}
			wantStatus(t, partnerAs(t, s, bearer(k.Key)), 200)

			r = do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/revoke", admin, nil)
			wantStatus(t, r, 200)
			if r.Str("status") != "revoked" {
				t.Fatalf("revoke answer: %s", r)
			}
			wantError(t, partnerAs(t, s, bearer(k.Key)), 401, "api_key_revoked")

			for _, action := range []string{"reactivate", "suspend", "revoke"} {
				wantError(t, do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/"+action, admin, nil), 409, "invalid_state")
			}
			wantError(t, do(t, "DELETE", s.URL+"/v1/api_keys/"+k.ID, admin, nil), 409, "invalid_state")
			wantError(t, partnerAs(t, s, bearer(k.Key)), 401, "api_key_revoked")
		})

		t.Run("suspended key can be revoked", func(t *testing.T) {
			k := b.CreateKey(t, tn.Partner.ID, "test", "secret")
			admin := bearer(tn.Admin.Key)
			wantStatus(t, do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/suspend", admin, nil), 200)
			wantStatus(t, do(t, "DELETE", s.URL+"/v1/api_keys/"+k.ID, admin, nil), 200)
			wantError(t, partnerAs(t, s, bearer(k.Key)), 401, "api_key_revoked")
		})

		t.Run("expired", func(t *testing.T) {
			expires := time.Now().Add(2 * time.Second).UTC()
			k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"expires_at": expires.Format(time.RFC3339Nano)})
			if k.ExpiresAt == nil {
				t.Fatalf("expires_at not set on %+v", k)
			}
			got, err := time.Parse(time.RFC3339Nano, *k.ExpiresAt)
			if err != nil || got.Sub(expires).Abs() > time.Millisecond {
				t.Fatalf("expires_at = %v, want %v", *k.ExpiresAt, expires)
			}
			wantStatus(t, partnerAs(t, s, bearer(k.Key)), 200)
			// Refused once expires_at (as the server stored it) is past.
			r0 := awaitRefusal(t, "the key at its expires_at", got, func() *Response { return partnerAs(t, s, bearer(k.Key)) })
			wantError(t, r0, 401, "api_key_expired")
			r := do(t, "GET", s.URL+"/v1/api_keys/"+k.ID, bearer(tn.Admin.Key), nil)
			wantStatus(t, r, 200)
			if r.Str("status") != "expired" {
				t.Errorf("an expired key's status: %s", r)
			}
			wantError(t, do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/suspend", bearer(tn.Admin.Key), nil), 409, "invalid_state")
		})

		t.Run("expires_at in the past", func(t *testing.T) {
			r := do(t, "POST", s.URL+"/v1/api_keys", bearer(tn.Admin.Key), map[string]any{"expires_at": time.Now().Add(-time.Minute).Format(time.RFC3339)})
			wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), "expires_at")
		})
	})
}

// Scopes (CONTRACT §3): restricted and publishable keys.
func TestScopes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")

		t.Run("restricted key lacks admin:all", func(t *testing.T) {
			k := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read:balances")
			for _, req := range []struct{ method, path string }{
				{"GET", "/v1/api_keys"},
				{"POST", "/v1/api_keys"},
				{"GET", "/v1/api_keys/" + tn.Admin.ID},
				{"POST", "/v1/api_keys/" + tn.Admin.ID + "/revoke"},
			} {
				r := do(t, req.method, s.URL+req.path, bearer(k.Key), nil)
				e := wantError(t, r, 403, "insufficient_scope")
				if e["message"] != "credential missing required scope: admin:all" {
					t.Errorf("%s: message %q", r, e["message"])
				}
				wa := r.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `scope="admin:all"`) {
					t.Errorf("%s: WWW-Authenticate %q", r, wa)
				}
			}
			// The admin key was untouched by the refused revoke.
			wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key)), 200)
		})

		t.Run("alias read reaches GET /v1/partner", func(t *testing.T) {
			k := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read")
			r := partnerAs(t, s, bearer(k.Key))
			wantStatus(t, r, 200)
			if got := r.Strs("credential.scopes"); !sameSet(got, readScopes) {
				t.Errorf("alias read: scopes %v, want %v", got, readScopes)
			}
			wantError(t, do(t, "GET", s.URL+"/v1/api_keys", bearer(k.Key), nil), 403, "insufficient_scope")
		})

		t.Run("aliases are answered canonically", func(t *testing.T) {
			for alias, want := range map[string][]string{
				"admin": {"admin:all"},
				"write": {"read:balances", "read:funding", "read:addresses", "read:requests", "read:usage", "write:addresses", "write:requests"},
			} {
				k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"scopes": []string{alias}})
				if !sameSet(k.Scopes, want) {
					t.Errorf("scopes [%s] → %v, want %v", alias, k.Scopes, want)
				}
			}
		})

		t.Run("publishable", func(t *testing.T) {
			// By default a publishable key reads balances and nothing else.
			pk := b.CreateKey(t, tn.Partner.ID, "test", "publishable")
			if !sameSet(pk.Scopes, []string{"read:balances"}) {
				t.Errorf("default publishable scopes %v, want [read:balances]", pk.Scopes)
			}
			wantStatus(t, partnerAs(t, s, bearer(pk.Key)), 200)
			wantStatus(t, do(t, "GET", s.URL+"/v1/balances", bearer(pk.Key), nil), 200)
			wantError(t, do(t, "GET", s.URL+"/v1/funding", bearer(pk.Key), nil), 403, "insufficient_scope")
			r := do(t, "POST", s.URL+"/v1/api_keys", bearer(pk.Key), map[string]any{})
			wantError(t, r, 403, "insufficient_scope")

			apiPK := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"type": "publishable"})
			if !strings.HasPrefix(apiPK.Key, "nx_test_pk_") || !sameSet(apiPK.Scopes, []string{"read:balances"}) || apiPK.Type != "publishable" {
				t.Errorf("publishable key created by the API: %+v", apiPK)
			}
			// Other read scopes are there for the asking.
			if k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"type": "publishable", "scopes": []string{"read"}}); !sameSet(k.Scopes, readScopes) {
				t.Errorf("publishable key with scopes [read]: %v, want %v", k.Scopes, readScopes)
			}

			count := func() int {
				r := do(t, "GET", s.URL+"/v1/api_keys?limit=100", bearer(tn.Admin.Key), nil)
				wantStatus(t, r, 200)
				return len(r.Data())
			}
			before := count()
			for _, scopes := range [][]string{{"write:requests"}, {"admin"}, {"admin:all"}, {"write"}, {"read:balances", "write:addresses"}, {"internal:funding"}} {
				r := do(t, "POST", s.URL+"/v1/api_keys", bearer(tn.Admin.Key), map[string]any{"type": "publishable", "scopes": scopes})
				wantParam(t, r, wantError(t, r, 400, "invalid_scopes"), "scopes")
			}
			r = do(t, "POST", s.URL+"/v1/api_keys", bearer(tn.Admin.Key), map[string]any{"scopes": []string{"read:everything"}})
			wantError(t, r, 400, "invalid_scopes")
			if after := count(); after != before {
				t.Errorf("refused creations changed the key list: %d keys before, %d after", before, after)
			}
		})
	})
}

// Partner status decides the environments (CONTRACT §1); see also
// TestPartnerStatusReachesRunningServer.
func TestPartnerStatus(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		for _, c := range []struct {
			status     string
			test, live int
		}{
			{"pending", 200, 403},
			{"approved", 200, 200},
			{"rejected", 403, 403},
			{"inactive", 403, 403},
		} {
			t.Run(c.status, func(t *testing.T) {
				p := b.CreatePartner(t, c.status)
				for env, want := range map[string]int{"test": c.test, "live": c.live} {
					k := b.CreateKey(t, p.ID, env, "secret")
					r := partnerAs(t, s, bearer(k.Key))
					if want == 200 {
						wantStatus(t, r, 200)
						if r.Str("status") != c.status || r.Str("environment") != env {
							t.Errorf("%s", r)
						}
					} else {
						wantError(t, r, 403, "partner_not_approved")
					}
				}
			})
		}

		t.Run("environment not served", func(t *testing.T) {
			sandbox := b.NewServer(t, "NEXUS_ENVIRONMENTS=test")
			p := b.CreatePartner(t, "approved")
			live := b.CreateKey(t, p.ID, "live", "secret")
			test := b.CreateKey(t, p.ID, "test", "secret")
			wantError(t, partnerAs(t, sandbox, bearer(live.Key)), 403, "environment_not_served")
			wantStatus(t, partnerAs(t, sandbox, bearer(test.Key)), 200)
			wantStatus(t, partnerAs(t, s, bearer(live.Key)), 200)
		})
	})
}

// A partner status changed by the CLI reaches a running server within a
// second (serial: it measures that second; the delays are logged).
func TestPartnerStatusReachesRunningServer(t *testing.T) {
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		p := b.CreatePartner(t, "pending")
		live := b.CreateKey(t, p.ID, "live", "secret")
		test := b.CreateKey(t, p.ID, "test", "secret")
		wantError(t, partnerAs(t, s, bearer(live.Key)), 403, "partner_not_approved")
		wantStatus(t, partnerAs(t, s, bearer(test.Key)), 200)

		steps := []struct {
			status     string
			test, live int
		}{
			{"approved", 200, 200},
			{"inactive", 403, 403},
			{"approved", 200, 200},
			{"pending", 200, 403},
			{"rejected", 403, 403},
		}
		for _, st := range steps {
			b.SetPartnerStatus(t, p.ID, st.status)
			var lt, tt int
			took, ok := poll(3*time.Second, 50*time.Millisecond, func() bool {
				lt = partnerAs(t, s, bearer(live.Key)).Status
				tt = partnerAs(t, s, bearer(test.Key)).Status
				return lt == st.live && tt == st.test
			})
			if !ok {
				t.Fatalf("after set-status %s: live %d test %d, want live %d test %d (waited %s)", st.status, lt, tt, st.live, st.test, took)
			}
			t.Logf("%s: set-status %s reached the server after %s", b.Name, st.status, took.Round(time.Millisecond))
			if took > time.Second {
				t.Errorf("set-status %s took %s to reach the server, want < 1s", st.status, took)
			}
		}
	})
}

// allowed_ips and allowed_origins (CONTRACT §2).
func TestAllowlists(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := b.Server(t)
		tn := b.NewTenant(t, "approved")
		create := func(t *testing.T, body map[string]any) Key {
			t.Helper()
			return apiCreateKey(t, s, tn.Admin.Key, body)
		}

		t.Run("ips", func(t *testing.T) {
			other := create(t, map[string]any{"allowed_ips": []string{"10.9.9.9"}})
			if !sameSet(other.AllowedIPs, []string{"10.9.9.9"}) {
				t.Errorf("allowed_ips echoed as %v", other.AllowedIPs)
			}
			wantError(t, partnerAs(t, s, bearer(other.Key)), 403, "ip_not_allowed")

			// This test's own client address (see sourceIP).
			me := sourceIP(t).String()
			for _, list := range [][]string{{me}, {"10.0.0.0/8", "127.0.0.0/8"}, {"::1", me + "/32"}} {
				k := create(t, map[string]any{"allowed_ips": list})
				wantStatus(t, partnerAs(t, s, bearer(k.Key)), 200)
			}
		})

		t.Run("x-forwarded-for needs a trusted proxy", func(t *testing.T) {
			k := create(t, map[string]any{"allowed_ips": []string{"203.0.113.7"}})
			xff := bearer(k.Key).with("X-Forwarded-For", "203.0.113.7")
			wantError(t, partnerAs(t, s, xff), 403, "ip_not_allowed")

			proxied := b.NewServer(t, "NEXUS_TRUSTED_PROXIES="+sourceIP(t).String())
			wantStatus(t, partnerAs(t, proxied, xff), 200)
			// The client's own claim on the left is not believed: only the
			// address the trusted proxy appended counts.
			wantError(t, partnerAs(t, proxied, bearer(k.Key).with("X-Forwarded-For", "203.0.113.7, 198.51.100.1")), 403, "ip_not_allowed")
			wantError(t, partnerAs(t, proxied, bearer(k.Key)), 403, "ip_not_allowed")
			// A proxy may add a line of its own (HAProxy does): the
			// client's line above it counts no more than a claim on the
			// left of one line.
			wantError(t, partnerAs(t, proxied, bearer(k.Key).with("X-Forwarded-For", lines("203.0.113.7", "198.51.100.1"))), 403, "ip_not_allowed")
			wantStatus(t, partnerAs(t, proxied, bearer(k.Key).with("X-Forwarded-For", lines("198.51.100.1", "203.0.113.7"))), 200)
			wantStatus(t, partnerAs(t, proxied, bearer(k.Key).with("X-Forwarded-For", lines("198.51.100.1, 10.1.1.1", "203.0.113.7"))), 200)
		})

		t.Run("origins", func(t *testing.T) {
			pk := create(t, map[string]any{"type": "publishable", "allowed_origins": []string{"https://shop.example"}})
			if !sameSet(pk.AllowedOrigins, []string{"https://shop.example"}) {
				t.Errorf("allowed_origins echoed as %v", pk.AllowedOrigins)
			}
			wantStatus(t, partnerAs(t, s, bearer(pk.Key).with("Origin", "https://shop.example")), 200)
			wantError(t, partnerAs(t, s, bearer(pk.Key).with("Origin", "https://evil.example")), 403, "origin_not_allowed")
			wantError(t, partnerAs(t, s, bearer(pk.Key).with("Origin", "http://shop.example")), 403, "origin_not_allowed")
			// Without an Origin header (no browser's call) an origin-bound
			// publishable key is refused too.
			wantError(t, partnerAs(t, s, bearer(pk.Key)), 403, "origin_not_allowed")
		})

		t.Run("invalid entries", func(t *testing.T) {
			for _, c := range []struct {
				body  map[string]any
				param string
			}{
				{map[string]any{"allowed_ips": []string{"999.1.1.1"}}, "allowed_ips[0]"},
				{map[string]any{"allowed_ips": []string{"10.0.0.0/8", "not-an-ip"}}, "allowed_ips[1]"},
				{map[string]any{"allowed_origins": []string{"shop.example"}}, "allowed_origins[0]"},
				{map[string]any{"allowed_origins": []string{"https://shop.example", "https://shop.example/path"}}, "allowed_origins[1]"},
			} {
				r := do(t, "POST", s.URL+"/v1/api_keys", bearer(tn.Admin.Key), c.body)
				wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), c.param)
			}
		})
	})
}
