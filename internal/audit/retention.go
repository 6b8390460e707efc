package audit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// DefaultRetention is how long access rows are kept unless told.
const DefaultRetention = 90 * 24 * time.Hour

// ParseRetention reads a retention: a number of days ("90d") or a Go
// duration ("2160h"); "0" or "off" keeps access rows forever.
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "0", "off":
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%q: want a number of days (90d), a duration (2160h), or off", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Hour {
		return 0, fmt.Errorf("%q: want a number of days (90d), a duration of at least 1h, or off", s)
	}
	return d, nil
}

// Pruner deletes access rows older than the retention: access chunks, the
// credential index of their buckets, and access rows in audit_events from
// before chunks existed. Lifecycle events are kept. It deletes in bounded
// batches, each its own statement, so that no statement holds locks or
// builds a transaction of unbounded size.
//
// It is a maintenance job across tenants: its statements name no tenant
// (they go through store.CrossTenant).
type Pruner struct {
	// DB is the database. Required.
	DB bun.IDB
	// Retention is the age past which access rows go. Required (> 0).
	Retention time.Duration
	// Batch bounds the rows one statement deletes. Optional. Default: 1000.
	Batch int
	// Now is the clock. Optional. Default: time.Now.
	Now func() time.Time
	// Logger. Optional. Default: slog.Default().
	Logger *slog.Logger

	// legacyDone is the greatest event id scanned for old access rows:
	// none are written any more, so no scan need pass it again.
	legacyDone string
}

// Pruned counts what one Prune deleted.
type Pruned struct {
	Chunks, Entries, CredentialRows, LegacyRows int64
}

// Prune deletes every access row older than the retention, batch by batch,
// until none is left or ctx ends.
func (p *Pruner) Prune(ctx context.Context) (Pruned, error) {
	var out Pruned
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	batch := p.Batch
	if batch <= 0 {
		batch = 1000
	}
	// Ids begin with their time: everything of a chunk whose greatest id
	// is below the cut-off is older than the retention.
	cutoff := nexus.FirstIDAt("evt", now().Add(-p.Retention))
	db := store.CrossTenant(p.DB, "retention pruning: old access rows of every tenant")
	for {
		var chunks []AccessChunk
		if err := db.Select(&chunks).Column("id", "entries").
			Where("id < ?", cutoff).OrderExpr("id").Limit(int64(batch)).Scan(ctx); err != nil {
			return out, err
		}
		if len(chunks) == 0 {
			break
		}
		ids := make([]string, len(chunks))
		var entries int64
		for i, c := range chunks {
			ids[i] = c.ID
			entries += int64(c.Entries)
		}
		res, err := db.Delete((*AccessChunk)(nil)).Where("id IN (?)", bun.In(ids)).Exec(ctx)
		if err != nil {
			return out, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			out.Chunks += n
		}
		out.Entries += entries
	}
	// A bucket's rows go once the whole bucket is older than the cut-off.
	bucket := bucketOf(cutoff[len("evt_"):])
	for {
		// SQLite has no DELETE … LIMIT in its default build: select, then
		// delete by key, as for chunks.
		var refs []AccessCredential
		if err := db.Select(&refs).Where("bucket < ?", bucket).OrderExpr("bucket").Limit(int64(batch)).Scan(ctx); err != nil {
			return out, err
		}
		if len(refs) == 0 {
			break
		}
		for len(refs) > 0 {
			// A few rows per statement: each is named by its whole key.
			n := min(len(refs), 100)
			q := db.Delete((*AccessCredential)(nil))
			for _, r := range refs[:n] {
				q = q.WhereOr("(partner_id = ? AND environment = ? AND credential_id = ? AND bucket = ?)",
					r.PartnerID, r.Environment, r.CredentialID, r.Bucket)
			}
			res, err := q.Exec(ctx)
			if err != nil {
				return out, err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				out.CredentialRows += n
			}
			refs = refs[n:]
		}
	}
	// Access rows written as audit events, before chunks existed. The scan
	// walks old events in id order once, leaving lifecycle events alone.
	after := p.legacyDone
	defer func() { p.legacyDone = after }()
	for {
		var evs []Event
		q := db.Select(&evs).Column("id", "type").Where("id < ?", cutoff)
		if after != "" {
			q = q.Where("id > ?", after)
		}
		if err := q.OrderExpr("id").Limit(int64(batch)).Scan(ctx); err != nil {
			return out, err
		}
		if len(evs) == 0 {
			break
		}
		after = evs[len(evs)-1].ID
		var ids []string
		for _, e := range evs {
			if e.Type == AccessType {
				ids = append(ids, e.ID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		res, err := db.Delete((*Event)(nil)).Where("id IN (?)", bun.In(ids)).Where("type = ?", AccessType).Exec(ctx)
		if err != nil {
			return out, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			out.LegacyRows += n
		}
	}
	return out, nil
}

// Run prunes at start and then every interval until ctx ends.
func (p *Pruner) Run(ctx context.Context, interval time.Duration) {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := p.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("pruning the access log failed", "err", err, "chunks_deleted", n.Chunks)
		case n.Chunks > 0 || n.LegacyRows > 0:
			log.Info("access log pruned", "retention", p.Retention.String(), "chunks", n.Chunks, "entries", n.Entries, "legacy_rows", n.LegacyRows)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
