package nexus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pagedServer serves ids (newest first) as a cursor list, as Nexus does.
func pagedServer(t *testing.T, ids []string, cursors *[]string, mu *sync.Mutex) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		*cursors = append(*cursors, q.Get("starting_after"))
		mu.Unlock()
		if q.Get("status") != "pending" {
			t.Errorf("filter lost: query %q", r.URL.RawQuery)
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		start := 0
		if after := q.Get("starting_after"); after != "" {
			start = slices.Index(ids, after) + 1
		}
		end := min(start+limit, len(ids))
		data := []map[string]any{}
		for _, id := range ids[start:end] {
			data = append(data, map[string]any{"object": "request", "id": id, "status": "pending"})
		}
		writeJSON(w, 200, map[string]any{"object": "list", "data": data, "has_more": end < len(ids)})
	}
}

func TestIteratorFollowsStartingAfter(t *testing.T) {
	ids := []string{"prq_5", "prq_4", "prq_3", "prq_2", "prq_1"}
	var (
		mu      sync.Mutex
		cursors []string
	)
	c, _ := newTestClient(t, pagedServer(t, ids, &cursors, &mu))
	params := &RequestListParams{ListParams: ListParams{Limit: 2}, Status: RequestStatusPending}

	var got []string
	for r, err := range c.Requests.All(context.Background(), params) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.ID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("ids = %v, want %v", got, ids)
	}
	if want := []string{"", "prq_4", "prq_2"}; !slices.Equal(cursors, want) {
		t.Errorf("starting_after = %q, want %q (stop at has_more=false)", cursors, want)
	}
	if params.StartingAfter != "" {
		t.Errorf("All modified the caller's params: %+v", params)
	}

	// One page, by hand.
	page, err := c.Requests.List(context.Background(), &RequestListParams{ListParams: ListParams{Limit: 2, StartingAfter: "prq_4"}, Status: "pending"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 || page.Data[0].ID != "prq_3" || !page.HasMore || page.Object != "list" {
		t.Errorf("page = %+v", page)
	}
}

func TestIteratorStopsOnBreak(t *testing.T) {
	ids := []string{"prq_5", "prq_4", "prq_3", "prq_2", "prq_1"}
	var (
		mu      sync.Mutex
		cursors []string
	)
	c, _ := newTestClient(t, pagedServer(t, ids, &cursors, &mu))
	params := &RequestListParams{ListParams: ListParams{Limit: 2}, Status: "pending"}
	n := 0
	for _, err := range c.Requests.All(context.Background(), params) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if len(cursors) != 2 {
		t.Errorf("fetched %d pages for 3 items, want 2", len(cursors))
	}
}

func TestIteratorYieldsError(t *testing.T) {
	var n atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeJSON(w, 200, map[string]any{"object": "list", "has_more": true,
				"data": []map[string]any{{"id": "evt_2"}}})
			return
		}
		writeError(w, 400, ErrorTypeInvalidRequest, CodeParameterInvalid, "bad cursor", "starting_after", "req_c")
	})
	var ids []string
	var errs []error
	for e, err := range c.AuditEvents.All(context.Background(), nil) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []string{"evt_2"}) || len(errs) != 1 || !IsCode(errs[0], CodeParameterInvalid) {
		t.Errorf("ids = %v, errs = %v", ids, errs)
	}
}

// TestEndpoints checks the method and path of every typed method.
func TestEndpoints(t *testing.T) {
	type hit struct{ method, path, query, body string }
	var (
		mu   sync.Mutex
		last hit
	)
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = hit{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b)}
		mu.Unlock()
		// Valid as a list and as an object.
		writeJSON(w, 200, map[string]any{"object": "list", "id": "x", "data": []any{}, "has_more": false})
	})
	ctx := context.Background()
	after := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		run  func() error
		want hit
	}{
		{"Partner.Get", func() error { _, err := c.Partner.Get(ctx); return err }, hit{"GET", "/v1/partner", "", ""}},
		{"Balances.List", func() error { _, err := c.Balances.List(ctx); return err }, hit{"GET", "/v1/balances", "", ""}},
		{"Balances.Get", func() error { _, err := c.Balances.Get(ctx, CurrencyUSDT); return err }, hit{"GET", "/v1/balances/usdt", "", ""}},
		{"Funding.List", func() error {
			_, err := c.Funding.List(ctx, &FundingListParams{Status: "completed", Currency: CurrencyBTC})
			return err
		}, hit{"GET", "/v1/funding", "currency=btc&status=completed", ""}},
		{"Funding.Get", func() error { _, err := c.Funding.Get(ctx, "fnd_1"); return err }, hit{"GET", "/v1/funding/fnd_1", "", ""}},
		{"Addresses.Create", func() error {
			_, err := c.Addresses.Create(ctx, &AddressCreateParams{Network: NetworkEthereum, Address: "0xabc"})
			return err
		}, hit{"POST", "/v1/addresses", "", `{"network":"ethereum","address":"0xabc"}`}},
		{"Addresses.List", func() error {
			_, err := c.Addresses.List(ctx, &AddressListParams{Network: NetworkBitcoin, Status: "active"})
			return err
		}, hit{"GET", "/v1/addresses", "network=bitcoin&status=active", ""}},
		{"Addresses.Get", func() error { _, err := c.Addresses.Get(ctx, "adr_1"); return err }, hit{"GET", "/v1/addresses/adr_1", "", ""}},
		{"Addresses.Archive", func() error { _, err := c.Addresses.Archive(ctx, "adr_1"); return err }, hit{"DELETE", "/v1/addresses/adr_1", "", ""}},
		{"Requests.Create", func() error {
			_, err := c.Requests.Create(ctx, &RequestCreateParams{Amount: 5, Currency: CurrencyBTC, AddressID: "adr_1", Metadata: map[string]string{"order": "42"}})
			return err
		}, hit{"POST", "/v1/requests", "", `{"type":"withdrawal","amount":5,"currency":"btc","address_id":"adr_1","metadata":{"order":"42"}}`}},
		{"Requests.List", func() error {
			_, err := c.Requests.List(ctx, &RequestListParams{AddressID: "adr_1", ListParams: ListParams{Limit: 100}})
			return err
		}, hit{"GET", "/v1/requests", "address_id=adr_1&limit=100", ""}},
		{"Requests.Get", func() error { _, err := c.Requests.Get(ctx, "prq_1"); return err }, hit{"GET", "/v1/requests/prq_1", "", ""}},
		{"Requests.Cancel", func() error { _, err := c.Requests.Cancel(ctx, "prq_1"); return err }, hit{"POST", "/v1/requests/prq_1/cancel", "", ""}},
		{"APIKeys.Create", func() error {
			_, err := c.APIKeys.Create(ctx, &APIKeyCreateParams{Type: "publishable", Scopes: []string{"read"}})
			return err
		}, hit{"POST", "/v1/api_keys", "", `{"type":"publishable","scopes":["read"]}`}},
		{"APIKeys.List", func() error { _, err := c.APIKeys.List(ctx, &APIKeyListParams{Status: "active"}); return err }, hit{"GET", "/v1/api_keys", "status=active", ""}},
		{"APIKeys.Get", func() error { _, err := c.APIKeys.Get(ctx, "key_1"); return err }, hit{"GET", "/v1/api_keys/key_1", "", ""}},
		{"APIKeys.Suspend", func() error { _, err := c.APIKeys.Suspend(ctx, "key_1"); return err }, hit{"POST", "/v1/api_keys/key_1/suspend", "", ""}},
		{"APIKeys.Reactivate", func() error { _, err := c.APIKeys.Reactivate(ctx, "key_1"); return err }, hit{"POST", "/v1/api_keys/key_1/reactivate", "", ""}},
		{"APIKeys.Revoke", func() error { _, err := c.APIKeys.Revoke(ctx, "key_1"); return err }, hit{"POST", "/v1/api_keys/key_1/revoke", "", ""}},
		{"APIKeys.Rotate", func() error {
			_, err := c.APIKeys.Rotate(ctx, "key_1", &APIKeyRotateParams{GracePeriodSeconds: new(3600)})
			return err
		}, hit{"POST", "/v1/api_keys/key_1/rotate", "", `{"grace_period_seconds":3600}`}},
		{"APIKeys.Rotate nil", func() error { _, err := c.APIKeys.Rotate(ctx, "key_1", nil); return err }, hit{"POST", "/v1/api_keys/key_1/rotate", "", `{}`}},
		{"APIKeys.Create with limits", func() error {
			_, err := c.APIKeys.Create(ctx, &APIKeyCreateParams{Limits: Limits{CurrencyUSDC: {DailyWithdrawalTotal: Int64(1000)}}})
			return err
		}, hit{"POST", "/v1/api_keys", "", `{"limits":{"usdc":{"daily_withdrawal_total":1000}}}`}},
		{"APIKeys.Update", func() error {
			_, err := c.APIKeys.Update(ctx, "key_1", &APIKeyUpdateParams{Limits: &Limits{CurrencyBTC: {MaxWithdrawalAmount: Int64(0)}}})
			return err
		}, hit{"PATCH", "/v1/api_keys/key_1", "", `{"limits":{"btc":{"max_withdrawal_amount":0}}}`}},
		{"APIKeys.Update clears limits", func() error {
			_, err := c.APIKeys.Update(ctx, "key_1", &APIKeyUpdateParams{Limits: &Limits{}})
			return err
		}, hit{"PATCH", "/v1/api_keys/key_1", "", `{"limits":{}}`}},
		{"ServiceCredentials.Update", func() error {
			_, err := c.ServiceCredentials.Update(ctx, "sc_1", &ServiceCredentialUpdateParams{Name: new("payouts")})
			return err
		}, hit{"PATCH", "/v1/service_credentials/sc_1", "", `{"name":"payouts"}`}},
		{"APIKeys.List policy filters", func() error {
			_, err := c.APIKeys.List(ctx, &APIKeyListParams{PolicyViolations: true, ExpiringWithin: "P7D"})
			return err
		}, hit{"GET", "/v1/api_keys", "expiring_within=P7D&policy_violations=true", ""}},
		{"KeyPolicy.Get", func() error { _, err := c.KeyPolicy.Get(ctx); return err }, hit{"GET", "/v1/policy", "", ""}},
		{"KeyPolicy.Put", func() error {
			_, err := c.KeyPolicy.Put(ctx, &KeyPolicyParams{MaxKeyLifetimeDays: new(90), RequireExpiry: true})
			return err
		}, hit{"PUT", "/v1/policy", "", `{"max_key_lifetime_days":90,"require_expiry":true}`}},
		{"KeyPolicy.Put nil", func() error { _, err := c.KeyPolicy.Put(ctx, nil); return err }, hit{"PUT", "/v1/policy", "", `{}`}},
		{"APIKeys.Delete", func() error { _, err := c.APIKeys.Delete(ctx, "key_1"); return err }, hit{"DELETE", "/v1/api_keys/key_1", "", ""}},
		{"ServiceCredentials.Create", func() error {
			_, err := c.ServiceCredentials.Create(ctx, &ServiceCredentialCreateParams{Algorithm: "HS256"})
			return err
		}, hit{"POST", "/v1/service_credentials", "", `{"algorithm":"HS256"}`}},
		{"ServiceCredentials.List", func() error { _, err := c.ServiceCredentials.List(ctx, nil); return err }, hit{"GET", "/v1/service_credentials", "", ""}},
		{"ServiceCredentials.Get", func() error { _, err := c.ServiceCredentials.Get(ctx, "sc_1"); return err }, hit{"GET", "/v1/service_credentials/sc_1", "", ""}},
		{"ServiceCredentials.Revoke", func() error { _, err := c.ServiceCredentials.Revoke(ctx, "sc_1"); return err }, hit{"POST", "/v1/service_credentials/sc_1/revoke", "", ""}},
		{"OAuthClients.Create", func() error {
			_, err := c.OAuthClients.Create(ctx, &OAuthClientCreateParams{Name: "App", Type: "public", RedirectURIs: []string{"http://localhost/cb"}, Scopes: []string{"read:balances"}})
			return err
		}, hit{"POST", "/v1/oauth_clients", "", `{"name":"App","type":"public","redirect_uris":["http://localhost/cb"],"scopes":["read:balances"]}`}},
		{"OAuthClients.List", func() error { _, err := c.OAuthClients.List(ctx, &ListParams{Limit: 5}); return err }, hit{"GET", "/v1/oauth_clients", "limit=5", ""}},
		{"OAuthClients.Get", func() error { _, err := c.OAuthClients.Get(ctx, "cli_1"); return err }, hit{"GET", "/v1/oauth_clients/cli_1", "", ""}},
		{"OAuthClients.Delete", func() error { _, err := c.OAuthClients.Delete(ctx, "cli_1"); return err }, hit{"DELETE", "/v1/oauth_clients/cli_1", "", ""}},
		{"OAuthGrants.List", func() error { _, err := c.OAuthGrants.List(ctx, nil); return err }, hit{"GET", "/v1/oauth_grants", "", ""}},
		{"OAuthGrants.Revoke", func() error { _, err := c.OAuthGrants.Revoke(ctx, "grt_1"); return err }, hit{"DELETE", "/v1/oauth_grants/grt_1", "", ""}},
		{"AuditEvents.List", func() error {
			_, err := c.AuditEvents.List(ctx, &AuditEventListParams{Type: "api_key.created", CredentialID: "key_1", CreatedAfter: &after})
			return err
		}, hit{"GET", "/v1/audit_events", "created_after=2025-03-01T12%3A00%3A00Z&credential_id=key_1&type=api_key.created", ""}},
		{"TestHelpers.CreateFunding", func() error {
			_, err := c.TestHelpers.CreateFunding(ctx, &FundingCreateParams{Amount: 100000, Currency: CurrencyBTC, Status: "completed"})
			return err
		}, hit{"POST", "/v1/test_helpers/funding", "", `{"amount":100000,"currency":"btc","status":"completed"}`}},
		{"TestHelpers.CompleteFunding", func() error { _, err := c.TestHelpers.CompleteFunding(ctx, "fnd_1"); return err }, hit{"POST", "/v1/test_helpers/funding/fnd_1/complete", "", ""}},
		{"TestHelpers.CompleteRequest", func() error { _, err := c.TestHelpers.CompleteRequest(ctx, "prq_1"); return err }, hit{"POST", "/v1/test_helpers/requests/prq_1/complete", "", ""}},
		{"TestHelpers.FailRequest", func() error { _, err := c.TestHelpers.FailRequest(ctx, "prq_1"); return err }, hit{"POST", "/v1/test_helpers/requests/prq_1/fail", "", ""}},
		{"escaped id", func() error { _, err := c.Requests.Get(ctx, "../partner"); return err }, hit{"GET", "/v1/requests/..%2Fpartner", "", ""}},
	}
	for _, tc := range cases {
		if err := tc.run(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		mu.Lock()
		got := last
		mu.Unlock()
		if got != tc.want {
			t.Errorf("%s: sent %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestEmptyIDSendsNothing(t *testing.T) {
	var n atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { n.Add(1) })
	if _, err := c.Requests.Cancel(context.Background(), ""); !errors.Is(err, errMissingID) {
		t.Errorf("err = %v", err)
	}
	if n.Load() != 0 {
		t.Errorf("%d requests sent", n.Load())
	}
}

func TestDecodesObjects(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		fmt.Fprint(w, `{"object":"api_key","id":"key_2","type":"secret","environment":"test","name":"ci",
			"prefix":"nx_test_sk_abcd","last4":"wxyz","scopes":["admin:all"],"status":"active",
			"allowed_ips":null,"allowed_origins":null,"expires_at":null,"last_used_at":null,
			"replaced_by":null,"created_at":"2025-01-02T03:04:05Z","key":"nx_test_sk_secret"}`)
	})
	var info ResponseInfo
	k, err := c.APIKeys.Create(context.Background(), nil, CaptureResponse(&info))
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "key_2" || k.Key != "nx_test_sk_secret" || k.Environment != EnvironmentTest || k.CreatedAt.Year() != 2025 || k.ExpiresAt != nil {
		t.Errorf("key = %+v", k)
	}
	if !info.Replayed || info.StatusCode != 201 {
		t.Errorf("info = %+v", info)
	}
}
