package e2e

// The audit log (CONTRACT §8): lifecycle events written with their change,
// access rows written in batches, GET /v1/audit_events with its filters and
// paging, tenant isolation; and no secret ever in a server's logs. The
// helpers of this file are prefixed au so that they never collide with the
// harness's own.

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// auEvent is an audit_event as the API shows it.
type auEvent struct {
	Object       string          `json:"object"`
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Environment  string          `json:"environment"`
	ObjectID     string          `json:"object_id"`
	CredentialID string          `json:"credential_id"`
	Actor        string          `json:"actor"`
	IP           string          `json:"ip"`
	RequestID    string          `json:"request_id"`
	Method       string          `json:"method"`
	Path         string          `json:"path"`
	Status       int             `json:"status"`
	Data         json.RawMessage `json:"data"`
	CreatedAt    time.Time       `json:"created_at"`
}

type auList struct {
	Object  string    `json:"object"`
	Data    []auEvent `json:"data"`
	HasMore bool      `json:"has_more"`
}

// auListAll pages through GET /v1/audit_events?query with key, limit per
// page, and checks the list shape and the paging.
func auListAll(t testing.TB, s *Server, key string, query url.Values, limit int) []auEvent {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(limit))
	var all []auEvent
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page > 500 {
			t.Fatalf("GET /v1/audit_events?%s: more than 500 pages", query.Encode())
		}
		r := do(t, "GET", s.URL+"/v1/audit_events?"+q.Encode(), bearer(key), nil)
		wantStatus(t, r, 200)
		var l auList
		r.Decode(t, &l)
		if l.Object != "list" || len(l.Data) > limit || (l.HasMore && len(l.Data) != limit) {
			t.Fatalf("not a list page of at most %d: %s", limit, r)
		}
		for _, e := range l.Data {
			if e.Object != "audit_event" || !strings.HasPrefix(e.ID, "evt_") || e.Type == "" || e.CreatedAt.IsZero() {
				t.Fatalf("not an audit event: %+v in %s", e, r)
			}
			if seen[e.ID] {
				t.Fatalf("event %s listed twice while paging", e.ID)
			}
			seen[e.ID] = true
		}
		all = append(all, l.Data...)
		if !l.HasMore {
			return all
		}
		q.Set("starting_after", l.Data[len(l.Data)-1].ID)
	}
}

// auCall is one request of the scenario, for its access row.
type auCall struct {
	method, path, credential string
	resp                     *Response
}

// auWant is a lifecycle event the scenario must have left.
type auWant struct {
	typ, objectID string
	resp          *Response // the answer of the request that made it
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b)
		a := b.NewTenant(t, "approved")
		other := b.NewTenant(t, "approved")
		admin := a.Admin
		me := sourceIP(t).String()
		scenarioStart := time.Now().Add(-2 * time.Second)

		var calls []auCall
		var wants []auWant
		call := func(key Key, method, path string, body any, status int) *Response {
			t.Helper()
			r := do(t, method, s.URL+path, bearer(key.Key), body)
			if r.Status != status {
				t.Fatalf("want %d, got %s", status, r)
			}
			calls = append(calls, auCall{method, path, key.ID, r})
			return r
		}
		id := func(r *Response) string {
			t.Helper()
			v := r.Str("id")
			if v == "" {
				t.Fatalf("answer without an id: %s", r)
			}
			return v
		}

		// Keys: create, suspend, reactivate, rotate, use, revoke, use.
		r := call(admin, "POST", "/v1/api_keys", map[string]any{"name": "audited"}, 201)
		k1 := Key{ID: id(r), Key: r.Str("key")}
		wants = append(wants, auWant{"api_key.created", k1.ID, r})
		r = call(admin, "POST", "/v1/api_keys/"+k1.ID+"/suspend", nil, 200)
		wants = append(wants, auWant{"api_key.suspended", k1.ID, r})
		r = call(admin, "POST", "/v1/api_keys/"+k1.ID+"/reactivate", nil, 200)
		wants = append(wants, auWant{"api_key.reactivated", k1.ID, r})
		r = call(admin, "POST", "/v1/api_keys/"+k1.ID+"/rotate", map[string]any{"grace_period_seconds": 60}, 201)
		k2 := Key{ID: id(r), Key: r.Str("key")}
		wants = append(wants, auWant{"api_key.rotated", k1.ID, r}, auWant{"api_key.created", k2.ID, r})
		call(k2, "GET", "/v1/partner", nil, 200)
		r = call(admin, "POST", "/v1/api_keys/"+k2.ID+"/revoke", nil, 200)
		wants = append(wants, auWant{"api_key.revoked", k2.ID, r})
		revokedUse := call(k2, "GET", "/v1/partner", nil, 401)
		wantError(t, revokedUse, 401, "api_key_revoked")

		// Money: an address, a deposit completed by the test helper, a
		// withdrawal created and cancelled, the address archived.
		r = call(admin, "POST", "/v1/addresses", map[string]any{"network": "ethereum", "address": "0x" + randomHex(20)}, 201)
		adr := id(r)
		wants = append(wants, auWant{"address.created", adr, r})
		r = call(admin, "POST", "/v1/test_helpers/funding", map[string]any{"amount": 5000, "currency": "usdt", "status": "pending"}, 201)
		fnd := id(r)
		wants = append(wants, auWant{"funding.created", fnd, r})
		r = call(admin, "POST", "/v1/test_helpers/funding/"+fnd+"/complete", nil, 200)
		wants = append(wants, auWant{"funding.completed", fnd, r})
		r = call(admin, "POST", "/v1/requests", map[string]any{"type": "withdrawal", "amount": 1200, "currency": "usdt", "address_id": adr}, 201)
		prq := id(r)
		wants = append(wants, auWant{"request.created", prq, r})
		r = call(admin, "POST", "/v1/requests/"+prq+"/cancel", nil, 200)
		wants = append(wants, auWant{"request.cancelled", prq, r})
		r = call(admin, "DELETE", "/v1/addresses/"+adr, nil, 200)
		wants = append(wants, auWant{"address.archived", adr, r})

		// Credentials and clients.
		r = call(admin, "POST", "/v1/service_credentials", map[string]any{"name": "audited", "algorithm": "HS256"}, 201)
		sc := id(r)
		wants = append(wants, auWant{"service_credential.created", sc, r})
		r = call(admin, "POST", "/v1/service_credentials/"+sc+"/revoke", nil, 200)
		wants = append(wants, auWant{"service_credential.revoked", sc, r})
		r = call(admin, "POST", "/v1/oauth_clients", map[string]any{"name": "audited", "type": "confidential",
			"redirect_uris": []string{"https://app.example/cb"}, "scopes": []string{"read:balances"}}, 201)
		cli := id(r)
		wants = append(wants, auWant{"oauth_client.created", cli, r})
		r = call(admin, "DELETE", "/v1/oauth_clients/"+cli, nil, 200)
		wants = append(wants, auWant{"oauth_client.deleted", cli, r})

		// The other partner does things of its own.
		otherKey := apiCreateKey(t, s, other.Admin.Key, map[string]any{"name": "other"})
		wantStatus(t, do(t, "POST", s.URL+"/v1/addresses", bearer(other.Admin.Key),
			map[string]any{"network": "ethereum", "address": "0x" + randomHex(20)}), 201)
		wantStatus(t, partnerAs(t, s, bearer(otherKey.Key)), 200)

		// Every lifecycle change is listed at once (written with the change),
		// with who made it and the request that made it.
		events := auListAll(t, s, admin.Key, nil, 7)
		byKey := map[string][]auEvent{}
		for _, e := range events {
			byKey[e.Type+" "+e.ObjectID] = append(byKey[e.Type+" "+e.ObjectID], e)
		}
		for _, w := range wants {
			got := byKey[w.typ+" "+w.objectID]
			if len(got) != 1 {
				t.Errorf("%s of %s: %d events listed, want 1: %+v", w.typ, w.objectID, len(got), got)
				continue
			}
			e := got[0]
			rid := w.resp.Header.Get("X-Request-Id")
			if e.Actor != admin.ID || e.CredentialID != admin.ID || e.RequestID != rid || e.Environment != "test" || e.IP != me {
				t.Errorf("%s of %s: actor %q credential_id %q request_id %q environment %q ip %q; want actor and credential %s, request %s, test, %s",
					w.typ, w.objectID, e.Actor, e.CredentialID, e.RequestID, e.Environment, e.IP, admin.ID, rid, me)
			}
			if e.CreatedAt.Before(scenarioStart) || e.CreatedAt.After(time.Now().Add(2*time.Second)) {
				t.Errorf("%s of %s: created_at %s is not the time of the change", w.typ, w.objectID, e.CreatedAt)
			}
		}
		// The admin key issued by the operator CLI is there too.
		if got := byKey["api_key.created "+admin.ID]; len(got) != 1 || got[0].Actor == "" {
			t.Errorf("api_key.created of the CLI-issued key %s: %+v, want one event naming its actor", admin.ID, got)
		}

		// Access rows, written in batches off the request path, appear
		// within a few seconds.
		var access map[string]auEvent
		took, ok := poll(10*time.Second, 250*time.Millisecond, func() bool {
			access = map[string]auEvent{}
			for _, e := range auListAll(t, s, admin.Key, url.Values{"type": {"api.access"}}, 100) {
				access[e.RequestID] = e
			}
			for _, c := range calls {
				if _, ok := access[c.resp.Header.Get("X-Request-Id")]; !ok {
					return false
				}
			}
			return true
		})
		if !ok {
			for _, c := range calls {
				if _, ok := access[c.resp.Header.Get("X-Request-Id")]; !ok {
					t.Errorf("no access row after %s for %s %s (%d, %s)", took, c.method, c.path, c.resp.Status, c.resp.Header.Get("X-Request-Id"))
				}
			}
			t.FailNow()
		}
		if took > 3*time.Second {
			t.Errorf("the access rows took %s to appear, want within ~3 s", took)
		}
		t.Logf("access rows of %d requests listed after %s", len(calls), took.Round(time.Millisecond))
		var garbled []string
		for _, c := range calls {
			e := access[c.resp.Header.Get("X-Request-Id")]
			if e.Type != "api.access" || e.Status != c.resp.Status ||
				e.CredentialID != c.credential || e.Actor != c.credential || e.IP != me || e.Environment != "test" {
				t.Errorf("access row of %s %s (%d by %s): %+v", c.method, c.path, c.resp.Status, c.credential, e)
			}
			if e.Method != c.method || e.Path != c.path {
				garbled = append(garbled, c.method+" "+c.path+" logged as "+e.Method+" "+e.Path)
			}
		}
		t.Run("access rows keep method and path", func(t *testing.T) {
			if len(garbled) > 0 {
				// httpapi/server.go logAccess queues c.Method() and c.Path(),
				// which alias fasthttp's request buffer; the batch writer reads
				// them after the buffer was reused by later requests.
				t.Errorf("%d of %d access rows with another request's method or path, e.g.:\n  %s", len(garbled), len(calls), strings.Join(garbled[:min(3, len(garbled))], "\n  "))
			}
		})
		// The use of the revoked key is A's to see, as a 401.
		if e := access[revokedUse.Header.Get("X-Request-Id")]; e.Status != 401 || e.CredentialID != k2.ID {
			t.Errorf("access row of the revoked key's use: %+v, want status 401 for %s", e, k2.ID)
		}

		// Filters.
		revoked := auListAll(t, s, admin.Key, url.Values{"type": {"api_key.revoked"}}, 20)
		if len(revoked) != 1 || revoked[0].ObjectID != k2.ID {
			t.Errorf("type=api_key.revoked: %+v, want exactly the revocation of %s", revoked, k2.ID)
		}
		created := auListAll(t, s, admin.Key, url.Values{"type": {"api_key.created"}, "credential_id": {admin.ID}}, 20)
		if ids := auObjects(created); !sameSet(ids, []string{k1.ID, k2.ID}) {
			t.Errorf("type=api_key.created&credential_id=%s: objects %v, want %v", admin.ID, ids, []string{k1.ID, k2.ID})
		}
		byK2 := auListAll(t, s, admin.Key, url.Values{"credential_id": {k2.ID}}, 20)
		var statuses []int
		for _, e := range byK2 {
			if e.Type != "api.access" || e.CredentialID != k2.ID {
				t.Errorf("credential_id=%s lists %+v", k2.ID, e)
			}
			statuses = append(statuses, e.Status)
		}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []int{200, 401}) {
			t.Errorf("credential_id=%s: access statuses %v, want [200 401] (one use, one after revocation)", k2.ID, statuses)
		}
		for _, e := range auListAll(t, s, admin.Key, url.Values{"credential_id": {admin.ID}}, 100) {
			if e.CredentialID != admin.ID {
				t.Errorf("credential_id=%s lists %+v", admin.ID, e)
			}
		}

		// Time filters (RFC 3339, any offset).
		future := time.Now().Add(time.Hour)
		for _, v := range []string{future.UTC().Format(time.RFC3339), future.In(time.FixedZone("", 2*3600)).Format(time.RFC3339)} {
			if got := auListAll(t, s, admin.Key, url.Values{"created_after": {v}}, 20); len(got) != 0 {
				t.Errorf("created_after=%s (the future): %d events, want none", v, len(got))
			}
		}
		if got := auListAll(t, s, admin.Key, url.Values{"created_before": {"2000-01-01T00:00:00Z"}}, 20); len(got) != 0 {
			t.Errorf("created_before=2000-01-01: %d events, want none", len(got))
		}
		if got := auListAll(t, s, admin.Key, url.Values{"created_after": {scenarioStart.UTC().Format(time.RFC3339Nano)}, "type": {"api_key.revoked"}}, 20); len(got) != 1 {
			t.Errorf("created_after=<before the scenario>&type=api_key.revoked: %d events, want 1", len(got))
		}
		// Split at the archive of the address: the lifecycle events before
		// it and after it.
		split := byKey["address.archived "+adr][0].CreatedAt
		before := auTypes(auListAll(t, s, admin.Key, url.Values{"created_before": {split.Format(time.RFC3339Nano)}}, 100))
		after := auTypes(auListAll(t, s, admin.Key, url.Values{"created_after": {split.Format(time.RFC3339Nano)}}, 100))
		for _, typ := range []string{"api_key.rotated", "api_key.revoked", "address.created", "request.cancelled"} {
			if !slices.Contains(before, typ) || slices.Contains(after, typ) {
				t.Errorf("%s (before the split at %s): in created_before %v, in created_after %v", typ, split, slices.Contains(before, typ), slices.Contains(after, typ))
			}
		}
		for _, typ := range []string{"service_credential.created", "oauth_client.deleted"} {
			if slices.Contains(before, typ) || !slices.Contains(after, typ) {
				t.Errorf("%s (after the split at %s): in created_before %v, in created_after %v", typ, split, slices.Contains(before, typ), slices.Contains(after, typ))
			}
		}
		if slices.Contains(before, "address.archived") || slices.Contains(after, "address.archived") {
			t.Errorf("the event at the split instant itself must be in neither strict bound")
		}

		// Tenancy: neither partner ever sees the other's events, nor does
		// A's live environment see its test events.
		mine := auListAll(t, s, admin.Key, nil, 100)
		theirs := auListAll(t, s, other.Admin.Key, nil, 100)
		if len(theirs) == 0 {
			t.Fatal("the other partner lists no events of its own")
		}
		mineIDs := map[string]bool{}
		for _, e := range mine {
			mineIDs[e.ID] = true
			if e.ObjectID == otherKey.ID || e.CredentialID == other.Admin.ID || e.CredentialID == otherKey.ID {
				t.Errorf("partner A lists partner B's event %+v", e)
			}
		}
		for _, e := range theirs {
			if mineIDs[e.ID] {
				t.Errorf("both partners list event %+v", e)
			}
			if e.CredentialID == admin.ID || e.ObjectID == k1.ID || e.ObjectID == adr || e.CredentialID == k2.ID {
				t.Errorf("partner B lists partner A's event %+v", e)
			}
		}
		live := b.CreateKey(t, a.Partner.ID, "live", "secret")
		for _, e := range auListAll(t, s, live.Key, nil, 100) {
			if e.Environment != "live" || mineIDs[e.ID] {
				t.Errorf("A's live key lists a test event: %+v", e)
			}
		}
		// Another partner's event id is no cursor.
		r = do(t, "GET", s.URL+"/v1/audit_events?starting_after="+theirs[0].ID, bearer(admin.Key), nil)
		wantParam(t, r, wantError(t, r, 400, "parameter_invalid"), "starting_after")
		// Nor is another partner's credential a filter that shows anything.
		if got := auListAll(t, s, admin.Key, url.Values{"credential_id": {other.Admin.ID}}, 20); len(got) != 0 {
			t.Errorf("credential_id=<B's key> as A: %+v, want none", got)
		}

		// Only admin:all reads the audit log.
		reader := b.CreateKey(t, a.Partner.ID, "test", "secret", "read")
		wantError(t, do(t, "GET", s.URL+"/v1/audit_events", bearer(reader.Key), nil), 403, "insufficient_scope")
	})
}

func auObjects(es []auEvent) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.ObjectID)
	}
	return out
}

func auTypes(es []auEvent) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

func TestAuditListValidation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b)
		tn := b.NewTenant(t, "approved")
		for _, c := range []struct {
			query, code, param string
		}{
			{"limit=0", "parameter_invalid", "limit"},
			{"limit=101", "parameter_invalid", "limit"},
			{"limit=-1", "parameter_invalid", "limit"},
			{"limit=ten", "parameter_invalid", "limit"},
			{"foo=1", "parameter_unknown", "foo"},
			{"event_type=api.access", "parameter_unknown", "event_type"},
			{"created_after=yesterday", "parameter_invalid", "created_after"},
			{"created_before=2024-13-01T00:00:00Z", "parameter_invalid", "created_before"},
			{"created_after=2024-01-01", "parameter_invalid", "created_after"},
			{"starting_after=evt_doesnotexist", "parameter_invalid", "starting_after"},
		} {
			r := do(t, "GET", s.URL+"/v1/audit_events?"+c.query, bearer(tn.Admin.Key), nil)
			wantParam(t, r, wantError(t, r, 400, c.code), c.param)
		}
		for _, q := range []string{"limit=1", "limit=100", "type=nothing.like.this", "created_after=2024-01-01T00:00:00.123456%2B05:30"} {
			wantStatus(t, do(t, "GET", s.URL+"/v1/audit_events?"+q, bearer(tn.Admin.Key), nil), 200)
		}
		r := do(t, "GET", s.URL+"/v1/audit_events?limit=1", bearer(tn.Admin.Key), nil)
		if len(r.Data()) != 1 {
			t.Errorf("limit=1: %s", r)
		}
	})
}

// ---------------------------------------------------------------------------
// 7. No secret in the logs

func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b, "NEXUS_LOG_LEVEL=debug", "NEXUS_LOG_FORMAT=json")
		tn := b.NewTenant(t, "approved")
		secrets := map[string]string{"CLI admin key": tn.Admin.Key}
		h := bearer(tn.Admin.Key)

		// API keys: created, used, rotated, revoked, misused.
		k := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"name": "leak check"})
		secrets["created key"] = k.Key
		wantStatus(t, partnerAs(t, s, bearer(k.Key)), 200)
		wantStatus(t, partnerAs(t, s, H{"X-API-Key": k.Key}), 200)
		r := do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/rotate", h, map[string]any{"grace_period_seconds": 0})
		wantStatus(t, r, 201)
		var rotated Key
		r.Decode(t, &rotated)
		secrets["rotated key"] = rotated.Key
		wantStatus(t, partnerAs(t, s, H{"X-Partner-API-Key": rotated.Key}), 200)
		wantError(t, partnerAs(t, s, bearer(k.Key)), 401, "api_key_expired")
		// A damaged copy (wrong checksum) and a key of the wrong kind.
		broken := rotated.Key[:len(rotated.Key)-1] + "A"
		if strings.HasSuffix(rotated.Key, "A") {
			broken = rotated.Key[:len(rotated.Key)-1] + "B"
		}
		if r := partnerAs(t, s, bearer(broken)); r.Status != 401 {
			t.Errorf("a key with a wrong checksum: %s", r)
		}
		wantStatus(t, do(t, "POST", s.URL+"/v1/api_keys/"+rotated.ID+"/revoke", h, nil), 200)
		wantError(t, partnerAs(t, s, bearer(rotated.Key)), 401, "api_key_revoked")
		// A publishable key used against a write route, from a wrong origin.
		pk := apiCreateKey(t, s, tn.Admin.Key, map[string]any{"type": "publishable", "allowed_origins": []string{"https://shop.example"}})
		secrets["publishable key"] = pk.Key
		wantError(t, partnerAs(t, s, bearer(pk.Key).with("Origin", "https://evil.example")), 403, "origin_not_allowed")
		wantError(t, do(t, "POST", s.URL+"/v1/addresses", bearer(pk.Key).with("Origin", "https://shop.example"), map[string]any{"network": "ethereum", "address": "0x" + randomHex(20)}), 403, "insufficient_scope")
		// Two credentials at once.
		wantError(t, partnerAs(t, s, bearer(tn.Admin.Key).with("X-API-Key", pk.Key)), 400, "ambiguous_credentials")

		// A service credential's HS256 signing secret: used to mint, and
		// (wrongly) sent as a bearer credential.
		r = do(t, "POST", s.URL+"/v1/service_credentials", h, map[string]any{"name": "leak check", "algorithm": "HS256"})
		wantStatus(t, r, 201)
		scID, ss := r.Str("id"), r.Str("secret")
		if !strings.HasPrefix(ss, "nx_test_ss_") {
			t.Fatalf("no signing secret in %s", r)
		}
		secrets["service signing secret"] = ss
		tok, err := sdk.MintServiceToken(sdk.ServiceTokenParams{CredentialID: scID, Secret: ss, Service: "leak-check"})
		if err != nil {
			t.Fatal(err)
		}
		secrets["service token"] = tok
		wantStatus(t, partnerAs(t, s, bearer(tok)), 200)
		if r := partnerAs(t, s, bearer(ss)); r.Status != 401 {
			t.Errorf("a signing secret sent as a credential: %s", r)
		}
		forged, err := sdk.MintServiceToken(sdk.ServiceTokenParams{CredentialID: scID, Secret: flFakeKey("test", "ss"), Service: "forger"})
		if err != nil {
			t.Fatal(err)
		}
		if r := partnerAs(t, s, bearer(forged)); r.Status != 401 {
			t.Errorf("a token signed with another secret: %s", r)
		}

		// An OAuth client secret: authenticating at the token and
		// introspection endpoints, right and wrong, and as a bearer.
		r = do(t, "POST", s.URL+"/v1/oauth_clients", h, map[string]any{"name": "x", "type": "confidential",
			"redirect_uris": []string{"https://app.example/cb"}, "scopes": []string{"read:balances"}})
		wantStatus(t, r, 201)
		cliID, cs := r.Str("client_id"), r.Str("client_secret")
		if !strings.HasPrefix(cs, "nx_test_cs_") {
			t.Fatalf("no client secret in %s", r)
		}
		secrets["oauth client secret"] = cs
		form := func(kv ...string) string {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return v.Encode()
		}
		formH := H{"Content-Type": "application/x-www-form-urlencoded"}
		for _, c := range []struct {
			path, body string
			h          H
		}{
			{"/oauth/token", form("grant_type", "authorization_code", "code", "bogus", "redirect_uri", "https://app.example/cb"),
				formH.with("Authorization", "Basic "+auBasic(cliID, cs))},
			{"/oauth/token", form("grant_type", "authorization_code", "code", "bogus", "redirect_uri", "https://app.example/cb",
				"client_id", cliID, "client_secret", cs), formH},
			{"/oauth/token", form("grant_type", "refresh_token", "refresh_token", flFakeKey("test", "rt"),
				"client_id", cliID, "client_secret", cs+"x"), formH},
			{"/oauth/token", form("grant_type", "authorization_code", "code", "bogus", "client_id", cliID,
				"client_secret", flFakeKey("test", "cs")), formH},
			{"/oauth/introspect", form("token", tn.Admin.Key), formH.with("Authorization", "Basic "+auBasic(cliID, cs))},
			{"/oauth/revoke", form("token", flFakeKey("test", "at")), formH.with("Authorization", "Basic "+auBasic(cliID, cs))},
		} {
			r := do(t, "POST", s.URL+c.path, c.h, c.body)
			if r.Status >= 500 {
				t.Errorf("%s", r)
			}
		}
		if r := partnerAs(t, s, bearer(cs)); r.Status != 401 {
			t.Errorf("a client secret sent as a credential: %s", r)
		}

		if err := s.Stop(); err != nil {
			// Killed after 10 s if it would not stop: its output is complete
			// either way.
			t.Errorf("stopping the server: %v", err)
		}
		logs := s.Logs() + "\n" + s.Stdout()
		if len(logs) < 100 {
			t.Fatalf("the server logged almost nothing at debug level: %q", logs)
		}
		for what, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("the %s appears in the server's output", what)
			}
			if prefix, rest, ok := auSplitSecret(secret); ok {
				random := rest[:30]
				if strings.Contains(logs, random) {
					t.Errorf("the random part of the %s (%s…) appears in the server's output", what, prefix)
				}
			}
		}
		// A JWT's signature is its secret part.
		if parts := strings.Split(secrets["service token"], "."); len(parts) == 3 && strings.Contains(logs, parts[2]) {
			t.Errorf("the service token's signature appears in the server's output")
		}
		t.Logf("%d bytes of logs checked for %d secrets", len(logs), len(secrets))
	})
}

// auSplitSecret splits nx_<env>_<kind>_<30 random><6 checksum>.
func auSplitSecret(s string) (prefix, rest string, ok bool) {
	if !strings.HasPrefix(s, "nx_") || len(s) != len("nx_test_sk_")+36 {
		return "", "", false
	}
	return s[:11], s[11:], true
}

func auBasic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user) + ":" + url.QueryEscape(pass)))
}
