package audit

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
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
	db      *store.DB
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
func NewAccessLog(db *store.DB, size int, log *slog.Logger) *AccessLog {
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

// write stores a batch: its chunks and the credential rows of their
// buckets in one transaction (a chunk must never be written without them,
// or filtering by credential would miss it), then the usage counters. On
// SQLite both take the store's write lock, as every write does.
func (l *AccessLog) write(ctx context.Context, batch []Access) error {
	chunks, refs := buildChunks(batch, maxChunkEntries, &l.buffers)
	defer func() {
		for i := range chunks {
			l.buffers.put(chunks[i].Data)
		}
	}()
	refs = l.unindexed(refs)
	err := l.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// One multi-row insert per table. A chunk's data goes in as one
		// literal of some kilobytes: measured against the binary COPY this
		// replaced, it cost about 0.1 µs a row more of PostgreSQL's CPU,
		// within noise of the whole write (README, Performance).
		w := store.CrossTenant(tx, "batched access-log write: one flush holds rows of many tenants")
		if _, err := w.Insert(&chunks).Exec(ctx); err != nil {
			return err
		}
		if len(refs) == 0 {
			return nil
		}
		// Another instance may have indexed the credential in this bucket.
		_, err := w.Insert(&refs).Ignore().Exec(ctx)
		return err
	})
	if err != nil {
		return err
	}
	l.markIndexed(refs)
	// The usage counters follow the rows they count, in a transaction of
	// their own: if it fails, the rows are stored and only the counters
	// miss them.
	if uerr := l.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error { return countUsage(ctx, tx, batch) }); uerr != nil {
		l.log.Warn("access log: usage counters not updated", "rows", len(batch), "err", uerr)
	}
	return nil
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
