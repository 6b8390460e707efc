package audit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

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
// never made to wait. Each batch is stored as one chunk per credential
// (AccessChunk): a database row per request cost more CPU than serving it.
type AccessLog struct {
	db      bun.IDB
	queue   chan Access
	log     *slog.Logger
	dropped atomic.Int64
	// OnDrop is called for each dropped row (a metric). Optional.
	OnDrop func()
}

// NewAccessLog returns a log with a queue of size rows.
func NewAccessLog(db bun.IDB, size int, log *slog.Logger) *AccessLog {
	return &AccessLog{db: db, queue: make(chan Access, size), log: log}
}

// Add queues a row without blocking.
func (l *AccessLog) Add(a Access) {
	select {
	case l.queue <- a:
	default:
		l.dropped.Add(1)
		if l.OnDrop != nil {
			l.OnDrop()
		}
	}
}

// Depth is the number of rows waiting.
func (l *AccessLog) Depth() int { return len(l.queue) }

// Dropped is the number of rows dropped since start.
func (l *AccessLog) Dropped() int64 { return l.dropped.Load() }

// Run writes batches every interval (or at 500 rows) until ctx ends, then
// flushes what is queued.
func (l *AccessLog) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	batch := make([]Access, 0, 5000)
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := l.write(ctx, batch); err != nil {
			l.log.Warn("access log: batch write failed; rows lost", "rows", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case a := <-l.queue:
			batch = append(batch, a)
			if len(batch) == cap(batch) {
				flush(ctx)
			}
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				select {
				case a := <-l.queue:
					batch = append(batch, a)
					if len(batch) == cap(batch) {
						flush(fctx)
					}
					continue
				default:
				}
				break
			}
			flush(fctx)
			return
		}
	}
}

func (l *AccessLog) write(ctx context.Context, batch []Access) error {
	chunks := buildChunks(batch, maxChunkEntries)
	_, err := l.db.NewInsert().Model(&chunks).Exec(ctx)
	return err
}
