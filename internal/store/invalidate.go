package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// invalidationChannel is the PostgreSQL NOTIFY channel for cache drops.
const invalidationChannel = "nexus_invalidate"

// Invalidation topics: what a cached verification must be dropped for.
const (
	TopicAll = "all"
	// TopicUnheard says the channel is lost: what is published from now on
	// may not be heard until TopicAll follows, when it is back. Caches
	// decide how long they trust their entries meanwhile (a database
	// outage must not empty them at once, nor let them live unbounded).
	TopicUnheard = "unheard"
)

// TopicKey names one credential (API key, service credential, …) by id.
func TopicKey(id string) string { return "cred:" + id }

// TopicPartner names every credential of a partner.
func TopicPartner(id string) string { return "partner:" + id }

// balancesPrefix starts every topic of the ledger's balances cache.
const balancesPrefix = "balances:"

// TopicBalances names one tenant's cached balances.
func TopicBalances(t nexus.Tenant) string {
	return balancesPrefix + t.PartnerID + ":" + string(t.Environment)
}

// BalancesTenant returns the tenant a TopicBalances topic names.
func BalancesTenant(topic string) (nexus.Tenant, bool) {
	rest, ok := strings.CutPrefix(topic, balancesPrefix)
	if !ok {
		return nexus.Tenant{}, false
	}
	id, env, ok := strings.Cut(rest, ":")
	return nexus.Tenant{PartnerID: id, Environment: nexus.Environment(env)}, ok
}

// IsCredentialTopic reports whether topic concerns cached credential
// verifications: TopicAll, TopicKey or TopicPartner. Credential caches read
// any other topic of theirs as "drop everything", so they must not act on
// another cache's topics (a money movement would empty them).
func IsCredentialTopic(topic string) bool {
	return topic == TopicAll || topic == TopicUnheard || strings.HasPrefix(topic, "cred:") || strings.HasPrefix(topic, "partner:")
}

type invalidationRow struct {
	bun.BaseModel `bun:"table:cache_invalidations"`
	ID            int64     `bun:"id,pk,autoincrement"`
	Topic         string    `bun:"topic"`
	CreatedAt     time.Time `bun:"created_at"`
}

// Bus carries invalidation topics between the instances of a deployment.
// Each deployment has one: the database's own channel (PostgreSQL NOTIFY,
// or the SQLite poll of cache_invalidations), which *DB implements. It is
// the only one because it is transactional (a topic is heard if and only if
// its change committed) and every writer reaches it, the admin CLI
// included; Redis, when configured, carries lockouts, not invalidations.
type Bus interface {
	// Publish announces, inside the caller's transaction, that cached
	// state for topic is stale.
	Publish(ctx context.Context, idb bun.IDB, topic string) error
	// Subscribe calls drop, until ctx ends, for every topic committed by
	// another process (or another handle), and with TopicAll or
	// TopicUnheard when the channel starts, is lost or returns. ready,
	// when not nil, is called once, when changes are first heard.
	Subscribe(ctx context.Context, log *slog.Logger, drop func(topic string), ready func())
}

var _ Bus = (*DB)(nil)

// Publish announces, inside the caller's transaction, that cached state for
// topic is stale. Other instances hear it when the transaction commits: on
// PostgreSQL through NOTIFY (delivered at commit), on SQLite by polling the
// row (which also reaches a server when the CLI, another process, changes
// something). This process's OnLocalPublish hooks get it right after the
// commit.
func (db *DB) Publish(ctx context.Context, idb bun.IDB, topic string) error {
	if l, ok := ctx.Value(publishedKey{}).(*[]string); ok {
		*l = append(*l, topic)
	}
	if db.Dialect == Postgres {
		// NOTIFY alone: the row is for SQLite's poll, and writing it cost a
		// money movement a fifth of its throughput.
		_, err := idb.ExecContext(ctx, "SELECT pg_notify(?, ?)", invalidationChannel, topic)
		return err
	}
	row := &invalidationRow{Topic: topic, CreatedAt: Now()}
	_, err := idb.NewInsert().Model(row).Exec(ctx)
	return err
}

// Subscribe calls drop for every topic another process (or another DB
// handle) commits, until ctx ends; each cache acts on its own topics. The
// topics this handle commits are not repeated: they reached its
// OnLocalPublish hooks at commit, so a process that registers its caches
// there and subscribes them here drops each topic once. When it may have
// missed messages (at start, after a lost PostgreSQL connection) it calls
// drop(TopicAll): a cold cache is slow for a moment, a stale one is a
// security bug. ready, when not nil, is called once, right after the first
// drop(TopicAll): from then on every change is heard.
func (db *DB) Subscribe(ctx context.Context, log *slog.Logger, drop func(topic string), ready func()) {
	e := db.addEchoes()
	defer db.removeEchoes(e)
	var once sync.Once
	heard := func(topic string) {
		if topic == TopicAll {
			// Anything before is lost, echoes included: a credit kept
			// for a change never heard would swallow a later one.
			e.reset()
			drop(topic)
			if ready != nil {
				once.Do(ready)
			}
			return
		}
		if topic == TopicUnheard {
			drop(topic)
			return
		}
		if e.consume(topic) {
			return // this handle's own change, already delivered at commit
		}
		drop(topic)
	}
	if db.Dialect == Postgres {
		db.listen(ctx, log, heard)
		return
	}
	db.poll(ctx, log, heard)
}

// echoes counts, for one subscription, the topics this handle is about to
// commit or has committed and not yet heard back from the channel. The
// channel delivers changes in commit order, so the next time a counted topic
// is heard it is (or comes after, and is covered by) the local delivery.
type echoes struct {
	mu sync.Mutex
	n  map[string]int
}

// maxEchoes bounds the topics awaiting their echo; past it they are
// forgotten, which costs a second drop of each, never a missed one.
const maxEchoes = 10_000

func (e *echoes) reset() {
	e.mu.Lock()
	clear(e.n)
	e.mu.Unlock()
}

func (e *echoes) consume(topic string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.n[topic]
	switch {
	case c == 0:
		return false
	case c == 1:
		delete(e.n, topic)
	default:
		e.n[topic] = c - 1
	}
	return true
}

func (db *DB) addEchoes() *echoes {
	e := &echoes{n: map[string]int{}}
	db.echoMu.Lock()
	db.echoes = append(db.echoes, e)
	db.echoMu.Unlock()
	return e
}

func (db *DB) removeEchoes(e *echoes) {
	db.echoMu.Lock()
	defer db.echoMu.Unlock()
	db.echoes = slices.DeleteFunc(db.echoes, func(x *echoes) bool { return x == e })
}

// expectEchoes counts topics about to commit (before the commit: its echo
// may come back before Tx returns); withdrawEchoes takes them back when the
// commit failed. A change of another process heard meanwhile and taken for
// the echo is covered by the local delivery, which comes after it.
func (db *DB) expectEchoes(topics []string) { db.countEchoes(topics, 1) }

func (db *DB) withdrawEchoes(topics []string) { db.countEchoes(topics, -1) }

func (db *DB) countEchoes(topics []string, d int) {
	if len(topics) == 0 {
		return
	}
	db.echoMu.Lock()
	defer db.echoMu.Unlock()
	for _, e := range db.echoes {
		e.mu.Lock()
		if d > 0 && len(e.n) >= maxEchoes {
			clear(e.n)
		}
		for _, t := range topics {
			if c := e.n[t] + d; c > 0 {
				e.n[t] = c
			} else {
				delete(e.n, t)
			}
		}
		e.mu.Unlock()
	}
}

func (db *DB) listen(ctx context.Context, log *slog.Logger, drop func(string)) {
	ln := pgdriver.NewListener(db.DB)
	defer ln.Close()
	// ReceiveTimeout does not watch ctx: closing the listener wakes it.
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	healthy := false
	for ctx.Err() == nil {
		if !healthy {
			err := ln.Listen(ctx, invalidationChannel)
			if err == nil {
				err = db.confirmListening(ctx, ln, drop)
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("cache invalidation: listen failed; retrying", "err", err)
				// Not heard yet (at start) or again: caches bound their trust.
				drop(TopicUnheard)
				sleep(ctx, time.Second)
				continue
			}
			// Anything published while we were not listening is lost.
			drop(TopicAll)
			healthy = true
			// Once per start or reconnection: says from when changes are heard.
			log.Info("cache invalidation: listening", "channel", "postgres notify")
		}
		_, payload, err := ln.ReceiveTimeout(ctx, 30*time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			log.Warn("cache invalidation: channel lost; cached credentials are trusted for a bounded time, reconnecting", "err", err)
			drop(TopicUnheard)
			healthy = false
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		if !strings.HasPrefix(payload, listenProbe) {
			drop(payload)
		}
	}
}

// listenProbe starts the payloads confirmListening sends itself.
const listenProbe = "probe:"

// confirmListening returns once the listener hears the channel. Listen
// only sends LISTEN without waiting for the server to run it, and a change
// committed before it runs is never heard: the caller's drop(TopicAll)
// would then come too early. A notification of its own, sent until it comes
// back, proves the subscription live; changes heard meanwhile are dropped.
func (db *DB) confirmListening(ctx context.Context, ln *pgdriver.Listener, drop func(string)) error {
	token := listenProbe + nexus.NewID("lsn")
	for range 50 {
		if _, err := db.ExecContext(ctx, "SELECT pg_notify(?, ?)", invalidationChannel, token); err != nil {
			return err
		}
		for {
			_, payload, err := ln.ReceiveTimeout(ctx, 100*time.Millisecond)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
			case err != nil:
				return err
			case payload == token:
				return nil
			case strings.HasPrefix(payload, listenProbe): // another instance's
				continue
			default:
				drop(payload)
				continue
			}
			break // no answer yet: send again
		}
	}
	return errors.New("the listener never heard its own notification")
}

// pollInterval keeps SQLite invalidations well inside the 1 s promise.
const pollInterval = 200 * time.Millisecond

func (db *DB) poll(ctx context.Context, log *slog.Logger, drop func(string)) {
	var last int64
	if err := db.NewSelect().Model((*invalidationRow)(nil)).ColumnExpr("COALESCE(MAX(id), 0)").Scan(ctx, &last); err != nil {
		log.Warn("cache invalidation: initial read failed", "err", err)
	}
	// As on PostgreSQL: from here on every change is heard.
	drop(TopicAll)
	log.Info("cache invalidation: listening", "channel", "sqlite poll")
	unheard := false
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rows []invalidationRow
		if err := db.NewSelect().Model(&rows).Where("id > ?", last).Order("id").Limit(1000).Scan(ctx); err != nil {
			if ctx.Err() == nil {
				if !unheard {
					log.Warn("cache invalidation: poll failed; cached credentials are trusted for a bounded time", "err", err)
				}
				unheard = true
				drop(TopicUnheard)
			}
			continue
		}
		if unheard {
			// Nothing was missed (the rows wait in the table), but the
			// caches must leave their outage mode.
			unheard = false
			drop(TopicAll)
		}
		for _, r := range rows {
			drop(r.Topic)
			last = r.ID
		}
	}
}

// PruneInvalidations deletes announcements older than an hour; every
// instance has long since seen them.
func (db *DB) PruneInvalidations(ctx context.Context) error {
	_, err := db.NewDelete().Model((*invalidationRow)(nil)).Where("created_at < ?", Now().Add(-time.Hour)).Exec(ctx)
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
