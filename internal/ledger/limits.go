package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Money limits on a credential (API keys and service credentials): per
// currency, a cap on one withdrawal and a cap on the withdrawals of one UTC
// day that are not failed or cancelled. They are enforced like balances
// (DESIGN rule 4): the day's total is a counter row moved by a conditional
// update in the transaction that reserves the amount, so concurrent requests
// on any number of instances never overshoot it.

// Limit is one currency's limits; a nil field is no limit.
type Limit struct {
	MaxWithdrawalAmount  *int64 `json:"max_withdrawal_amount,omitempty"`
	DailyWithdrawalTotal *int64 `json:"daily_withdrawal_total,omitempty"`
}

// Limits are a credential's limits by currency, as the API shows them.
type Limits map[Currency]Limit

// limitRow is one currency's stored limits.
type limitRow struct {
	bun.BaseModel `bun:"table:credential_limits"`

	PartnerID            string            `bun:"partner_id,pk"`
	Environment          nexus.Environment `bun:"environment,pk"`
	CredentialID         string            `bun:"credential_id,pk"`
	Currency             Currency          `bun:"currency,pk"`
	MaxWithdrawalAmount  *int64            `bun:"max_withdrawal_amount"`
	DailyWithdrawalTotal *int64            `bun:"daily_withdrawal_total"`
}

// usageRow counts one credential's withdrawals of one UTC day in one
// currency. It exists only while the credential has a daily limit in it.
type usageRow struct {
	bun.BaseModel `bun:"table:credential_limit_usage"`

	PartnerID    string            `bun:"partner_id,pk"`
	Environment  nexus.Environment `bun:"environment,pk"`
	CredentialID string            `bun:"credential_id,pk"`
	Day          string            `bun:"day,pk"`
	Currency     Currency          `bun:"currency,pk"`
	Used         int64             `bun:"used"`
}

var limitFields = []string{"daily_withdrawal_total", "max_withdrawal_amount"}

// ParseLimits reads the `limits` parameter: an object keyed by currency,
// each value an object with max_withdrawal_amount and/or
// daily_withdrawal_total, integers in minor units from 0 (no withdrawal at
// all) to MaxAmount. Every refusal names the parameter at fault
// ("limits.usdc.daily_withdrawal_total"). Absent or null gives nil.
func ParseLimits(raw json.RawMessage) (Limits, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var byCur map[string]json.RawMessage
	if err := json.Unmarshal(raw, &byCur); err != nil || byCur == nil {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "limits", "limits must be an object keyed by currency (btc, usdc, usdt)")
	}
	out := Limits{}
	for _, cur := range sortedKeys(byCur) {
		param := "limits." + cur
		c := Currency(cur)
		if !c.Valid() {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, param, "unknown currency %q: limits are keyed by btc, usdc or usdt", cur)
		}
		if v := bytes.TrimSpace(byCur[cur]); string(v) == "null" {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(byCur[cur], &fields); err != nil || fields == nil {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, param, "%s must be an object with max_withdrawal_amount and/or daily_withdrawal_total", param)
		}
		var l Limit
		for _, name := range sortedKeys(fields) {
			fp := param + "." + name
			if !slices.Contains(limitFields, name) {
				return nil, nexus.ParamError(nexus.CodeParameterUnknown, fp, "unknown parameter: %s", fp)
			}
			v := bytes.TrimSpace(fields[name])
			if string(v) == "null" {
				continue
			}
			var n int64
			if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > MaxAmount {
				return nil, nexus.ParamError(nexus.CodeParameterInvalid, fp, "%s must be an integer amount in minor units from 0 to %d", fp, int64(MaxAmount))
			}
			if name == "max_withdrawal_amount" {
				l.MaxWithdrawalAmount = &n
			} else {
				l.DailyWithdrawalTotal = &n
			}
		}
		if l.MaxWithdrawalAmount != nil || l.DailyWithdrawalTotal != nil {
			out[c] = l
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// LoadLimits returns the limits of the tenant's credentials ids, an empty
// Limits for those without any.
func LoadLimits(ctx context.Context, idb bun.IDB, t nexus.Tenant, ids ...string) (map[string]Limits, error) {
	out := make(map[string]Limits, len(ids))
	for _, id := range ids {
		out[id] = Limits{}
	}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []limitRow
	if err := store.For(idb, t).Select(&rows).Where("credential_id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.CredentialID][r.Currency] = Limit{MaxWithdrawalAmount: r.MaxWithdrawalAmount, DailyWithdrawalTotal: r.DailyWithdrawalTotal}
	}
	return out, nil
}

// SaveLimits replaces the limits of credential id with l, in tx (the
// transaction that creates or changes the credential). A daily limit set
// during a day counts that day's withdrawals made before it; a daily limit
// removed forgets its counters.
func SaveLimits(ctx context.Context, tx bun.Tx, t nexus.Tenant, id string, l Limits) error {
	sc := store.For(tx, t)
	if _, err := sc.Delete((*limitRow)(nil)).Where("credential_id = ?", id).Exec(ctx); err != nil {
		return err
	}
	now := store.Now()
	day, start, end := utcDay(now)
	for _, c := range Currencies {
		cl, ok := l[c]
		if ok {
			row := &limitRow{CredentialID: id, Currency: c, MaxWithdrawalAmount: cl.MaxWithdrawalAmount, DailyWithdrawalTotal: cl.DailyWithdrawalTotal}
			if _, err := sc.Insert(row).Exec(ctx); err != nil {
				return err
			}
		}
		if !ok || cl.DailyWithdrawalTotal == nil {
			if _, err := sc.Delete((*usageRow)(nil)).
				Where("credential_id = ?", id).Where("currency = ?", c).Exec(ctx); err != nil {
				return err
			}
			continue
		}
		// An existing counter is exact (every withdrawal since the limit
		// was set moved it); a new one starts from today's requests, summed
		// in the insert itself (one statement, as reserveLimit's update).
		today := sc.Select((*Request)(nil)).ColumnExpr("COALESCE(SUM(?TableAlias.amount), 0)").
			Where("?TableAlias.credential_id = ?", id).Where("?TableAlias.currency = ?", c).
			Where("?TableAlias.created_at >= ?", start).Where("?TableAlias.created_at < ?", end).
			Where("?TableAlias.status NOT IN (?)", bun.In(statuses(RequestFailed, RequestCancelled)))
		_, err := sc.Insert(&usageRow{CredentialID: id, Day: day, Currency: c}).Value("used", "(?)", today).
			On("CONFLICT DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
	}
	return nil
}

// CopyLimits gives credential to the limits of credential from and today's
// withdrawals counted against them, so that a rotated key's successor does
// not start the day with a fresh allowance.
func CopyLimits(ctx context.Context, tx bun.Tx, t nexus.Tenant, from, to string) error {
	ls, err := LoadLimits(ctx, tx, t, from)
	if err != nil {
		return err
	}
	if err := SaveLimits(ctx, tx, t, to, ls[from]); err != nil {
		return err
	}
	day, _, _ := utcDay(store.Now())
	sc := store.For(tx, t)
	var used []usageRow
	if err := sc.Select(&used).Where("credential_id = ?", from).Where("day = ?", day).Scan(ctx); err != nil {
		return err
	}
	for _, u := range used {
		if _, err := sc.Update((*usageRow)(nil)).Set("used = ?", u.Used).
			Where("credential_id = ?", to).Where("day = ?", day).Where("currency = ?", u.Currency).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// DeleteLimits forgets every limit and counter of credential id.
func DeleteLimits(ctx context.Context, tx bun.Tx, t nexus.Tenant, id string) error {
	return SaveLimits(ctx, tx, t, id, nil)
}

// utcDay names the UTC day of now and bounds it.
func utcDay(now time.Time) (day string, start, end time.Time) {
	now = now.UTC()
	start = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	return start.Format(time.DateOnly), start, start.AddDate(0, 0, 1)
}

// reserveLimit checks a withdrawal of amount c by credential id of sc's
// tenant, made at now, against the credential's limits, and counts it
// against the day's total, in sc's transaction. It answers 422
// limit_exceeded when a limit refuses it; the caller's transaction then
// rolls back, so nothing changes.
func reserveLimit(ctx context.Context, sc store.Scope, id string, c Currency, amount int64, now time.Time) error {
	if id == "" {
		return nil
	}
	var l limitRow
	err := sc.Select(&l).Where("credential_id = ?", id).Where("currency = ?", c).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.MaxWithdrawalAmount != nil && amount > *l.MaxWithdrawalAmount {
		return nexus.ParamError(nexus.CodeLimitExceeded, "amount",
			"the amount is over this credential's max_withdrawal_amount for %s (%d)", c, *l.MaxWithdrawalAmount)
	}
	if l.DailyWithdrawalTotal == nil {
		return nil
	}
	day, _, _ := utcDay(now)
	if _, err := sc.Insert(&usageRow{CredentialID: id, Day: day, Currency: c}).On("CONFLICT DO NOTHING").Exec(ctx); err != nil {
		return err
	}
	res, err := sc.Update((*usageRow)(nil)).
		Set("used = used + ?", amount).
		Where("credential_id = ?", id).Where("day = ?", day).Where("currency = ?", c).
		Where("used + ? <= ?", amount, *l.DailyWithdrawalTotal).Exec(ctx)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return err
		}
		return nexus.ParamError(nexus.CodeLimitExceeded, "amount",
			"this withdrawal would take the credential's %s withdrawals of today (UTC) over its daily_withdrawal_total (%d)", c, *l.DailyWithdrawalTotal)
	}
	return nil
}

// releaseLimit gives a failed or cancelled request's amount back to the
// daily total of the day it was made on, if that day is counted.
func releaseLimit(ctx context.Context, sc store.Scope, r *Request) error {
	if r.CredentialID == "" {
		return nil
	}
	day, _, _ := utcDay(r.CreatedAt)
	_, err := sc.Update((*usageRow)(nil)).
		Set("used = used - ?", r.Amount).
		Where("credential_id = ?", r.CredentialID).Where("day = ?", day).Where("currency = ?", r.Currency).
		Where("used >= ?", r.Amount).Exec(ctx)
	return err
}
