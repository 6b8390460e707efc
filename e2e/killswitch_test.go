package e2e

// The kill switch (issue 16, section 1): POST /v1/credentials/revoke_all and
// `nexus admin partner lockdown`. Helpers of this file are prefixed ks.

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// ksRevocation is the credential_revocation answer.
type ksRevocation struct {
	Object             string     `json:"object"`
	PartnerID          string     `json:"partner_id"`
	Environment        string     `json:"environment"`
	APIKeys            int        `json:"api_keys"`
	ServiceCredentials int        `json:"service_credentials"`
	OAuthGrants        int        `json:"oauth_grants"`
	OAuthTokens        int        `json:"oauth_tokens"`
	NothingRevoked     bool       `json:"nothing_revoked"`
	RevokedAt          *time.Time `json:"revoked_at"`
}

func ksWant(t testing.TB, what string, got ksRevocation, pid, env string, keys, creds, grants, tokens int) {
	t.Helper()
	nothing := keys+creds+grants+tokens == 0
	if got.Object != "credential_revocation" || got.PartnerID != pid || got.Environment != env ||
		got.APIKeys != keys || got.ServiceCredentials != creds || got.OAuthGrants != grants || got.OAuthTokens != tokens ||
		got.NothingRevoked != nothing || (got.RevokedAt == nil) != nothing {
		t.Fatalf("%s: got %+v, want %s/%s keys %d, credentials %d, grants %d, tokens %d", what, got, pid, env, keys, creds, grants, tokens)
	}
}

// Everything of one environment stops working at once; the other
// environment and other partners keep working; bad input changes nothing;
// a second lockdown finds nothing; the event names the actor.
func TestKillSwitch(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		st := oaSetup(t, b)
		victim := st.user // partner B: its member consents to A's app
		pid := victim.Partner.ID
		other := st.owner // partner A: must not notice anything

		// B's test credentials: the admin key that pulls the switch, a
		// restricted key, a suspended one, a service credential and an OAuth
		// grant with its tokens; and its live ones, which must survive.
		restricted := b.CreateKey(t, pid, "test", "secret", "read:balances")
		suspended := b.CreateKey(t, pid, "test", "secret")
		wantStatus(t, st.api(t, "POST", "/v1/api_keys/"+suspended.ID+"/suspend", victim.Admin.Key, nil), 200)
		hs := stHS256(t, st.s, victim.Admin.Key)
		svcTok := func(c stCred) string {
			return stMint(t, sdk.ServiceTokenParams{CredentialID: c.ID, Secret: c.Secret, Lifetime: 10 * time.Minute})
		}
		redirect := "https://app.example/cb"
		cl := st.createClient(t, "confidential", []string{redirect}, "read:balances")
		tk := st.tokensFor(t, st.signedIn(t, cl, redirect), cl, redirect)
		live := b.CreateKey(t, pid, "live", "secret")
		liveHS := stHS256(t, st.s, live.Key)

		works := func(what, cred string) {
			t.Helper()
			wantStatus(t, st.api(t, "GET", "/v1/partner", cred, nil), 200)
		}
		for what, cred := range map[string]string{"admin": victim.Admin.Key, "restricted": restricted.Key, "service token": svcTok(hs),
			"access token": tk.Access, "live key": live.Key, "live service token": svcTok(liveHS), "other partner": other.Admin.Key} {
			works(what, cred)
		}
		wantError(t, st.api(t, "GET", "/v1/partner", suspended.Key, nil), 401, "api_key_suspended")

		// Bad input: 4xx, and nothing changes.
		for _, c := range []struct {
			key         string
			body        any
			status      int
			code, param string
		}{
			{victim.Admin.Key, map[string]any{"environment": "test", "confirm": other.Partner.ID}, 400, "parameter_invalid", "confirm"},
			{victim.Admin.Key, map[string]any{"environment": "test", "confirm": pid + "x"}, 400, "parameter_invalid", "confirm"},
			{victim.Admin.Key, map[string]any{"environment": "test", "confirm": ""}, 400, "parameter_invalid", "confirm"},
			{victim.Admin.Key, map[string]any{"environment": "test"}, 400, "parameter_missing", "confirm"},
			{victim.Admin.Key, map[string]any{"environment": "live", "confirm": pid}, 400, "parameter_invalid", "environment"},
			{victim.Admin.Key, map[string]any{"environment": "prod", "confirm": pid}, 400, "parameter_invalid", "environment"},
			{victim.Admin.Key, map[string]any{"confirm": pid}, 400, "parameter_missing", "environment"},
			{victim.Admin.Key, map[string]any{"environment": "test", "confirm": pid, "force": true}, 400, "parameter_unknown", "force"},
			{victim.Admin.Key, map[string]any{"environment": "test", "confirm": 42}, 400, "parameter_invalid", "confirm"},
			{victim.Admin.Key, nil, 400, "parameter_missing", "environment"},
			// Another partner's admin key naming B: it may only lock itself down.
			{other.Admin.Key, map[string]any{"environment": "test", "confirm": pid}, 400, "parameter_invalid", "confirm"},
			{restricted.Key, map[string]any{"environment": "test", "confirm": pid}, 403, "insufficient_scope", ""},
			{tk.Access, map[string]any{"environment": "test", "confirm": pid}, 403, "insufficient_scope", ""},
		} {
			r := st.api(t, "POST", "/v1/credentials/revoke_all", c.key, c.body)
			e := wantError(t, r, c.status, c.code)
			if c.param != "" {
				wantParam(t, r, e, c.param)
			}
		}
		for what, cred := range map[string]string{"admin": victim.Admin.Key, "restricted": restricted.Key, "service token": svcTok(hs),
			"access token": tk.Access, "other partner": other.Admin.Key} {
			works(what, cred)
		}

		// The switch, through the SDK.
		client := sdk.NewClient(victim.Admin.Key, sdk.WithBaseURL(st.s.URL), sdk.WithHTTPClient(st.httpClient()))
		res, err := client.Credentials.RevokeAll(t.Context(), &sdk.RevokeAllParams{Environment: sdk.EnvironmentTest, Confirm: pid})
		if err != nil {
			t.Fatalf("RevokeAll: %v", err)
		}
		raw, _ := json.Marshal(res)
		var got ksRevocation
		_ = json.Unmarshal(raw, &got)
		// Keys: the admin, the restricted and the suspended one. Tokens:
		// the access and the refresh token.
		ksWant(t, "revoke_all", got, pid, "test", 3, 1, 1, 2)

		// This instance refuses at once (other instances: the test below).
		for _, k := range []string{victim.Admin.Key, restricted.Key, suspended.Key} {
			wantError(t, st.api(t, "GET", "/v1/partner", k, nil), 401, "api_key_revoked")
		}
		wantError(t, st.api(t, "GET", "/v1/partner", svcTok(hs), nil), 401, "invalid_token")
		wantError(t, st.api(t, "GET", "/v1/partner", tk.Access, nil), 401, "token_revoked")
		oaWantOAuthError(t, st.refresh(t, cl, tk.Refresh, ""), 400, "invalid_grant")
		// The live environment and the other partner are untouched.
		works("live key", live.Key)
		works("live service token", svcTok(liveHS))
		works("other partner", other.Admin.Key)
		if g := st.api(t, "GET", "/v1/api_keys/"+live.ID, live.Key, nil); g.Str("status") != "active" {
			t.Errorf("the live key after a test lockdown: %s", g)
		}
		if g := st.api(t, "GET", "/v1/oauth_clients/"+cl.ID, other.Admin.Key, nil); g.Str("status") != "active" {
			t.Errorf("the app of the other partner after the lockdown: %s", g)
		}

		// The operator's second lockdown finds nothing and says so.
		out := b.CLI(t, "admin", "partner", "lockdown", "--id", pid, "--environment", "test")
		var again ksRevocation
		decodeJSON(t, "admin partner lockdown", out, &again)
		ksWant(t, "second lockdown", again, pid, "test", 0, 0, 0, 0)

		// A key issued afterwards works, and reads the one event.
		fresh := b.CreateKey(t, pid, "test", "secret")
		works("key issued after the lockdown", fresh.Key)
		evs := auListAll(t, st.s, fresh.Key, url.Values{"type": {"credentials.revoked_all"}}, 100)
		if len(evs) != 1 {
			t.Fatalf("credentials.revoked_all events: %+v, want exactly one", evs)
		}
		ev := evs[0]
		var data map[string]any
		_ = json.Unmarshal(ev.Data, &data)
		if ev.ObjectID != pid || ev.Actor != victim.Admin.ID || ev.CredentialID != victim.Admin.ID || ev.Environment != "test" ||
			data["api_keys"] != float64(3) || data["oauth_grants"] != float64(1) {
			t.Errorf("credentials.revoked_all event: %+v %s", ev, ev.Data)
		}
		if n := len(auListAll(t, st.s, live.Key, url.Values{"type": {"credentials.revoked_all"}}, 100)); n != 0 {
			t.Errorf("the live environment shows %d credentials.revoked_all events, want 0", n)
		}

		// The operator locks live down too; bad CLI input changes nothing.
		cliError(t, b, "parameter_missing", "id", "admin", "partner", "lockdown", "--environment", "live")
		cliError(t, b, "parameter_invalid", "environment", "admin", "partner", "lockdown", "--id", pid, "--environment", "prod")
		cliError(t, b, "resource_missing", "", "admin", "partner", "lockdown", "--id", "ptr_00000000000000000000000000", "--environment", "live")
		works("live key", live.Key)
		out = b.CLI(t, "admin", "partner", "lockdown", "--id", pid, "--environment", "live")
		var liveRes ksRevocation
		decodeJSON(t, "admin partner lockdown live", out, &liveRes)
		ksWant(t, "live lockdown", liveRes, pid, "live", 1, 1, 0, 0)
		works("test key issued after the test lockdown", fresh.Key)
		works("other partner", other.Admin.Key)
		// The CLI is another process: servers hear of it through the
		// database's channel.
		var last *Response
		if took, ok := poll(3*time.Second, 20*time.Millisecond, func() bool {
			last = st.api(t, "GET", "/v1/partner", live.Key, nil)
			return last.Status == 401
		}); !ok {
			t.Fatalf("the live key still works %s after the CLI lockdown: %s", took, last)
		}
		wantError(t, last, 401, "api_key_revoked")
		evs = auListAll(t, st.s, b.CreateKey(t, pid, "live", "secret").Key, url.Values{"type": {"credentials.revoked_all"}}, 100)
		if len(evs) != 1 || evs[0].Actor != "operator" || evs[0].Environment != "live" {
			t.Errorf("live credentials.revoked_all events: %+v, want one by the operator", evs)
		}
	})
}

// Every instance refuses the revoked credentials within a second, a key
// each had verified and cached included. Serial: it measures that second.
func TestKillSwitchAcrossInstances(t *testing.T) {
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		servers := []*Server{b.NewServer(t), b.NewServer(t)}
		tn := b.NewTenant(t, "approved")
		pid := tn.Partner.ID
		victim := b.CreateKey(t, pid, "test", "secret", "read")
		live := b.CreateKey(t, pid, "live", "secret")
		for _, s := range servers {
			for range 3 { // verified once, then from the cache
				wantStatus(t, partnerAs(t, s, bearer(victim.Key)), 200)
				wantStatus(t, partnerAs(t, s, bearer(tn.Admin.Key)), 200)
			}
		}

		r := do(t, "POST", servers[0].URL+"/v1/credentials/revoke_all", bearer(tn.Admin.Key),
			map[string]any{"environment": "test", "confirm": pid})
		committed := time.Now()
		wantStatus(t, r, 200)
		if r.Get("api_keys") != float64(2) {
			t.Fatalf("revoke_all: %s, want 2 keys", r)
		}

		took, last := watchRefusal(t, servers, bearer(victim.Key), committed)
		for i, s := range servers {
			if took[i] < 0 {
				t.Fatalf("instance %d (%s) still accepts a key 5 s after the lockdown: %s", i, s.URL, last[i])
			}
			wantError(t, last[i], 401, "api_key_revoked")
			t.Logf("%s: instance %d refused the locked-down key %s after revoke_all answered", b.Name, i, took[i].Round(time.Millisecond))
			if took[i] >= time.Second {
				t.Errorf("instance %d refused the key after %s, want < 1s", i, took[i])
			}
			wantError(t, partnerAs(t, s, bearer(tn.Admin.Key)), 401, "api_key_revoked")
			wantStatus(t, partnerAs(t, s, bearer(live.Key)), 200)
		}
	})
}
