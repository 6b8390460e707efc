// Package store opens the database (PostgreSQL or embedded SQLite), applies
// the embedded migrations, runs transactions and translates driver errors
// into contract errors by their codes.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/driver/sqliteshim"
	"modernc.org/sqlite"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// Dialect names the database engine behind a DB.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is the database handle every store uses.
type DB struct {
	*bun.DB
	Dialect Dialect
	// URL is the connection string it was opened with (PostgreSQL only; the
	// invalidation listener opens its own connection from it).
	URL string

	// writeMu queues SQLite write transactions in Go: SQLite has one
	// writer, and waiting here is cheaper than sleeping in busy_timeout.
	writeMu sync.Mutex

	localMu sync.RWMutex
	local   []func(topic string)

	// echoes are the running subscriptions' counts of this handle's own
	// topics, which they skip when the channel brings them back.
	echoMu sync.Mutex
	echoes []*echoes
}

// DefaultSQLitePath is where the embedded database lives when no URL is given.
const DefaultSQLitePath = "data/nexus.db"

// Pool sizes the connection pool of a DB. Zero fields take the defaults.
type Pool struct {
	// MaxConns bounds open connections. Optional. Default: 32 on
	// PostgreSQL, 8 on SQLite.
	MaxConns int
	// MaxIdleConns bounds idle connections kept open. Optional. Default:
	// MaxConns (a smaller idle pool makes PostgreSQL fork a new backend
	// every few milliseconds under load).
	MaxIdleConns int
	// ConnMaxLifetime closes connections older than this (to follow a
	// failover or rebalance behind a pooler). Optional. Default: no limit.
	ConnMaxLifetime time.Duration
}

func (p Pool) apply(sqldb *sql.DB, defaultMax int) {
	if p.MaxConns <= 0 {
		p.MaxConns = defaultMax
	}
	if p.MaxIdleConns <= 0 || p.MaxIdleConns > p.MaxConns {
		p.MaxIdleConns = p.MaxConns
	}
	sqldb.SetMaxOpenConns(p.MaxConns)
	sqldb.SetMaxIdleConns(p.MaxIdleConns)
	sqldb.SetConnMaxLifetime(p.ConnMaxLifetime)
}

// Open connects to url: "postgres://…" or "sqlite:PATH" (empty: the default
// SQLite file), with the default pool.
func Open(ctx context.Context, rawURL string) (*DB, error) { return OpenPool(ctx, rawURL, Pool{}) }

// OpenPool is Open with the pool sized by p.
func OpenPool(ctx context.Context, rawURL string, p Pool) (*DB, error) {
	if rawURL == "" {
		rawURL = "sqlite:" + DefaultSQLitePath
	}
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(rawURL)))
		p.apply(sqldb, 32)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		db := &DB{DB: bun.NewDB(sqldb, pgdialect.New()), Dialect: Postgres, URL: rawURL}
		if err := pingRetry(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect to postgres: %w", redactErr(err, rawURL))
		}
		return db, nil
	case strings.HasPrefix(rawURL, "sqlite:"):
		path, _ := SQLitePath(rawURL)
		if path == "" {
			return nil, errors.New("sqlite url needs a path: sqlite:PATH")
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create database folder: %w", err)
			}
		}
		// WAL lets readers run beside the writer; IMMEDIATE transactions take
		// the write lock up front so two writers queue on busy_timeout
		// instead of failing when a read lock would need upgrading.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
		sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		p.apply(sqldb, 8) // idle as open: reopening runs the pragmas and reads the schema again
		db := &DB{DB: bun.NewDB(sqldb, sqlitedialect.New()), Dialect: SQLite}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		return db, nil
	}
	return nil, errors.New("database url must start with postgres:// or sqlite:")
}

func pingRetry(ctx context.Context, db *DB) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = db.PingContext(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
	return err
}

// redactErr keeps a password in the URL out of error messages and logs.
func redactErr(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

// RedactURL returns the URL with its password replaced, for logs.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

type publishedKey struct{}

// Tx runs fn in a transaction, committing when it returns nil. Topics
// published inside it reach this process's OnLocalPublish hooks right after
// the commit (other processes hear them through Subscribe).
//
// Under a context from WithAmbient, fn runs in a savepoint of the ambient
// transaction instead, and commits with it.
func (db *DB) Tx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if a := ambientOf(ctx, db); a != nil {
		return a.run(ctx, fn)
	}
	var topics []string
	ctx = context.WithValue(ctx, publishedKey{}, &topics)
	committing := false
	err := db.runTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		committing = true
		db.expectEchoes(topics)
		return nil
	})
	// Outside the SQLite write lock: what the hooks do (drop caches, and
	// whatever a hook may call) must never hold up the next writer.
	db.settle(topics, committing, err)
	return err
}

// runTx is RunInTx, queued behind the other SQLite writers of this process.
func (db *DB) runTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if db.Dialect == SQLite {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	return db.RunInTx(ctx, nil, fn)
}

// settle delivers the topics of a transaction that reached its commit. A
// commit that failed may still have happened (a connection lost in the
// middle), so its topics are delivered too, and not expected back.
func (db *DB) settle(topics []string, committing bool, err error) {
	if !committing {
		return
	}
	if err != nil {
		db.withdrawEchoes(topics)
	}
	db.deliver(topics)
}

// deliver hands committed topics to this process's hooks. The caller holds
// no lock.
func (db *DB) deliver(topics []string) {
	if len(topics) == 0 {
		return
	}
	db.localMu.RLock()
	defer db.localMu.RUnlock()
	for _, t := range topics {
		for _, f := range db.local {
			f(t)
		}
	}
}

// OnLocalPublish registers f for topics this handle publishes, called
// after their transaction commits, with no lock held. Subscribe does not
// repeat them.
func (db *DB) OnLocalPublish(f func(topic string)) {
	db.localMu.Lock()
	defer db.localMu.Unlock()
	db.local = append(db.local, f)
}

// Scoped adds the tenant conditions to a query on a tenant table. It is the
// one way tenant rows are read or changed (DESIGN rule 1).
func Scoped[Q interface {
	Where(string, ...any) Q
}](q Q, t nexus.Tenant) Q {
	return q.Where("?TableAlias.partner_id = ?", t.PartnerID).Where("?TableAlias.environment = ?", string(t.Environment))
}

// IsUniqueViolation reports a unique or primary key constraint failure, by
// SQLSTATE on PostgreSQL and by extended result code on SQLite.
func IsUniqueViolation(err error) bool {
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C') == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		const constraintUnique, constraintPrimaryKey = 2067, 1555
		return sqErr.Code() == constraintUnique || sqErr.Code() == constraintPrimaryKey
	}
	return false
}

// NotFound turns sql.ErrNoRows into the contract's resource_missing, naming
// the kind of object, and passes other errors through.
func NotFound(err error, kind, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nexus.NotFound(kind, id)
	}
	return err
}

// Now is the database-independent current time: UTC, microseconds (both
// dialects keep that precision, so round trips compare equal).
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
