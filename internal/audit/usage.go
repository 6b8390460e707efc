package audit

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// UsageHour counts one credential's requests in one hour. Rows are added
// to when the access log flushes, so reading usage never scans the log.
type UsageHour struct {
	bun.BaseModel `bun:"table:usage_hourly,alias:uh"`

	PartnerID    string            `bun:"partner_id,pk"`
	Environment  nexus.Environment `bun:"environment,pk"`
	CredentialID string            `bun:"credential_id,pk"`
	Hour         time.Time         `bun:"hour,pk"`
	Requests     int64             `bun:"requests"`
	Errors       int64             `bun:"errors"`
}

// countUsage adds a batch's requests to the hourly counters: one row per
// credential and hour touched, in one statement.
func countUsage(ctx context.Context, db bun.IDB, batch []Access) error {
	type key struct {
		t    nexus.Tenant
		cred string
		hour int64
	}
	counts := map[key]*UsageHour{}
	for i := range batch {
		a := &batch[i]
		h := a.At.UTC().Truncate(time.Hour)
		k := key{a.Tenant, a.CredentialID, h.Unix()}
		u := counts[k]
		if u == nil {
			u = &UsageHour{PartnerID: a.Tenant.PartnerID, Environment: a.Tenant.Environment, CredentialID: a.CredentialID, Hour: h}
			counts[k] = u
		}
		u.Requests++
		if a.Status >= 400 {
			u.Errors++
		}
	}
	rows := make([]*UsageHour, 0, len(counts))
	for _, u := range counts {
		rows = append(rows, u)
	}
	if len(rows) == 0 {
		return nil
	}
	_, err := store.CrossTenant(db, "usage rollup: one flush counts requests of many tenants").Insert(&rows).
		On("CONFLICT (partner_id, environment, credential_id, hour) DO UPDATE").
		Set("requests = uh.requests + EXCLUDED.requests").
		Set("errors = uh.errors + EXCLUDED.errors").
		Exec(ctx)
	return err
}

// UsageParams choose GET /v1/usage's series.
type UsageParams struct {
	// Granularity is hour (the last 24 hours) or day (the last 30 days).
	// Optional. Default: hour.
	Granularity  string `query:"granularity" validate:"omitempty,oneof=hour day"`
	CredentialID string `query:"credential_id" validate:"omitempty,max=64"`
}

// UsageBucket is one hour's or day's counts.
type UsageBucket struct {
	Start    time.Time `json:"start"`
	Requests int64     `json:"requests"`
	Errors   int64     `json:"errors"`
}

// UsageSeries is one credential's buckets, oldest first, every bucket of
// the window present (zeros included).
type UsageSeries struct {
	CredentialID string        `json:"credential_id"`
	Requests     int64         `json:"requests"`
	Errors       int64         `json:"errors"`
	Buckets      []UsageBucket `json:"buckets"`
}

// Usage is the answer of GET /v1/usage.
type Usage struct {
	Object      string            `json:"object"`
	Environment nexus.Environment `json:"environment"`
	Granularity string            `json:"granularity"`
	Start       time.Time         `json:"start"`
	End         time.Time         `json:"end"`
	// Total is every credential's counts added up, per bucket.
	Total UsageSeries   `json:"total"`
	Data  []UsageSeries `json:"data"`
}

// Usage returns the tenant's requests and errors per credential, per hour
// over the last 24 hours (the current hour included) or per day over the
// last 30 days (today included), from the hourly counters.
func (r *Reader) Usage(ctx context.Context, t nexus.Tenant, p UsageParams) (*Usage, error) {
	return usageAt(ctx, r.db.DB, t, p, time.Now())
}

func usageAt(ctx context.Context, db bun.IDB, t nexus.Tenant, p UsageParams, now time.Time) (*Usage, error) {
	step, n := time.Hour, 24
	end := now.UTC().Truncate(time.Hour).Add(time.Hour)
	if p.Granularity == "day" {
		step, n = 24*time.Hour, 30
		end = now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	} else {
		p.Granularity = "hour"
	}
	start := end.Add(-time.Duration(n) * step)
	var rows []UsageHour
	q := store.For(db, t).Select(&rows).Where("hour >= ?", start).Where("hour < ?", end)
	if p.CredentialID != "" {
		q = q.Where("credential_id = ?", p.CredentialID)
	}
	if err := q.OrderExpr("credential_id, hour").Scan(ctx); err != nil {
		return nil, err
	}
	u := &Usage{Object: "usage", Environment: t.Environment, Granularity: p.Granularity, Start: start, End: end, Data: []UsageSeries{}}
	empty := func(id string) UsageSeries {
		s := UsageSeries{CredentialID: id, Buckets: make([]UsageBucket, n)}
		for i := range s.Buckets {
			s.Buckets[i].Start = start.Add(time.Duration(i) * step)
		}
		return s
	}
	u.Total = empty("")
	for _, row := range rows {
		if len(u.Data) == 0 || u.Data[len(u.Data)-1].CredentialID != row.CredentialID {
			u.Data = append(u.Data, empty(row.CredentialID))
		}
		s := &u.Data[len(u.Data)-1]
		i := int(row.Hour.UTC().Sub(start) / step)
		if i < 0 || i >= n {
			continue
		}
		for _, x := range []*UsageSeries{s, &u.Total} {
			x.Buckets[i].Requests += row.Requests
			x.Buckets[i].Errors += row.Errors
			x.Requests += row.Requests
			x.Errors += row.Errors
		}
	}
	return u, nil
}
