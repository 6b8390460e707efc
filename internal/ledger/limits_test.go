package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

func TestParseLimits(t *testing.T) {
	for _, c := range []struct {
		in          string
		code        nexus.Code
		param       string
		currencies  int
		dailyOfUSDC int64
	}{
		{in: ``},
		{in: `null`},
		{in: `{}`},
		{in: `{"usdc": null}`},
		{in: `{"usdc": {}}`},
		{in: `{"usdc": {"daily_withdrawal_total": 0}, "btc": {"max_withdrawal_amount": null}}`, currencies: 1},
		{in: `{"usdc": {"daily_withdrawal_total": 1000000000000000}}`, currencies: 1, dailyOfUSDC: 1000000000000000},
		{in: `"x"`, code: nexus.CodeParameterInvalid, param: "limits"},
		{in: `{"usdc": []}`, code: nexus.CodeParameterInvalid, param: "limits.usdc"},
		{in: `{"xrp": {}}`, code: nexus.CodeParameterInvalid, param: "limits.xrp"},
		{in: `{"usdc": {"max_withdrawal_amount": 1e3}}`, code: nexus.CodeParameterInvalid, param: "limits.usdc.max_withdrawal_amount"},
		{in: `{"usdc": {"b": 1, "a": 2}}`, code: nexus.CodeParameterUnknown, param: "limits.usdc.a"},
	} {
		l, err := ParseLimits(json.RawMessage(c.in))
		if c.code != "" {
			var ne *nexus.Error
			if nexus.CodeOf(err) != c.code || !errors.As(err, &ne) || ne.Param != c.param {
				t.Errorf("%s: error %v, want %s on %s", c.in, err, c.code, c.param)
			}
			continue
		}
		if err != nil || len(l) != c.currencies {
			t.Errorf("%s: %v, %v; want %d currencies", c.in, l, err, c.currencies)
			continue
		}
		if c.dailyOfUSDC != 0 && *l[USDC].DailyWithdrawalTotal != c.dailyOfUSDC {
			t.Errorf("%s: %v", c.in, l)
		}
	}
}

// BenchmarkCreateRequest measures a withdrawal by a credential without
// limits and by one whose daily total is counted (one more read and a
// conditional update of its counter row in the same transaction).
func BenchmarkCreateRequest(b *testing.B) {
	storetest.ForEachDB(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		if _, err := db.MigrateUp(ctx); err != nil {
			b.Fatal(err)
		}
		s := NewService(db)
		p, err := partner.NewService(db).Create(ctx, partner.CreateParams{Name: "bench", Status: nexus.PartnerApproved})
		if err != nil {
			b.Fatal(err)
		}
		tn := nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}
		if _, err := s.CreateFunding(ctx, tn, CreateFundingParams{Amount: MaxAmount, Currency: USDC, Status: FundingCompleted}); err != nil {
			b.Fatal(err)
		}
		ad, err := s.CreateAddress(ctx, tn, CreateAddressParams{Network: Ethereum, Address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"})
		if err != nil {
			b.Fatal(err)
		}
		daily := int64(MaxAmount)
		err = db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
			return SaveLimits(ctx, tx, tn, "key_limited", Limits{USDC: {DailyWithdrawalTotal: &daily}})
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct{ name, cred string }{{"no limits", "key_free"}, {"daily limit", "key_limited"}} {
			b.Run(c.name, func(b *testing.B) {
				ctx := nexus.WithPrincipal(ctx, &nexus.Principal{CredentialID: c.cred})
				for b.Loop() {
					if _, err := s.CreateRequest(ctx, tn, CreateRequestParams{Type: "withdrawal", Amount: 1, Currency: USDC, AddressID: ad.ID}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
