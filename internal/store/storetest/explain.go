package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/store"
)

// Queries records the SQL that db runs from now on, as bun sent it.
func Queries(db *store.DB) *QueryLog {
	l := &QueryLog{}
	db.DB.AddQueryHook(l)
	return l
}

// QueryLog is what Queries recorded.
type QueryLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *QueryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (l *QueryLog) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, e.Query)
}

// Take returns the queries recorded since the last Take and forgets them.
func (l *QueryLog) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queries
	l.queries = nil
	return q
}

// Explain returns the plan the database chooses for query, one line per
// step: EXPLAIN on PostgreSQL, EXPLAIN QUERY PLAN on SQLite.
func Explain(t testing.TB, db *store.DB, query string) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	switch db.Dialect {
	case store.Postgres:
		rows, err := db.QueryContext(ctx, "EXPLAIN "+query)
		if err != nil {
			t.Fatalf("explain %s: %v", query, err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	default:
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query)
		if err != nil {
			t.Fatalf("explain %s: %v", query, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(lines, "\n")
}
