package e2e

// Key policies (issue 16 §2): GET and PUT /v1/policy per environment,
// policy_violation on creation and rotation, the policy_violations and
// expiring_within lists, and one api_key.expiring event per key. The
// helpers of this file are prefixed kp.

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

type kpPolicy struct {
	Object                         string  `json:"object"`
	Environment                    string  `json:"environment"`
	MaxKeyLifetimeDays             *int    `json:"max_key_lifetime_days"`
	RequireExpiry                  bool    `json:"require_expiry"`
	RequireAllowedIPsForSecretKeys bool    `json:"require_allowed_ips_for_secret_keys"`
	MaxActiveKeys                  *int    `json:"max_active_keys"`
	ExpiryWarningDays              *int    `json:"expiry_warning_days"`
	UpdatedAt                      *string `json:"updated_at"`
}

type kpKey struct {
	ID               string   `json:"id"`
	Key              string   `json:"key"`
	ExpiresAt        *string  `json:"expires_at"`
	PolicyViolations []string `json:"policy_violations"`
}

func kpGet(t testing.TB, api *lgAPI) kpPolicy {
	t.Helper()
	var p kpPolicy
	api.get(t, "/v1/policy").want(t, 200, &p)
	if p.Object != "key_policy" {
		t.Fatalf("GET /v1/policy: %+v", p)
	}
	return p
}

func kpWantDefault(t testing.TB, what string, p kpPolicy, env string) {
	t.Helper()
	if p.Environment != env || p.MaxKeyLifetimeDays != nil || p.RequireExpiry || p.RequireAllowedIPsForSecretKeys ||
		p.MaxActiveKeys != nil || p.ExpiryWarningDays != nil || p.UpdatedAt != nil {
		t.Fatalf("%s: want the empty %s policy, got %+v", what, env, p)
	}
}

// kpKeys lists the key ids of path (a /v1/api_keys query), newest first.
func kpKeys(t testing.TB, api *lgAPI, query string) []kpKey {
	t.Helper()
	var l struct {
		Data []kpKey `json:"data"`
	}
	api.get(t, "/v1/api_keys?"+query).want(t, 200, &l)
	return l.Data
}

func kpIDs(ks []kpKey) []string {
	var ids []string
	for _, k := range ks {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

func kpIn(days int) string { return time.Now().UTC().AddDate(0, 0, days).Format(time.RFC3339) }

func TestKeyPolicy(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		ten, admin := lgSetup(t, b, "approved")
		_, other := lgSetup(t, b, "approved")
		liveKey := b.CreateKey(t, ten.Partner.ID, "live", "secret")
		live := admin.as(liveKey.Key)

		kpWantDefault(t, "a new partner", kpGet(t, admin), "test")

		// Keys made before the policy.
		var forever, long kpKey
		admin.post(t, "/v1/api_keys", map[string]any{"name": "forever"}).want(t, 201, &forever)
		admin.post(t, "/v1/api_keys", map[string]any{"name": "long", "expires_at": kpIn(200), "allowed_ips": []string{"127.0.0.0/8", "::1"}}).want(t, 201, &long)

		// Bad input changes nothing.
		for _, c := range []struct {
			body        string
			code, param string
		}{
			{`{"max_key_lifetime_days": 0}`, "parameter_invalid", "max_key_lifetime_days"},
			{`{"max_key_lifetime_days": 3651}`, "parameter_invalid", "max_key_lifetime_days"},
			{`{"max_active_keys": -1}`, "parameter_invalid", "max_active_keys"},
			{`{"expiry_warning_days": 1.5}`, "parameter_invalid", "expiry_warning_days"},
			{`{"require_expiry": "yes"}`, "parameter_invalid", "require_expiry"},
			{`{"require_expiry": true, "max_keys": 3}`, "parameter_unknown", "max_keys"},
			{`[]`, "body_invalid_json", ""},
		} {
			admin.do(t, "PUT", "/v1/policy", []byte(c.body), nil).wantErr(t, 400, c.code, c.param)
		}
		kpWantDefault(t, "after refused PUTs", kpGet(t, admin), "test")

		var p kpPolicy
		admin.do(t, "PUT", "/v1/policy", map[string]any{"max_key_lifetime_days": 90, "require_expiry": true,
			"require_allowed_ips_for_secret_keys": true, "max_active_keys": 6, "expiry_warning_days": 7}, nil).want(t, 200, &p)
		if p.MaxKeyLifetimeDays == nil || *p.MaxKeyLifetimeDays != 90 || !p.RequireExpiry || !p.RequireAllowedIPsForSecretKeys ||
			p.MaxActiveKeys == nil || *p.MaxActiveKeys != 6 || p.ExpiryWarningDays == nil || *p.ExpiryWarningDays != 7 || p.UpdatedAt == nil {
			t.Fatalf("PUT answered %+v", p)
		}
		if got := kpGet(t, admin); got.UpdatedAt == nil || *got.UpdatedAt != *p.UpdatedAt || *got.MaxActiveKeys != 6 {
			t.Fatalf("GET after PUT: %+v, PUT answered %+v", got, p)
		}
		// The other environment and other partners keep theirs.
		kpWantDefault(t, "the live environment", kpGet(t, live), "live")
		kpWantDefault(t, "another partner", kpGet(t, other), "test")
		live.post(t, "/v1/api_keys", map[string]any{"name": "live, unbound"}).want(t, 201, nil)

		// Live keys keep working and are listed with what they break.
		admin.as(forever.Key).get(t, "/v1/partner").want(t, 200, nil)
		viol := kpKeys(t, admin, "policy_violations=true")
		adminKey := kpKey{ID: ten.Admin.ID}
		if got, want := kpIDs(viol), kpIDs([]kpKey{adminKey, forever, long}); !slices.Equal(got, want) {
			t.Fatalf("policy_violations=true: %v, want %v", got, want)
		}
		for _, k := range viol {
			want := map[string][]string{adminKey.ID: {"expires_at", "allowed_ips"}, forever.ID: {"expires_at", "allowed_ips"}, long.ID: {"expires_at"}}[k.ID]
			if !slices.Equal(k.PolicyViolations, want) {
				t.Errorf("key %s: policy_violations %v, want %v", k.ID, k.PolicyViolations, want)
			}
		}
		if n := len(kpKeys(t, admin, "policy_violations=false")); n != 3 {
			t.Errorf("policy_violations=false listed %d keys, want all 3", n)
		}

		// Creation.
		ips := []string{"127.0.0.0/8", "::1"}
		admin.post(t, "/v1/api_keys", map[string]any{"allowed_ips": ips}).wantErr(t, 400, "policy_violation", "expires_at")
		admin.post(t, "/v1/api_keys", map[string]any{"allowed_ips": ips, "expires_at": kpIn(91)}).wantErr(t, 400, "policy_violation", "expires_at")
		admin.post(t, "/v1/api_keys", map[string]any{"expires_at": kpIn(30)}).wantErr(t, 400, "policy_violation", "allowed_ips")
		var soon kpKey
		admin.post(t, "/v1/api_keys", map[string]any{"allowed_ips": ips, "expires_at": kpIn(5)}).want(t, 201, &soon)
		admin.post(t, "/v1/api_keys", map[string]any{"type": "publishable", "expires_at": kpIn(30)}).want(t, 201, nil)
		if n := len(kpKeys(t, admin, "limit=100")); n != 5 {
			t.Fatalf("%d keys after refused creations, want 5", n)
		}

		// Rotation: explicit settings must fit; inherited ones are bounded.
		admin.post(t, "/v1/api_keys/"+forever.ID+"/rotate", map[string]any{}).wantErr(t, 400, "policy_violation", "allowed_ips")
		admin.post(t, "/v1/api_keys/"+forever.ID+"/rotate", map[string]any{"allowed_ips": ips, "expires_at": kpIn(120)}).wantErr(t, 400, "policy_violation", "expires_at")
		var next kpKey
		admin.post(t, "/v1/api_keys/"+forever.ID+"/rotate", map[string]any{"allowed_ips": ips}).want(t, 201, &next)
		exp, err := time.Parse(time.RFC3339, *next.ExpiresAt)
		if bound := time.Now().AddDate(0, 0, 90); err != nil || exp.After(bound) || exp.Before(bound.Add(-time.Minute)) {
			t.Fatalf("successor of a key that never expires: expires_at %v, want the policy's %v", next.ExpiresAt, bound)
		}
		if len(next.PolicyViolations) != 0 {
			t.Fatalf("successor breaks the policy: %v", next.PolicyViolations)
		}
		// The rotated key is on its way out: no longer listed.
		if got, want := kpIDs(kpKeys(t, admin, "policy_violations=true")), kpIDs([]kpKey{adminKey, long}); !slices.Equal(got, want) {
			t.Fatalf("policy_violations=true after the rotation: %v, want %v", got, want)
		}

		// Six live keys: the seventh is refused, with no parameter at fault.
		admin.post(t, "/v1/api_keys", map[string]any{"type": "publishable", "expires_at": kpIn(30)}).want(t, 201, nil)
		admin.post(t, "/v1/api_keys", map[string]any{"type": "publishable", "expires_at": kpIn(30)}).wantErr(t, 400, "policy_violation", "")

		// Expiring keys.
		if got := kpIDs(kpKeys(t, admin, "expiring_within=P7D")); !slices.Equal(got, []string{soon.ID}) {
			t.Fatalf("expiring_within=P7D: %v, want [%s]", got, soon.ID)
		}
		if got := kpKeys(t, admin, "expiring_within=PT1H"); len(got) != 0 {
			t.Fatalf("expiring_within=PT1H: %v", kpIDs(got))
		}
		for _, bad := range []string{"7", "P1M", "P", "PT", "-P7D", "P7d"} {
			admin.get(t, "/v1/api_keys?expiring_within="+url.QueryEscape(bad)).wantErr(t, 400, "parameter_invalid", "expiring_within")
		}
		admin.get(t, "/v1/api_keys?policy_violations=yes").wantErr(t, 400, "parameter_invalid", "policy_violations")

		// Policies are admin:all.
		var restricted kpKey
		live.post(t, "/v1/api_keys", map[string]any{"scopes": []string{"read"}}).want(t, 201, &restricted)
		live.as(restricted.Key).get(t, "/v1/policy").wantErr(t, 403, "insufficient_scope", "")
		live.as(restricted.Key).do(t, "PUT", "/v1/policy", map[string]any{}, nil).wantErr(t, 403, "insufficient_scope", "")
		kpWantDefault(t, "the live environment after a refused PUT", kpGet(t, live), "live")

		// The change is in the audit log; clearing the policy empties the list.
		evs := auListAll(t, b.Server(t), ten.Admin.Key, url.Values{"type": {"key_policy.updated"}}, 100)
		if len(evs) != 1 || evs[0].Actor != ten.Admin.ID {
			t.Fatalf("key_policy.updated events: %+v", evs)
		}
		admin.do(t, "PUT", "/v1/policy", map[string]any{}, nil).want(t, 200, &p)
		if p.UpdatedAt == nil || p.RequireExpiry || p.MaxKeyLifetimeDays != nil {
			t.Fatalf("PUT {} answered %+v", p)
		}
		if got := kpKeys(t, admin, "policy_violations=true"); len(got) != 0 {
			t.Fatalf("policy_violations=true without rules: %v", kpIDs(got))
		}
	})
}

// TestKeyExpiringEvent: two instances look for expiring keys every 50 ms;
// each key within expiry_warning_days gets one api_key.expiring event.
func TestKeyExpiringEvent(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		serverA := b.NewServer(t, "NEXUS_EXPIRY_WARNING_INTERVAL=50ms")
		b.NewServer(t, "NEXUS_EXPIRY_WARNING_INTERVAL=50ms")
		ten := b.NewTenant(t, "approved")
		admin := lgClient(t, serverA, ten.Admin.Key, 2)
		var first, later, far kpKey
		admin.post(t, "/v1/api_keys", map[string]any{"expires_at": kpIn(3)}).want(t, 201, &first)
		admin.post(t, "/v1/api_keys", map[string]any{"expires_at": kpIn(30)}).want(t, 201, &far)
		admin.do(t, "PUT", "/v1/policy", map[string]any{"expiry_warning_days": 7}, nil).want(t, 200, nil)

		expiring := func() []auEvent {
			return auListAll(t, serverA, ten.Admin.Key, url.Values{"type": {"api_key.expiring"}}, 100)
		}
		var evs []auEvent
		took, ok := poll(10*time.Second, 50*time.Millisecond, func() bool { evs = expiring(); return len(evs) > 0 })
		if !ok {
			t.Fatalf("no api_key.expiring event after %s", took)
		}
		t.Logf("api_key.expiring written %s after the policy", took.Round(time.Millisecond))
		// A key made afterwards is warned of by a later pass of the jobs;
		// by then the first key has been looked at again, and must not get
		// a second event.
		admin.post(t, "/v1/api_keys", map[string]any{"expires_at": kpIn(2)}).want(t, 201, &later)
		if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool { evs = expiring(); return len(evs) >= 2 }); !ok {
			t.Fatalf("no api_key.expiring event for the later key: %+v", evs)
		}
		count := map[string]int{}
		for _, e := range evs {
			count[e.ObjectID]++
			if e.Actor != "nexus" || !strings.Contains(string(e.Data), "expires_at") {
				t.Errorf("event %+v: want actor nexus and the key's expires_at", e)
			}
		}
		if count[first.ID] != 1 || count[later.ID] != 1 || count[far.ID] != 0 || len(evs) != 2 {
			t.Fatalf("api_key.expiring events by key: %v, want one each for %s and %s", count, first.ID, later.ID)
		}
	})
}

// The operator's `admin key create` follows the partner's key policy too,
// and can give a key what the policy asks for.
func TestKeyPolicyCLI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		ten, admin := lgSetup(t, b, "approved")
		admin.do(t, "PUT", "/v1/policy", map[string]any{"max_key_lifetime_days": 30, "require_allowed_ips_for_secret_keys": true}, nil).want(t, 200, nil)
		create := []string{"admin", "key", "create", "--partner", ten.Partner.ID, "--environment", "test"}
		cliError(t, b, "policy_violation", "expires_at", append(create, "--allowed-ips", "10.0.0.0/8")...)
		cliError(t, b, "policy_violation", "allowed_ips", append(create, "--expires-at", kpIn(10))...)
		cliError(t, b, "parameter_invalid", "expires_at", append(create, "--expires-at", "tomorrow")...)
		k := b.CreateKeyWith(t, ten.Partner.ID, "test", "secret", "--expires-at", kpIn(10), "--allowed-ips", "10.0.0.0/8")
		if k.ExpiresAt == nil || len(k.AllowedIPs) != 1 {
			t.Fatalf("admin key create with --expires-at and --allowed-ips: %+v", k)
		}
		// The live environment has no policy.
		b.CreateKey(t, ten.Partner.ID, "live", "secret")
	})
}
