package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// Access describes one authenticated request for the access log.
type Access struct {
	Tenant       nexus.Tenant
	CredentialID string
	Actor        string
	Method, Path string
	Status       int
	IP           string
	RequestID    string
	At           time.Time
}

// AccessLog writes access rows in batches, off the request path. Its queue
// is bounded: when full, rows are dropped and counted, and the request is
// never made to wait. Each batch is stored as one chunk per tenant
// (AccessChunk): a database row per request cost more CPU than serving it.
// Credentials are indexed per bucket of about 33 s (AccessCredential).
type AccessLog struct {
	db      bun.IDB
	log     *slog.Logger
	dropped atomic.Int64
	// OnDrop is called for each dropped row (a metric). Optional.
	OnDrop func()

	// The queue is a few slices the writer swaps out whole. A channel cost
	// a lock and a select per row on each side, and one mutex for every
	// request bounced between the cores: about 0.3 µs a request each.
	shards   [queueShards]accessShard
	shardCap int           // rows a shard holds before it drops
	flushAt  int           // rows in a shard that start a write early
	full     chan struct{} // signalled when a shard reaches flushAt

	buffers bufferPool // the writer's
	// indexed holds the credential rows written lately, by bucket, so that
	// a credential costs one row per bucket rather than one per flush.
	// Only the writer uses it.
	indexed map[string]map[AccessCredential]struct{}
}

const queueShards = 8

type accessShard struct {
	mu      sync.Mutex
	pending []Access
	_       [96]byte // a cache line of its own
}

// flushRows starts a write before the interval is up.
const flushRows = 5000

// NewAccessLog returns a log with a queue of size rows.
func NewAccessLog(db bun.IDB, size int, log *slog.Logger) *AccessLog {
	shardCap := max(1, size/queueShards)
	// Early, and before a shard of a small queue is full.
	flushAt := max(1, min(flushRows/queueShards, shardCap/2))
	return &AccessLog{db: db, log: log, shardCap: shardCap, flushAt: flushAt, full: make(chan struct{}, 1)}
}

// Add queues a row without blocking.
func (l *AccessLog) Add(a Access) {
	sh := &l.shards[rand.Uint32()%queueShards]
	sh.mu.Lock()
	n := len(sh.pending)
	if n < l.shardCap {
		sh.pending = append(sh.pending, a)
	}
	sh.mu.Unlock()
	switch {
	case n >= l.shardCap:
		l.dropped.Add(1)
		if l.OnDrop != nil {
			l.OnDrop()
		}
	case n+1 == l.flushAt:
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
}

// Depth is the number of rows waiting.
func (l *AccessLog) Depth() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.pending)
		sh.mu.Unlock()
	}
	return n
}

// Dropped is the number of rows dropped since start.
func (l *AccessLog) Dropped() int64 { return l.dropped.Load() }

// take appends the queued rows to batch, giving each shard an emptied
// spare slice to fill.
func (l *AccessLog) take(batch []Access, spares *[queueShards][]Access) []Access {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		rows := sh.pending
		sh.pending = spares[i][:0]
		sh.mu.Unlock()
		batch = append(batch, rows...)
		clear(rows) // let the strings go
		spares[i] = rows
	}
	return batch
}

// Run writes batches every interval (or at about flushRows rows) until ctx
// ends, then flushes what is queued.
func (l *AccessLog) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var spares [queueShards][]Access
	var batch []Access
	// A write is bounded, not cut short by ctx: a write that shutdown
	// interrupted would lose its rows.
	flush := func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		batch = l.take(batch[:0], &spares)
		if len(batch) > 0 {
			if err := l.write(wctx, batch); err != nil {
				l.log.Warn("access log: batch write failed; rows lost", "rows", len(batch), "err", err)
			}
		}
		clear(batch)
	}
	for {
		select {
		case <-l.full:
			flush()
		case <-t.C:
			flush()
		case <-ctx.Done():
			flush() // what is queued at the end
			return
		}
	}
}

func (l *AccessLog) write(ctx context.Context, batch []Access) error {
	chunks, refs := buildChunks(batch, maxChunkEntries, &l.buffers)
	defer func() {
		for i := range chunks {
			l.buffers.put(chunks[i].Data)
		}
	}()
	refs = l.unindexed(refs)
	var err error
	db, ok := l.db.(*bun.DB)
	switch {
	case ok && db.Dialect().Name() == dialect.PG:
		err = copyChunks(ctx, db, chunks, refs)
	case ok && db.Dialect().Name() == dialect.SQLite:
		err = insertChunks(ctx, db, chunks, refs)
	default:
		err = l.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(&chunks).Exec(ctx); err != nil {
				return err
			}
			if len(refs) == 0 {
				return nil
			}
			_, err := tx.NewInsert().Model(&refs).Ignore().Exec(ctx)
			return err
		})
	}
	if err == nil {
		l.markIndexed(refs)
		// The usage counters follow the rows they count; if this write
		// fails the rows are stored and only the counters miss them.
		if uerr := countUsage(ctx, l.db, batch); uerr != nil {
			l.log.Warn("access log: usage counters not updated", "rows", len(batch), "err", uerr)
		}
	}
	return err
}

// unindexed drops from refs those written already.
func (l *AccessLog) unindexed(refs []AccessCredential) []AccessCredential {
	out := refs[:0]
	for _, r := range refs {
		if _, ok := l.indexed[r.Bucket][r]; !ok {
			out = append(out, r)
		}
	}
	return out
}

// markIndexed remembers refs as written, keeping the two latest buckets:
// entries of an older one are rare (a request that took 30 s), and cost
// only a row that is there already.
func (l *AccessLog) markIndexed(refs []AccessCredential) {
	if l.indexed == nil {
		l.indexed = map[string]map[AccessCredential]struct{}{}
	}
	for _, r := range refs {
		set := l.indexed[r.Bucket]
		if set == nil {
			set = map[AccessCredential]struct{}{}
			l.indexed[r.Bucket] = set
		}
		set[r] = struct{}{}
	}
	for len(l.indexed) > 2 {
		oldest := ""
		for b := range l.indexed {
			if oldest == "" || b < oldest {
				oldest = b
			}
		}
		delete(l.indexed, oldest)
	}
}

const chunkColumns = "id, partner_id, environment, credential_id, actor, bucket, min_id, first_at, last_at, entries, data"

// copyChunks writes chunks with PostgreSQL's binary COPY: a chunk's data
// goes in as bytes, where an INSERT literal (or text COPY) is scanned byte
// by byte, which cost the database about a microsecond per entry. The
// credential rows go in the same transaction: a chunk must never be
// written without them, or filtering by credential would miss it.
func copyChunks(ctx context.Context, db *bun.DB, chunks []AccessChunk, refs []AccessCredential) (err error) {
	var b []byte
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	field := func(v []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	var num [8]byte
	ts := func(t time.Time) {
		binary.BigEndian.PutUint64(num[:], uint64(t.UnixMicro()-pgEpochMicros))
		field(num[:8])
	}
	for i := range chunks {
		c := &chunks[i]
		b = binary.BigEndian.AppendUint16(b, 11) // fields, as chunkColumns
		for _, v := range [...]string{c.ID, c.PartnerID, string(c.Environment), c.CredentialID, c.Actor, c.Bucket, c.MinID} {
			field([]byte(v))
		}
		ts(c.FirstAt)
		ts(c.LastAt)
		binary.BigEndian.PutUint32(num[:4], uint32(c.Entries))
		field(num[:4])
		field(c.Data)
	}
	b = binary.BigEndian.AppendUint16(b, 0xffff) // end of data
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if len(refs) == 0 {
		_, err = pgdriver.CopyFrom(ctx, conn, bytes.NewReader(b), "COPY access_chunks ("+chunkColumns+") FROM STDIN (FORMAT binary)")
		return err
	}
	// COPY runs on the connection itself, outside database/sql's
	// transactions: the transaction is begun and ended by hand.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err = pgdriver.CopyFrom(ctx, conn, bytes.NewReader(b), "COPY access_chunks ("+chunkColumns+") FROM STDIN (FORMAT binary)"); err != nil {
		return err
	}
	cols := [4][]string{}
	for _, r := range refs {
		cols[0] = append(cols[0], r.PartnerID)
		cols[1] = append(cols[1], string(r.Environment))
		cols[2] = append(cols[2], r.CredentialID)
		cols[3] = append(cols[3], r.Bucket)
	}
	if _, err = conn.ExecContext(ctx, "INSERT INTO access_credentials (partner_id, environment, credential_id, bucket) "+
		"SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) ON CONFLICT DO NOTHING",
		pgdialect.Array(cols[0]), pgdialect.Array(cols[1]), pgdialect.Array(cols[2]), pgdialect.Array(cols[3])); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's timestamp origin.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// sqliteTime is how bun writes times for SQLite; rows must compare with
// bun's own arguments (the audit listing's time filters).
const sqliteTime = "2006-01-02 15:04:05.999999-07:00"

// insertChunks writes chunks on SQLite with bound parameters: bun inlines
// arguments into the statement text, which SQLite then scans byte by byte.
func insertChunks(ctx context.Context, db *bun.DB, chunks []AccessChunk, refs []AccessCredential) error {
	tx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO access_chunks ("+chunkColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i := range chunks {
		c := &chunks[i]
		if _, err := stmt.ExecContext(ctx, c.ID, c.PartnerID, string(c.Environment), c.CredentialID, c.Actor, c.Bucket, c.MinID,
			c.FirstAt.UTC().Format(sqliteTime), c.LastAt.UTC().Format(sqliteTime), c.Entries, c.Data); err != nil {
			return err
		}
	}
	if len(refs) > 0 {
		ref, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO access_credentials (partner_id, environment, credential_id, bucket) VALUES (?, ?, ?, ?)")
		if err != nil {
			return err
		}
		defer ref.Close()
		for _, r := range refs {
			if _, err := ref.ExecContext(ctx, r.PartnerID, string(r.Environment), r.CredentialID, r.Bucket); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
