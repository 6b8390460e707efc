package e2e

// Money limits on a credential (issue 16 §3): per currency, a cap on one
// withdrawal and on the withdrawals of a UTC day that are not failed or
// cancelled, on API keys and service credentials. The helpers of this file
// are prefixed ml.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// mlLimits is a credential's limits as the API shows them.
type mlLimits map[string]map[string]int64

// mlCred is what the tests read of a key or service credential.
type mlCred struct {
	ID     string   `json:"id"`
	Key    string   `json:"key"`
	Secret string   `json:"secret"`
	Limits mlLimits `json:"limits"`
}

func mlWantLimits(t testing.TB, what string, got, want mlLimits) {
	t.Helper()
	if want == nil {
		want = mlLimits{}
	}
	if got == nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: limits %v, want %v", what, got, want)
	}
}

// mlKey creates a write:requests key with limits through the API.
func mlKey(t testing.TB, api *lgAPI, limits any) mlCred {
	t.Helper()
	body := map[string]any{"name": "limited", "scopes": []string{"write:requests", "read:balances"}}
	if limits != nil {
		body["limits"] = limits
	}
	var k mlCred
	api.post(t, "/v1/api_keys", body).want(t, 201, &k)
	return k
}

func mlGetLimits(t testing.TB, api *lgAPI, path string) mlLimits {
	t.Helper()
	var c mlCred
	api.get(t, path).want(t, 200, &c)
	return c.Limits
}

func TestMoneyLimits(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		t.Run("an API key's limits", func(t *testing.T) {
			t.Parallel()
			_, admin := lgSetup(t, b, "approved")
			admin.credit(t, "usdc", 10_000)
			admin.credit(t, "usdt", 10_000)
			ad := admin.addAddress(t, "ethereum", lgEthAddr())

			want := mlLimits{"usdc": {"max_withdrawal_amount": 500, "daily_withdrawal_total": 1000}}
			k := mlKey(t, admin, want)
			mlWantLimits(t, "create answer", k.Limits, want)
			mlWantLimits(t, "GET", mlGetLimits(t, admin, "/v1/api_keys/"+k.ID), want)
			var page struct {
				Data []mlCred `json:"data"`
			}
			admin.get(t, "/v1/api_keys?limit=100").want(t, 200, &page)
			for _, c := range page.Data {
				if c.ID == k.ID {
					mlWantLimits(t, "list", c.Limits, want)
				} else {
					mlWantLimits(t, "list (the admin key)", c.Limits, nil)
				}
			}

			api := admin.as(k.Key)
			api.withdraw(t, 501, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
			admin.wantBalance(t, "usdc", 10_000, 0)
			if ids := admin.listIDs(t, "/v1/requests", 100); len(ids) != 0 {
				t.Fatalf("a refused withdrawal left requests %v", ids)
			}
			r1 := api.mustWithdraw(t, 500, "usdc", ad.ID)
			r2 := api.mustWithdraw(t, 500, "usdc", ad.ID)
			api.withdraw(t, 1, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
			admin.wantBalance(t, "usdc", 9000, 1000)

			// Cancelled and failed requests stop counting; completed ones count.
			api.transition(t, "/v1/requests/"+r1.ID+"/cancel", "cancelled")
			r3 := api.mustWithdraw(t, 500, "usdc", ad.ID)
			admin.transition(t, "/v1/test_helpers/requests/"+r2.ID+"/fail", "failed")
			admin.transition(t, "/v1/test_helpers/requests/"+r3.ID+"/complete", "completed")
			api.mustWithdraw(t, 500, "usdc", ad.ID)
			api.withdraw(t, 1, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")

			// Other currencies and other credentials are not limited.
			api.mustWithdraw(t, 5000, "usdt", ad.ID)
			admin.mustWithdraw(t, 2000, "usdc", ad.ID)

			// Raised limits apply at once; removed ones too.
			var upd mlCred
			admin.do(t, "PATCH", "/v1/api_keys/"+k.ID, map[string]any{"limits": map[string]any{"usdc": map[string]any{"daily_withdrawal_total": 3000}}}, nil).want(t, 200, &upd)
			mlWantLimits(t, "PATCH answer", upd.Limits, mlLimits{"usdc": {"daily_withdrawal_total": 3000}})
			api.mustWithdraw(t, 2000, "usdc", ad.ID) // 1000 counted today + 2000
			api.withdraw(t, 1, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
			var cleared mlCred
			admin.do(t, "PATCH", "/v1/api_keys/"+k.ID, map[string]any{"limits": map[string]any{}}, nil).want(t, 200, &cleared)
			mlWantLimits(t, "PATCH {} answer", cleared.Limits, nil)
			mlWantLimits(t, "GET after PATCH {}", mlGetLimits(t, admin, "/v1/api_keys/"+k.ID), nil)
			api.mustWithdraw(t, 1000, "usdc", ad.ID)

			// A zero cap refuses every withdrawal in the currency.
			admin.do(t, "PATCH", "/v1/api_keys/"+k.ID, map[string]any{"limits": map[string]any{"usdt": map[string]any{"max_withdrawal_amount": 0}}}, nil).want(t, 200, nil)
			api.withdraw(t, 1, "usdt", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
		})

		t.Run("a daily limit set during the day counts the day's withdrawals", func(t *testing.T) {
			t.Parallel()
			_, admin := lgSetup(t, b, "approved")
			admin.credit(t, "usdc", 10_000)
			ad := admin.addAddress(t, "ethereum", lgEthAddr())
			k := mlKey(t, admin, nil)
			mlWantLimits(t, "create answer without limits", k.Limits, nil)
			api := admin.as(k.Key)
			api.mustWithdraw(t, 700, "usdc", ad.ID)
			c := api.mustWithdraw(t, 100, "usdc", ad.ID)
			api.transition(t, "/v1/requests/"+c.ID+"/cancel", "cancelled")
			admin.do(t, "PATCH", "/v1/api_keys/"+k.ID, map[string]any{"limits": map[string]any{"usdc": map[string]any{"daily_withdrawal_total": 1000}}}, nil).want(t, 200, nil)
			api.withdraw(t, 301, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
			api.mustWithdraw(t, 300, "usdc", ad.ID)
		})

		t.Run("a rotated key's successor keeps the limits and the day's count", func(t *testing.T) {
			t.Parallel()
			_, admin := lgSetup(t, b, "approved")
			admin.credit(t, "usdc", 10_000)
			ad := admin.addAddress(t, "ethereum", lgEthAddr())
			want := mlLimits{"usdc": {"daily_withdrawal_total": 1000}}
			k := mlKey(t, admin, want)
			admin.as(k.Key).mustWithdraw(t, 800, "usdc", ad.ID)
			var next mlCred
			admin.post(t, "/v1/api_keys/"+k.ID+"/rotate", map[string]any{}).want(t, 201, &next)
			mlWantLimits(t, "rotate answer", next.Limits, want)
			api := admin.as(next.Key)
			api.withdraw(t, 201, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
			api.mustWithdraw(t, 200, "usdc", ad.ID)
		})

		t.Run("a service credential's limits", func(t *testing.T) {
			t.Parallel()
			ten, admin := lgSetup(t, b, "approved")
			admin.credit(t, "usdc", 10_000)
			ad := admin.addAddress(t, "ethereum", lgEthAddr())
			s := b.Server(t)
			want := mlLimits{"usdc": {"max_withdrawal_amount": 100}}
			r := do(t, "POST", s.URL+"/v1/service_credentials", bearer(ten.Admin.Key),
				map[string]any{"algorithm": "HS256", "scopes": []string{"write:requests"}, "limits": want})
			wantStatus(t, r, 201)
			var sc mlCred
			r.Decode(t, &sc)
			mlWantLimits(t, "create answer", sc.Limits, want)
			mlWantLimits(t, "GET", mlGetLimits(t, admin, "/v1/service_credentials/"+sc.ID), want)
			api := admin.as(stMint(t, sdk.ServiceTokenParams{CredentialID: sc.ID, Secret: sc.Secret, Service: "payouts"}))
			api.withdraw(t, 101, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
			api.mustWithdraw(t, 100, "usdc", ad.ID)

			var upd mlCred
			admin.do(t, "PATCH", "/v1/service_credentials/"+sc.ID, map[string]any{"limits": map[string]any{"usdc": map[string]any{"max_withdrawal_amount": 200}}}, nil).want(t, 200, &upd)
			mlWantLimits(t, "PATCH answer", upd.Limits, mlLimits{"usdc": {"max_withdrawal_amount": 200}})
			api.mustWithdraw(t, 200, "usdc", ad.ID)
			api.withdraw(t, 201, "usdc", ad.ID).wantErr(t, 422, "limit_exceeded", "amount")
			admin.wantBalance(t, "usdc", 9700, 300)

			admin.do(t, "PATCH", "/v1/service_credentials/"+sc.ID, map[string]any{"limits": map[string]any{"usdc": map[string]any{"max_withdrawal_amount": "1.5"}}}, nil).
				wantErr(t, 400, "parameter_invalid", "limits.usdc.max_withdrawal_amount")
			mlWantLimits(t, "GET after a refused PATCH", mlGetLimits(t, admin, "/v1/service_credentials/"+sc.ID), mlLimits{"usdc": {"max_withdrawal_amount": 200}})
		})

		t.Run("through the Go SDK", func(t *testing.T) {
			t.Parallel()
			ten, admin := lgSetup(t, b, "approved")
			admin.credit(t, "btc", 10_000)
			ad := admin.addAddress(t, "bitcoin", lgBTCBech32)
			ctx := context.Background()
			c := sdk.NewClient(ten.Admin.Key, sdk.WithBaseURL(b.Server(t).URL), sdk.WithMaxRetries(0))
			k, err := c.APIKeys.Create(ctx, &sdk.APIKeyCreateParams{Scopes: []string{"write:requests"},
				Limits: sdk.Limits{sdk.CurrencyBTC: {MaxWithdrawalAmount: sdk.Int64(10)}}})
			if err != nil {
				t.Fatal(err)
			}
			if l := k.Limits[sdk.CurrencyBTC]; l.MaxWithdrawalAmount == nil || *l.MaxWithdrawalAmount != 10 || l.DailyWithdrawalTotal != nil {
				t.Fatalf("created key's limits: %+v", k.Limits)
			}
			kc := sdk.NewClient(k.Key, sdk.WithBaseURL(b.Server(t).URL), sdk.WithMaxRetries(0))
			_, err = kc.Requests.Create(ctx, &sdk.RequestCreateParams{Amount: 11, Currency: sdk.CurrencyBTC, AddressID: ad.ID})
			var apiErr *sdk.Error
			if !sdk.IsCode(err, sdk.CodeLimitExceeded) || !errors.As(err, &apiErr) || apiErr.Param != "amount" {
				t.Fatalf("withdrawal over the limit: %v, want limit_exceeded on amount", err)
			}
			k, err = c.APIKeys.Update(ctx, k.ID, &sdk.APIKeyUpdateParams{Limits: &sdk.Limits{}})
			if err != nil || len(k.Limits) != 0 {
				t.Fatalf("clearing the limits: %+v, %v", k, err)
			}
			if _, err := kc.Requests.Create(ctx, &sdk.RequestCreateParams{Amount: 11, Currency: sdk.CurrencyBTC, AddressID: ad.ID}); err != nil {
				t.Fatalf("withdrawal after the limits were cleared: %v", err)
			}
		})

		t.Run("bad limits are refused naming the parameter and change nothing", func(t *testing.T) {
			t.Parallel()
			_, admin := lgSetup(t, b, "approved")
			want := mlLimits{"btc": {"max_withdrawal_amount": 5}}
			k := mlKey(t, admin, want)
			before := admin.listIDs(t, "/v1/api_keys", 100)
			for _, c := range []struct {
				limits      string
				code, param string
			}{
				{`[]`, "parameter_invalid", "limits"},
				{`5`, "parameter_invalid", "limits"},
				{`{"eur": {"max_withdrawal_amount": 1}}`, "parameter_invalid", "limits.eur"},
				{`{"USDC": {"max_withdrawal_amount": 1}}`, "parameter_invalid", "limits.USDC"},
				{`{"usdc": 5}`, "parameter_invalid", "limits.usdc"},
				{`{"usdc": {"max_withdrawal_amount": -1}}`, "parameter_invalid", "limits.usdc.max_withdrawal_amount"},
				{`{"usdc": {"max_withdrawal_amount": 1.5}}`, "parameter_invalid", "limits.usdc.max_withdrawal_amount"},
				{`{"usdc": {"max_withdrawal_amount": "100"}}`, "parameter_invalid", "limits.usdc.max_withdrawal_amount"},
				{`{"usdc": {"daily_withdrawal_total": 1000000000000001}}`, "parameter_invalid", "limits.usdc.daily_withdrawal_total"},
				{`{"usdc": {"per_day": 1}}`, "parameter_unknown", "limits.usdc.per_day"},
				{`{"btc": {"max_withdrawal_amount": 1}, "usdc": {"max_withdrawal_amount": true}}`, "parameter_invalid", "limits.usdc.max_withdrawal_amount"},
			} {
				body := `{"scopes": ["write:requests"], "limits": ` + c.limits + `}`
				admin.post(t, "/v1/api_keys", json.RawMessage(body)).wantErr(t, 400, c.code, c.param)
				admin.do(t, "PATCH", "/v1/api_keys/"+k.ID, json.RawMessage(`{"limits": `+c.limits+`}`), nil).wantErr(t, 400, c.code, c.param)
				admin.post(t, "/v1/service_credentials", json.RawMessage(`{"algorithm": "HS256", "limits": `+c.limits+`}`)).wantErr(t, 400, c.code, c.param)
			}
			admin.do(t, "PATCH", "/v1/api_keys/"+k.ID, json.RawMessage(`{"limit": {}}`), nil).wantErr(t, 400, "parameter_unknown", "limit")
			if after := admin.listIDs(t, "/v1/api_keys", 100); len(after) != len(before) {
				t.Fatalf("refused creations made keys: %v, before %v", after, before)
			}
			if scs := admin.listIDs(t, "/v1/service_credentials", 100); len(scs) != 0 {
				t.Fatalf("refused creations made service credentials: %v", scs)
			}
			mlWantLimits(t, "GET after refused PATCHes", mlGetLimits(t, admin, "/v1/api_keys/"+k.ID), want)
		})

		t.Run("another tenant's or environment's credential is not found", func(t *testing.T) {
			t.Parallel()
			ten, admin := lgSetup(t, b, "approved")
			_, other := lgSetup(t, b, "approved")
			k := mlKey(t, admin, nil)
			var sc mlCred
			admin.post(t, "/v1/service_credentials", map[string]any{"algorithm": "HS256"}).want(t, 201, &sc)
			live := b.CreateKey(t, ten.Partner.ID, "live", "secret")
			body := map[string]any{"limits": map[string]any{"usdc": map[string]any{"max_withdrawal_amount": 1}}}
			other.do(t, "PATCH", "/v1/api_keys/"+k.ID, body, nil).wantErr(t, 404, "resource_missing", "")
			other.do(t, "PATCH", "/v1/service_credentials/"+sc.ID, body, nil).wantErr(t, 404, "resource_missing", "")
			admin.do(t, "PATCH", "/v1/api_keys/"+live.ID, body, nil).wantErr(t, 404, "resource_missing", "")
			admin.as(live.Key).do(t, "PATCH", "/v1/api_keys/"+k.ID, body, nil).wantErr(t, 404, "resource_missing", "")
			admin.as(live.Key).do(t, "PATCH", "/v1/service_credentials/"+sc.ID, body, nil).wantErr(t, 404, "resource_missing", "")
			mlWantLimits(t, "GET", mlGetLimits(t, admin, "/v1/api_keys/"+k.ID), nil)
			mlWantLimits(t, "GET", mlGetLimits(t, admin, "/v1/service_credentials/"+sc.ID), nil)
			mlWantLimits(t, "GET live key", mlGetLimits(t, admin.as(live.Key), "/v1/api_keys/"+live.ID), nil)
			// A key without admin:all cannot change limits, its own included.
			restricted := mlKey(t, admin, nil)
			admin.as(restricted.Key).do(t, "PATCH", "/v1/api_keys/"+restricted.ID, body, nil).wantErr(t, 403, "insufficient_scope", "")
		})
	})
}

// TestMoneyLimitsConcurrency: 50 concurrent withdrawals against a daily
// total that covers 10 give exactly 10 successes, on one instance and spread
// over two instances of the same database.
func TestMoneyLimitsConcurrency(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		for _, instances := range []int{1, 2} {
			t.Run(fmt.Sprintf("%d instances", instances), func(t *testing.T) {
				t.Parallel()
				_, admin := lgSetup(t, b, "approved")
				admin.credit(t, "usdc", 100_000)
				ad := admin.addAddress(t, "ethereum", lgEthAddr())
				k := mlKey(t, admin, mlLimits{"usdc": {"daily_withdrawal_total": 1000}})
				servers := []*Server{b.Server(t)}
				if instances == 2 {
					servers = append(servers, b.NewServer(t))
				}
				clients := make([]*lgAPI, len(servers))
				for i, s := range servers {
					clients[i] = lgClient(t, s, k.Key, 32)
				}
				const calls, amount = 50, 100
				answers := lgBurst(t, calls, func(i int) (*lgResp, error) {
					return clients[i%len(clients)].send("POST", "/v1/requests", lgWithdrawal(amount, "usdc", ad.ID), nil)
				})
				created, refused := 0, 0
				for _, r := range answers {
					switch r.Status {
					case 201:
						created++
					case 422:
						r.wantErr(t, 422, "limit_exceeded", "amount")
						refused++
					default:
						t.Errorf("unexpected answer: %s", r)
					}
				}
				if created != 10 || refused != 40 {
					t.Fatalf("%d created and %d refused, want 10 and 40", created, refused)
				}
				admin.wantBalance(t, "usdc", 99_000, 1000)
				if n := len(admin.listIDs(t, "/v1/requests", 100)); n != 10 {
					t.Fatalf("%d requests stored, want 10", n)
				}
			})
		}
	})
}

// An operator sets a key's money limits from the CLI, at creation and later.
func TestMoneyLimitsCLI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		p := b.CreatePartner(t, "approved")
		k := b.CreateKeyWith(t, p.ID, "test", "secret", "--limits", `{"usdc": {"max_withdrawal_amount": 5}}`)
		out := b.CLI(t, "admin", "key", "list", "--partner", p.ID, "--id", k.ID)
		var l struct {
			Data []mlCred `json:"data"`
		}
		decodeJSON(t, "admin key list", out, &l)
		if len(l.Data) != 1 {
			t.Fatalf("admin key list: %s", out)
		}
		mlWantLimits(t, "admin key list", l.Data[0].Limits, mlLimits{"usdc": {"max_withdrawal_amount": 5}})

		var got mlCred
		out = b.CLI(t, "admin", "key", "set-limits", "--partner", p.ID, "--id", k.ID, "--limits", `{"btc": {"daily_withdrawal_total": 7}}`)
		decodeJSON(t, "admin key set-limits", out, &got)
		mlWantLimits(t, "admin key set-limits", got.Limits, mlLimits{"btc": {"daily_withdrawal_total": 7}})

		cliError(t, b, "parameter_invalid", "limits.usdc.max_withdrawal_amount", "admin", "key", "set-limits", "--partner", p.ID, "--id", k.ID, "--limits", `{"usdc": {"max_withdrawal_amount": -5}}`)
		cliError(t, b, "parameter_missing", "limits", "admin", "key", "set-limits", "--partner", p.ID, "--id", k.ID)
		cliError(t, b, "parameter_unknown", "limits.btc.daily", "admin", "key", "create", "--partner", p.ID, "--environment", "test", "--limits", `{"btc": {"daily": 7}}`)
		api := lgClient(t, b.Server(t), k.Key, 1)
		mlWantLimits(t, "GET", mlGetLimits(t, api, "/v1/api_keys/"+k.ID), mlLimits{"btc": {"daily_withdrawal_total": 7}})
	})
}
