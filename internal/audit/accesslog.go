package audit

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
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
// never made to wait.
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
	if db, ok := l.db.(*bun.DB); ok {
		switch db.Dialect().Name() {
		case dialect.PG:
			return l.copy(ctx, db, batch)
		case dialect.SQLite:
			return l.prepared(ctx, db, batch)
		}
	}
	rows := make([]Event, len(batch))
	for i, a := range batch {
		rows[i] = Event{
			ID: nexus.NewID("evt"), PartnerID: a.Tenant.PartnerID, Environment: a.Tenant.Environment,
			Type: "api.access", CredentialID: a.CredentialID, Actor: a.Actor, IP: a.IP, RequestID: a.RequestID,
			Method: a.Method, Path: a.Path, Status: a.Status, Data: "{}", CreatedAt: a.At.UTC().Truncate(time.Microsecond),
		}
	}
	_, err := l.db.NewInsert().Model(&rows).Exec(ctx)
	return err
}

const accessColumns = "id, partner_id, environment, type, object_id, credential_id, actor, ip, request_id, method, path, status, data, created_at"

// copy writes a batch with PostgreSQL's COPY: about a third of the database
// CPU of a multi-row INSERT, which matters at one row per request.
func (l *AccessLog) copy(ctx context.Context, db *bun.DB, batch []Access) error {
	var b strings.Builder
	for _, a := range batch {
		for i, v := range [...]string{nexus.NewID("evt"), a.Tenant.PartnerID, string(a.Tenant.Environment), "api.access", "",
			a.CredentialID, a.Actor, a.IP, a.RequestID, a.Method, a.Path, strconv.Itoa(a.Status), "{}",
			a.At.UTC().Format("2006-01-02 15:04:05.999999Z07:00")} {
			if i > 0 {
				b.WriteByte('\t')
			}
			copyEscaper.WriteString(&b, v)
		}
		b.WriteByte('\n')
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = pgdriver.CopyFrom(ctx, conn, strings.NewReader(b.String()), "COPY audit_events ("+accessColumns+") FROM STDIN")
	return err
}

// copyEscaper escapes COPY's text format (a path may hold any byte).
var copyEscaper = strings.NewReplacer("\\", "\\\\", "\t", "\\t", "\n", "\\n", "\r", "\\r")

// sqliteTime is how bun writes times for SQLite; rows must compare with
// bun's own arguments (the audit listing's time filters).
const sqliteTime = "2006-01-02 15:04:05.999999-07:00"

// prepared writes a batch on SQLite with one statement parsed once and run
// per row in one transaction: a 500-row INSERT spent most of its time being
// built and parsed.
func (l *AccessLog) prepared(ctx context.Context, db *bun.DB, batch []Access) error {
	tx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO audit_events ("+accessColumns+") VALUES (?, ?, ?, 'api.access', '', ?, ?, ?, ?, ?, ?, ?, '{}', ?)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, a := range batch {
		if _, err := stmt.ExecContext(ctx, nexus.NewID("evt"), a.Tenant.PartnerID, string(a.Tenant.Environment),
			a.CredentialID, a.Actor, a.IP, a.RequestID, a.Method, a.Path, a.Status, a.At.UTC().Format(sqliteTime)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
