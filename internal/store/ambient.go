package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uptrace/bun"
)

// Ambient is a transaction that spans several Tx calls and is committed by
// its owner: the idempotency middleware runs a request under one, so the
// change the request makes and the answer stored for its key commit
// together or not at all (DESIGN rule 11). Every Tx under its context runs
// in a savepoint of it instead of committing on its own.
//
// The transaction begins at the first Tx, so a request that changes nothing
// holds no connection (and, on SQLite, not the write lock) while it runs.
// An Ambient serves one request: it is not safe for concurrent use.
type Ambient struct {
	db     *DB
	txCtx  context.Context
	tx     bun.Tx
	begun  bool
	ended  bool
	topics []string
}

type ambientKey struct{}

// errAmbientEnded is a Tx attempted after the ambient transaction was
// committed or rolled back: a programming error.
var errAmbientEnded = errors.New("store: transaction of the request already ended")

// WithAmbient returns a context whose Tx calls join a new ambient
// transaction, and that transaction. The caller must end it with Commit or
// Rollback. The transaction lives as long as ctx without its cancellation:
// a client that goes away must not roll back half of what Commit decides.
func (db *DB) WithAmbient(ctx context.Context) (context.Context, *Ambient) {
	a := &Ambient{db: db, txCtx: context.WithoutCancel(ctx)}
	return context.WithValue(ctx, ambientKey{}, a), a
}

func ambientOf(ctx context.Context, db *DB) *Ambient {
	a, _ := ctx.Value(ambientKey{}).(*Ambient)
	if a == nil || a.db != db {
		return nil
	}
	return a
}

func (a *Ambient) begin() error {
	if a.ended {
		return errAmbientEnded
	}
	if a.begun {
		return nil
	}
	if a.db.Dialect == SQLite {
		a.db.writeMu.Lock()
	}
	tx, err := a.db.BeginTx(a.txCtx, nil)
	if err != nil {
		if a.db.Dialect == SQLite {
			a.db.writeMu.Unlock()
		}
		return err
	}
	a.tx, a.begun = tx, true
	return nil
}

// run is Tx inside the ambient transaction: fn runs in a savepoint, so its
// failure undoes its own work only (PostgreSQL would otherwise refuse every
// later statement of the transaction), and its topics wait for Commit.
func (a *Ambient) run(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if err := a.begin(); err != nil {
		return err
	}
	var topics []string
	ctx = context.WithValue(ctx, publishedKey{}, &topics)
	// bun's Tx.RunInTx would call fn with the transaction's context,
	// losing ctx's values (the principal, the audit origin).
	sp, err := a.tx.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(ctx, sp); err != nil {
		if rerr := sp.Rollback(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if err := sp.Commit(); err != nil {
		return err
	}
	a.topics = append(a.topics, topics...)
	return nil
}

// Commit runs fn in the ambient transaction (begun now if no Tx did) and
// commits everything; fn's error or a failed commit rolls everything back.
// Topics published by the joined Tx calls reach this process's subscribers
// after the commit.
func (a *Ambient) Commit(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if err := a.begin(); err != nil {
		return err
	}
	defer a.end()
	if err := fn(ctx, a.tx); err != nil {
		if rerr := a.tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, rerr)
		}
		return err
	}
	a.db.expectEchoes(a.topics)
	err := a.tx.Commit()
	a.end() // the SQLite write lock goes before the hooks run
	a.db.settle(a.topics, true, err)
	return err
}

// Rollback undoes everything the joined Tx calls did. It is a no-op when
// the transaction never began or already ended.
func (a *Ambient) Rollback() error {
	if !a.begun || a.ended {
		a.ended = true
		return nil
	}
	defer a.end()
	err := a.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

func (a *Ambient) end() {
	if a.ended {
		return
	}
	a.ended = true
	if a.begun && a.db.Dialect == SQLite {
		a.db.writeMu.Unlock()
	}
}

// Joined reports whether a Tx joined the ambient transaction: something
// may have been changed.
func (a *Ambient) Joined() bool { return a.begun }
