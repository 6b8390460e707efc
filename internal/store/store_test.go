package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// ---- databases ----

// The helpers live in storetest so that other packages' tests share them.
var (
	forEachDB    = storetest.ForEachDB[*testing.T]
	openSQLite   = storetest.OpenSQLite
	openPostgres = storetest.OpenPostgres
	adminDB      = storetest.AdminDB
)

func migrateUp(t testing.TB, db *store.DB) {
	t.Helper()
	if _, err := db.MigrateUp(context.Background()); err != nil {
		t.Fatalf("migrate up (%s): %v", db.Dialect, err)
	}
}

// ---- schema ----

type column struct {
	typ      string // text, integer or time
	nullable bool
	dflt     bool
	pk       bool
}

func typeClass(t *testing.T, raw string) string {
	s := strings.ToLower(raw)
	switch {
	case s == "text" || strings.HasPrefix(s, "varchar") || strings.HasPrefix(s, "character varying"):
		return "text"
	case s == "integer" || s == "bigint" || s == "int" || s == "int8" || s == "smallint":
		return "integer"
	case strings.HasPrefix(s, "timestamp"):
		return "time"
	case s == "boolean":
		return "boolean"
	case s == "bytea" || s == "blob":
		return "bytes"
	}
	t.Errorf("column type %q has no class in this test; add it", raw)
	return s
}

// schemaOf lists every table's columns as the database reports them.
func schemaOf(t *testing.T, db *store.DB) map[string]map[string]column {
	t.Helper()
	ctx := context.Background()
	var rows *sql.Rows
	var err error
	if db.Dialect == store.Postgres {
		rows, err = db.QueryContext(ctx, `
			SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES', c.column_default IS NOT NULL,
			       EXISTS (SELECT 1 FROM information_schema.table_constraints tc
			               JOIN information_schema.key_column_usage k
			                 ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
			               WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema
			                 AND tc.table_name = c.table_name AND k.column_name = c.column_name)
			FROM information_schema.columns c
			WHERE c.table_schema = current_schema()`)
	} else {
		rows, err = db.QueryContext(ctx, `
			SELECT m.name, p.name, p.type, p."notnull" = 0, p.dflt_value IS NOT NULL, p.pk > 0
			FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`)
	}
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	defer rows.Close()
	out := map[string]map[string]column{}
	for rows.Next() {
		var table, name, typ string
		var c column
		if err := rows.Scan(&table, &name, &typ, &c.nullable, &c.dflt, &c.pk); err != nil {
			t.Fatal(err)
		}
		c.typ = typeClass(t, typ)
		if out[table] == nil {
			out[table] = map[string]column{}
		}
		out[table][name] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tableNames(s map[string]map[string]column) []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// bun's own bookkeeping tables: both dialects must have them, their columns
// are bun's business.
var bunTables = map[string]bool{"bun_migrations": true, "bun_migration_locks": true}

var appTables = []string{"access_chunks", "access_credentials", "api_keys", "audit_events", "cache_invalidations", "partners"}

func TestMigrateUpDownUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		first, err := db.MigrateUp(ctx)
		if err != nil {
			t.Fatalf("first up: %v", err)
		}
		if len(first) == 0 {
			t.Fatal("first up applied nothing")
		}
		s := schemaOf(t, db)
		for _, tbl := range appTables {
			if s[tbl] == nil {
				t.Errorf("after up: table %s missing (have %v)", tbl, tableNames(s))
			}
		}
		again, err := db.MigrateUp(ctx)
		if err != nil || len(again) != 0 {
			t.Fatalf("second up = %v, %v; want nothing to do", again, err)
		}
		st, err := db.MigrateStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st {
			if !m.Applied {
				t.Errorf("status: %s not applied after up", m.Name)
			}
		}

		down, err := db.MigrateDownAll(ctx)
		if err != nil {
			t.Fatalf("down: %v", err)
		}
		if !slices.Equal(sorted(down), sorted(first)) {
			t.Errorf("down rolled back %v, want %v", down, first)
		}
		s = schemaOf(t, db)
		for _, tbl := range appTables {
			if s[tbl] != nil {
				t.Errorf("after down: table %s still exists", tbl)
			}
		}
		st, err = db.MigrateStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st {
			if m.Applied {
				t.Errorf("status: %s applied after down", m.Name)
			}
		}

		second, err := db.MigrateUp(ctx)
		if err != nil {
			t.Fatalf("up after down: %v", err)
		}
		if !slices.Equal(second, first) {
			t.Errorf("up after down applied %v, want %v", second, first)
		}
		s = schemaOf(t, db)
		for _, tbl := range appTables {
			if s[tbl] == nil {
				t.Errorf("after second up: table %s missing", tbl)
			}
		}
		// The migrated database is usable.
		seedPartner(t, db, "ptr_after_redo")
	})
}

func sorted(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

func TestSchemaParity(t *testing.T) {
	lite := openSQLite(t)
	migrateUp(t, lite)
	pg := openPostgres(t)
	migrateUp(t, pg)
	ls, ps := schemaOf(t, lite), schemaOf(t, pg)

	if l, p := tableNames(ls), tableNames(ps); !slices.Equal(l, p) {
		t.Errorf("tables differ:\n sqlite:   %v\n postgres: %v", l, p)
	}
	for _, tbl := range tableNames(ls) {
		pcols, ok := ps[tbl]
		if !ok || bunTables[tbl] {
			continue
		}
		lcols := ls[tbl]
		for name, lc := range lcols {
			pc, ok := pcols[name]
			if !ok {
				t.Errorf("%s.%s: only in sqlite", tbl, name)
				continue
			}
			if lc.typ != pc.typ {
				t.Errorf("%s.%s: type %s in sqlite, %s in postgres", tbl, name, lc.typ, pc.typ)
			}
			if lc.pk != pc.pk {
				t.Errorf("%s.%s: primary key in sqlite %v, in postgres %v", tbl, name, lc.pk, pc.pk)
			}
			// SQLite lets a non-INTEGER primary key hold NULL; PostgreSQL
			// does not. Compare nullability elsewhere only.
			if !lc.pk && lc.nullable != pc.nullable {
				t.Errorf("%s.%s: nullable in sqlite %v, in postgres %v", tbl, name, lc.nullable, pc.nullable)
			}
			// An auto-increment key is a default in PostgreSQL only.
			if !lc.pk && lc.dflt != pc.dflt {
				t.Errorf("%s.%s: has a default in sqlite %v, in postgres %v", tbl, name, lc.dflt, pc.dflt)
			}
		}
		for name := range pcols {
			if _, ok := lcols[name]; !ok {
				t.Errorf("%s.%s: only in postgres", tbl, name)
			}
		}
	}
	for tbl := range bunTables {
		if ls[tbl] == nil || ps[tbl] == nil {
			t.Errorf("bun table %s: sqlite %v, postgres %v", tbl, ls[tbl] != nil, ps[tbl] != nil)
		}
	}
}

// Every column a shared bun model reads or writes exists, in both dialects.
func TestModelsMatchSchema(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		s := schemaOf(t, db)
		for _, model := range []any{(*partner.Row)(nil), (*apikey.Row)(nil), (*audit.Event)(nil), (*audit.AccessChunk)(nil), (*audit.AccessCredential)(nil)} {
			tbl := db.Table(reflect.TypeOf(model).Elem())
			cols := s[tbl.Name]
			if cols == nil {
				t.Errorf("%T: table %s missing", model, tbl.Name)
				continue
			}
			for _, f := range tbl.Fields {
				if _, ok := cols[f.Name]; !ok {
					t.Errorf("%T: column %s.%s missing", model, tbl.Name, f.Name)
				}
			}
			if len(tbl.Fields) != len(cols) {
				t.Errorf("%T maps %d columns, table %s has %d", model, len(tbl.Fields), tbl.Name, len(cols))
			}
		}
		if cols := s["cache_invalidations"]; len(cols) != 3 || cols["id"].typ != "integer" || cols["topic"].typ != "text" || cols["created_at"].typ != "time" {
			t.Errorf("cache_invalidations = %+v", cols)
		}
	})
}

// ---- errors ----

func seedPartner(t testing.TB, db *store.DB, id string) {
	t.Helper()
	now := store.Now()
	row := &partner.Row{ID: id, Name: "Partner " + id, Status: nexus.PartnerApproved, CreatedAt: now, UpdatedAt: now}
	if _, err := db.NewInsert().Model(row).Exec(context.Background()); err != nil {
		t.Fatalf("seed partner %s: %v", id, err)
	}
}

func keyRow(pid string, env nexus.Environment) *apikey.Row {
	now := store.Now()
	id := nexus.NewID("key")
	return &apikey.Row{
		ID: id, PartnerID: pid, Environment: env, Type: apikey.Secret, Name: "k",
		Prefix: "nx_" + string(env) + "_sk_abcd", Last4: "wxyz", KeyHash: "hash_" + id,
		Scopes: "admin:all", Status: apikey.Active, AllowedIPs: []string{}, AllowedOrigins: []string{},
		CreatedAt: now, UpdatedAt: now,
	}
}

func TestIsUniqueViolation(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		ctx := context.Background()
		seedPartner(t, db, "ptr_u")

		// Duplicate primary key.
		now := store.Now()
		_, err := db.NewInsert().Model(&partner.Row{ID: "ptr_u", Name: "dup", Status: nexus.PartnerPending, CreatedAt: now, UpdatedAt: now}).Exec(ctx)
		if err == nil {
			t.Fatal("duplicate primary key inserted")
		}
		if !store.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(%v (%T)) = false for a duplicate primary key", err, err)
		}
		if !store.IsUniqueViolation(fmt.Errorf("create partner: %w", err)) {
			t.Error("IsUniqueViolation does not see through wrapping")
		}

		// Duplicate UNIQUE column, inside a transaction.
		k := keyRow("ptr_u", nexus.Live)
		if _, err := store.CrossTenant(db.DB, "test: rows of several tenants").Insert(k).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		dup := keyRow("ptr_u", nexus.Live)
		dup.KeyHash = k.KeyHash
		err = db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
			_, err := store.CrossTenant(tx, "test: a duplicate row").Insert(dup).Exec(ctx)
			return err
		})
		if !store.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(%v (%T)) = false for a duplicate unique column in a transaction", err, err)
		}

		// Other failures are not unique violations.
		orphan := keyRow("ptr_nobody", nexus.Live)
		_, fkErr := store.CrossTenant(db.DB, "test: rows of several tenants").Insert(orphan).Exec(ctx)
		_, nnErr := db.ExecContext(ctx, "INSERT INTO partners (id) VALUES ('ptr_nn')")
		_, synErr := db.ExecContext(ctx, "INSERT INTO no_such_table VALUES (1)")
		var missing partner.Row
		noRows := db.NewSelect().Model(&missing).Where("id = ?", "ptr_none").Scan(ctx)
		for name, e := range map[string]error{
			"foreign key": fkErr, "not null": nnErr, "unknown table": synErr, "no rows": noRows,
		} {
			if e == nil {
				t.Errorf("%s: expected an error", name)
				continue
			}
			if store.IsUniqueViolation(e) {
				t.Errorf("IsUniqueViolation(%s: %v) = true", name, e)
			}
		}
		for _, e := range []error{nil, errors.New("duplicate key value violates unique constraint"), sql.ErrNoRows, context.Canceled} {
			if store.IsUniqueViolation(e) {
				t.Errorf("IsUniqueViolation(%v) = true", e)
			}
		}
	})
}

func TestOpenAndRedact(t *testing.T) {
	if _, err := store.Open(context.Background(), "mysql://x"); err == nil {
		t.Error("Open accepted a mysql URL")
	}
	if _, err := store.Open(context.Background(), "sqlite:"); err == nil {
		t.Error("Open accepted sqlite: without a path")
	}
	if got := store.RedactURL("postgres://u:secret@h:5432/db?sslmode=disable"); strings.Contains(got, "secret") || !strings.Contains(got, "u:xxxxx@h:5432") {
		t.Errorf("RedactURL = %q", got)
	}
	if got := store.RedactURL("postgres://u@h/db"); got != "postgres://u@h/db" {
		t.Errorf("RedactURL without password = %q", got)
	}
	now := store.Now()
	if now.Location() != time.UTC || now.Nanosecond()%1000 != 0 {
		t.Errorf("Now() = %v: want UTC, microseconds", now)
	}
}

// ---- invalidation ----

// otherHandle opens a second handle on db's database: another instance, as
// far as the invalidation bus is concerned.
func otherHandle(t *testing.T, db *store.DB) *store.DB {
	t.Helper()
	url := db.URL
	if db.Dialect == store.SQLite {
		var file string
		if err := db.QueryRowContext(context.Background(), "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
			t.Fatal(err)
		}
		url = "sqlite:" + file
	}
	other, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// subscribe runs db.Subscribe into a channel and returns once it hears
// changes (its ready signal).
func subscribe(t *testing.T, db *store.DB) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	topics := make(chan string, 1024)
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		db.Subscribe(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), func(topic string) { topics <- topic }, func() { close(ready) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			// See TestSubscribeStopsPromptly: dropping the database ends
			// a PostgreSQL listener's connection.
			t.Logf("%s: Subscribe still running 2 s after cancel", db.Dialect)
		}
	})
	select {
	case <-ready:
	case <-done:
		t.Fatal("Subscribe returned before it heard anything")
	}
	if got := <-topics; got != store.TopicAll {
		t.Fatalf("first drop %q, want %q", got, store.TopicAll)
	}
	return topics
}

func publish(t *testing.T, db *store.DB, topic string, commit bool) {
	t.Helper()
	err := db.Tx(context.Background(), func(ctx context.Context, tx bun.Tx) error {
		if err := db.Publish(ctx, tx, topic); err != nil {
			return err
		}
		if !commit {
			return errors.New("roll back")
		}
		return nil
	})
	if commit && err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

func TestPublishSubscribe(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		topics := subscribe(t, db)
		other := otherHandle(t, db)

		// A rolled-back publication is never heard; the committed one is,
		// within a second.
		publish(t, other, store.TopicKey("key_rolled_back"), false)
		want := store.TopicKey("key_" + strings.ToLower(string(db.Dialect)))
		start := time.Now()
		publish(t, other, want, true)
		timeout := time.After(time.Second)
		for {
			select {
			case got := <-topics:
				switch got {
				case store.TopicKey("key_rolled_back"):
					t.Fatalf("heard a topic published in a rolled-back transaction")
				case want:
					t.Logf("%s: heard %s after %v", db.Dialect, got, time.Since(start))
					// Later ones keep coming in order.
					publish(t, other, store.TopicPartner("ptr_1"), true)
					publish(t, other, store.TopicKey("key_2"), true)
					expectTopics(t, topics, store.TopicPartner("ptr_1"), store.TopicKey("key_2"))
					return
				}
			case <-timeout:
				t.Fatalf("%s not heard within 1 s", want)
			}
		}
	})
}

// An instance drops each topic once: its own changes at commit (the
// OnLocalPublish hooks) and not again when the channel brings them back,
// the others' when the channel brings them.
func TestOneDropPerTopic(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		var mu sync.Mutex
		drops := map[string]int{}
		count := func(topic string) {
			mu.Lock()
			drops[topic]++
			mu.Unlock()
		}
		db.OnLocalPublish(count)
		topics := subscribe(t, db)
		go func() {
			for topic := range topics {
				count(topic)
			}
		}()
		other := otherHandle(t, db)

		var want []string
		for i := range 5 {
			own, theirs := store.TopicKey(fmt.Sprintf("key_own_%d", i)), store.TopicKey(fmt.Sprintf("key_other_%d", i))
			publish(t, db, own, true)
			publish(t, other, theirs, true)
			want = append(want, own, theirs)
		}
		// Through an ambient transaction too (the idempotency middleware's).
		ctx, amb := db.WithAmbient(context.Background())
		if err := db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error { return db.Publish(ctx, tx, "key_ambient") }); err != nil {
			t.Fatal(err)
		}
		if err := amb.Commit(ctx, func(context.Context, bun.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		want = append(want, "key_ambient")
		// The channel delivers in commit order: once a change committed
		// after all of them is heard, every echo has come back (and was
		// skipped) or never will.
		publish(t, other, "last", true)
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := drops["last"]
			mu.Unlock()
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the last topic was never heard")
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, topic := range want {
			if drops[topic] != 1 {
				t.Errorf("%s: %s dropped %d times, want once", db.Dialect, topic, drops[topic])
			}
		}
	})
}

// What runs after a commit (cache drops, and whatever a hook calls, such
// as a Redis that hangs) runs outside the SQLite write lock: a hook that
// blocks does not block the next writer.
func TestHooksRunOutsideWriteLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		release := make(chan struct{})
		blocked := make(chan struct{}, 2)
		db.OnLocalPublish(func(topic string) {
			if topic == "block" {
				blocked <- struct{}{}
				<-release
			}
		})
		defer close(release)
		write := func(ctx context.Context) error { // no lock may be held across it
			return db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error { return db.Publish(ctx, tx, "write") })
		}
		for _, via := range []string{"tx", "ambient"} {
			go func() {
				if via == "tx" {
					publish(t, db, "block", true)
					return
				}
				ctx, amb := db.WithAmbient(context.Background())
				_ = db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error { return db.Publish(ctx, tx, "block") })
				_ = amb.Commit(ctx, func(context.Context, bun.Tx) error { return nil })
			}()
			<-blocked
			errc := make(chan error, 1)
			go func() { errc <- write(context.Background()) }()
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("%s: a write while a hook (after a commit through %s) blocks: %v", db.Dialect, via, err)
				}
			case <-time.After(20 * time.Second): // only tells a deadlock from a slow machine
				t.Fatalf("%s: a write waited 20 s for a hook still running after a commit through %s", db.Dialect, via)
			}
		}
	})
}

// Subscribe's drop(TopicAll) on (re)connecting says "anything before is
// lost, anything after is heard": a change committed right after it must be
// heard. (PostgreSQL's LISTEN is sent without waiting for the server, so
// this needs confirming.)
func TestSubscribeHearsWhatFollowsAll(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		other := otherHandle(t, db)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		for i := range 10 {
			ctx, cancel := context.WithCancel(context.Background())
			topics := make(chan string, 64)
			done := make(chan struct{})
			go func() {
				defer close(done)
				db.Subscribe(ctx, log, func(topic string) { topics <- topic }, nil)
			}()
			if got := <-topics; got != store.TopicAll {
				t.Fatalf("first drop %q, want %q", got, store.TopicAll)
			}
			want := store.TopicKey(fmt.Sprintf("key_after_all_%d", i))
			publish(t, other, want, true)
			timeout := time.After(3 * time.Second)
		wait:
			for {
				select {
				case got := <-topics:
					if got == want {
						break wait
					}
				case <-timeout:
					t.Fatalf("attempt %d: %s, published right after the subscriber's TopicAll, never heard", i, want)
				}
			}
			cancel()
			<-done
		}
	})
}

// Subscribe must return soon after its context ends: the server waits for
// it before returning, so a slow return stalls server shutdown.
func TestSubscribeStopsPromptly(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		ctx, cancel := context.WithCancel(context.Background())
		ready, done := make(chan struct{}), make(chan struct{})
		go func() {
			db.Subscribe(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) {}, func() { close(ready) })
			close(done)
		}()
		<-ready // in its steady state (listening or polling)
		start := time.Now()
		cancel()
		select {
		case <-done:
			t.Logf("%s: Subscribe returned %v after cancel", db.Dialect, time.Since(start))
		case <-time.After(2 * time.Second):
			<-done
			t.Errorf("%s: Subscribe returned %v after cancel, want < 2 s", db.Dialect, time.Since(start))
		}
	})
}

func expectTopics(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	var got []string
	timeout := time.After(time.Second)
	for len(got) < len(want) {
		select {
		case s := <-ch:
			if s == "warmup" {
				continue
			}
			got = append(got, s)
		case <-timeout:
			t.Fatalf("heard %v within 1 s, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("heard %v, want %v", got, want)
	}
}

func TestPruneInvalidations(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		ctx := context.Background()
		if err := db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error { return db.Publish(ctx, tx, "all") }); err != nil {
			t.Fatal(err)
		}
		old := store.Now().Add(-2 * time.Hour)
		if _, err := db.ExecContext(ctx, "INSERT INTO cache_invalidations (topic, created_at) VALUES (?, ?)", "old", old); err != nil {
			t.Fatal(err)
		}
		if err := db.PruneInvalidations(ctx); err != nil {
			t.Fatal(err)
		}
		var topics []string
		if err := db.NewSelect().Table("cache_invalidations").Column("topic").Scan(ctx, &topics); err != nil {
			t.Fatal(err)
		}
		want := []string{"all"}
		if db.Dialect == store.Postgres {
			want = nil // PostgreSQL publishes by NOTIFY alone: no row
		}
		if !slices.Equal(topics, want) {
			t.Errorf("after prune: %v, want %v", topics, want)
		}
	})
}

// ---- lists ----

func TestListPagination(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		ctx := context.Background()
		seedPartner(t, db, "ptr_a")
		seedPartner(t, db, "ptr_b")
		a := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}
		aTest := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Test}
		b := nexus.Tenant{PartnerID: "ptr_b", Environment: nexus.Live}

		var aIDs, aTestIDs, bIDs []string // in creation (ascending id) order
		// Interleave the tenants so their ids interleave too.
		for i := range 5 {
			for _, tc := range []struct {
				t   nexus.Tenant
				ids *[]string
				n   int
			}{{a, &aIDs, 5}, {b, &bIDs, 3}, {aTest, &aTestIDs, 2}} {
				if i >= tc.n {
					continue
				}
				r := keyRow(tc.t.PartnerID, tc.t.Environment)
				if i == 1 {
					r.Status = apikey.Revoked
				}
				if _, err := store.CrossTenant(db.DB, "test: rows of several tenants").Insert(r).Exec(ctx); err != nil {
					t.Fatal(err)
				}
				*tc.ids = append(*tc.ids, r.ID)
			}
		}
		desc := func(ids []string) []string { out := slices.Clone(ids); slices.Reverse(out); return out }
		list := func(tn nexus.Tenant, p store.Page, filter func(*bun.SelectQuery) *bun.SelectQuery) ([]string, bool, error) {
			q := db.NewSelect()
			if filter != nil {
				q = filter(q)
			}
			rows, more, err := store.List[apikey.Row](ctx, db.For(tn), p, q)
			ids := make([]string, len(rows))
			for i, r := range rows {
				if r.PartnerID != tn.PartnerID || r.Environment != tn.Environment {
					t.Errorf("row %s of tenant %s/%s listed for %s/%s", r.ID, r.PartnerID, r.Environment, tn.PartnerID, tn.Environment)
				}
				ids[i] = r.ID
			}
			return ids, more, err
		}

		// Default page: everything, newest first.
		got, more, err := list(a, store.Page{}, nil)
		if err != nil || more || !slices.Equal(got, desc(aIDs)) {
			t.Fatalf("default page = %v, more %v, %v; want %v", got, more, err, desc(aIDs))
		}
		// Walk by two.
		var walked []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			got, more, err := list(a, store.Page{Limit: 2, StartingAfter: cursor}, nil)
			if err != nil {
				t.Fatalf("page after %q: %v", cursor, err)
			}
			if len(got) > 2 {
				t.Fatalf("page of %d rows with limit 2", len(got))
			}
			walked = append(walked, got...)
			if !more {
				break
			}
			cursor = got[len(got)-1]
		}
		if !slices.Equal(walked, desc(aIDs)) {
			t.Errorf("walked %v, want %v", walked, desc(aIDs))
		}
		// A page that ends exactly at the last row has no more.
		if got, more, err := list(a, store.Page{Limit: 5}, nil); err != nil || more || len(got) != 5 {
			t.Errorf("limit 5 of 5 = %d rows, more %v, %v", len(got), more, err)
		}
		if got, more, err := list(a, store.Page{Limit: 4}, nil); err != nil || !more || len(got) != 4 {
			t.Errorf("limit 4 of 5 = %d rows, more %v, %v", len(got), more, err)
		}
		// The last row as cursor: an empty page.
		if got, more, err := list(a, store.Page{StartingAfter: aIDs[0]}, nil); err != nil || more || len(got) != 0 {
			t.Errorf("after the oldest = %v, more %v, %v", got, more, err)
		}
		// A filter composes with the tenant and the cursor.
		revoked := func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("status = ?", apikey.Revoked) }
		if got, _, err := list(a, store.Page{}, revoked); err != nil || !slices.Equal(got, []string{aIDs[1]}) {
			t.Errorf("revoked of a = %v, %v; want [%s]", got, err, aIDs[1])
		}
		if got, _, err := list(a, store.Page{StartingAfter: aIDs[3]}, revoked); err != nil || !slices.Equal(got, []string{aIDs[1]}) {
			t.Errorf("revoked of a after cursor = %v, %v", got, err)
		}
		// Other tenants see their own rows only.
		if got, _, err := list(b, store.Page{}, nil); err != nil || !slices.Equal(got, desc(bIDs)) {
			t.Errorf("b = %v, %v; want %v", got, err, desc(bIDs))
		}
		if got, _, err := list(aTest, store.Page{}, nil); err != nil || !slices.Equal(got, desc(aTestIDs)) {
			t.Errorf("a/test = %v, %v; want %v", got, err, desc(aTestIDs))
		}

		// Foreign cursors: another partner's row, the same partner's row in
		// the other environment, and an id that does not exist.
		for name, c := range map[string]string{
			"other partner":     bIDs[1],
			"other environment": aTestIDs[0],
			"nonexistent":       "key_00000000000000000000000000",
		} {
			got, _, err := list(a, store.Page{StartingAfter: c}, nil)
			var ne *nexus.Error
			if !errors.As(err, &ne) || ne.Code != nexus.CodeParameterInvalid || ne.Param != "starting_after" {
				t.Errorf("%s cursor: rows %v, err %v; want parameter_invalid on starting_after", name, got, err)
			}
			if ne != nil && strings.Contains(ne.Message, c) {
				t.Errorf("%s cursor: the message echoes the id", name)
			}
		}
	})
}

func TestScopedQueries(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		migrateUp(t, db)
		ctx := context.Background()
		seedPartner(t, db, "ptr_a")
		seedPartner(t, db, "ptr_b")
		ra, rb := keyRow("ptr_a", nexus.Live), keyRow("ptr_b", nexus.Live)
		for _, r := range []*apikey.Row{ra, rb} {
			if _, err := store.CrossTenant(db.DB, "test: rows of several tenants").Insert(r).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		a := nexus.Tenant{PartnerID: "ptr_a", Environment: nexus.Live}
		// An update through the tenant's handle cannot touch another tenant's row.
		res, err := db.For(a).Update((*apikey.Row)(nil)).Set("name = ?", "hijacked").Where("id = ?", rb.ID).Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Errorf("scoped update changed %d rows of another tenant", n)
		}
		var row apikey.Row
		err = db.For(a).Select(&row).Where("id = ?", rb.ID).Scan(ctx)
		if !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("scoped select of another tenant's row: %v", err)
		}
		if err := db.For(a).Select(&row).Where("id = ?", ra.ID).Scan(ctx); err != nil || row.ID != ra.ID {
			t.Errorf("scoped select of own row: %v", err)
		}
	})
}
