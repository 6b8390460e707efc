package store_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/nexus-fintech/nexus/internal/store"
)

// tenantKeys is the migration that put partner_id in every tenant table's
// keys; the test below seeds rows in the schema before it.
const tenantKeys = "20261202001400"

// rollBackTo rolls back, one step at a time, every migration from name on.
func rollBackTo(t *testing.T, db *store.DB, name string) {
	t.Helper()
	for {
		applied, _ := statusOf(t, db)
		if !slices.ContainsFunc(applied, func(m string) bool { return m >= name }) {
			return
		}
		if _, err := db.MigrateDown(context.Background()); err != nil {
			t.Fatalf("roll back to %s: %v", name, err)
		}
	}
}

type seedRow struct {
	table string
	cols  map[string]any
}

// tenantSeed is one row of every tenant table of partner ptr_a, as the
// schema before tenantKeys had them, plus a code whose grant is gone.
func tenantSeed() []seedRow {
	now := store.Now()
	later := now.Add(3600e9)
	a := func(m map[string]any) map[string]any { m["partner_id"] = "ptr_a"; return m }
	ae := func(m map[string]any) map[string]any { m["environment"] = "live"; return a(m) }
	return []seedRow{
		{"api_keys", ae(map[string]any{"id": "key_1", "type": "secret", "name": "k", "prefix": "nx_live_sk_abcd", "last4": "wxyz",
			"key_hash": "hash_key_1", "scopes": "admin:all", "status": "active", "allowed_ips": "[]", "allowed_origins": "[]", "created_at": now, "updated_at": now})},
		{"audit_events", ae(map[string]any{"id": "evt_1", "type": "api_key.created", "object_id": "key_1", "data": `{"a":1}`, "created_at": now})},
		{"balances", ae(map[string]any{"currency": "btc", "available": 5, "pending": 1, "updated_at": now})},
		{"funding", ae(map[string]any{"id": "fnd_1", "amount": 10, "currency": "btc", "status": "pending", "created_at": now, "updated_at": now})},
		{"addresses", ae(map[string]any{"id": "adr_1", "network": "bitcoin", "address": "bc1q", "address_key": "bc1q", "status": "active", "created_at": now, "updated_at": now})},
		{"requests", ae(map[string]any{"id": "req_1", "type": "withdrawal", "amount": 3, "currency": "btc", "address_id": "adr_1", "status": "pending",
			"created_at": now, "updated_at": now, "credential_id": "key_1"})},
		{"idempotency_keys", ae(map[string]any{"key": "idem_1", "request_hash": "h", "state": "done", "created_at": now, "expires_at": later})},
		{"service_credentials", ae(map[string]any{"id": "svc_1", "algorithm": "HS256", "scopes": "balances:read", "status": "active",
			"created_at": now, "updated_at": now, "secret_hash": "hash_svc_1"})},
		{"oauth_clients", ae(map[string]any{"id": "cli_1", "name": "app", "type": "confidential", "redirect_uris": "[]", "scopes": "balances:read",
			"status": "active", "created_at": now, "updated_at": now})},
		{"oauth_grants", ae(map[string]any{"id": "grt_1", "client_id": "cli_1", "member_id": "mbr_1", "scopes": "balances:read", "status": "active",
			"created_at": now, "updated_at": now})},
		{"oauth_codes", map[string]any{"code_hash": "hash_code_1", "client_id": "cli_1", "grant_id": "grt_1", "redirect_uri": "https://a.example/cb",
			"scopes": "balances:read", "created_at": now, "expires_at": later}},
		{"oauth_tokens", ae(map[string]any{"token_hash": "hash_tok_1", "kind": "at", "grant_id": "grt_1", "client_id": "cli_1", "scopes": "balances:read",
			"created_at": now, "expires_at": later})},
		{"access_chunks", ae(map[string]any{"id": "evt_2", "credential_id": "key_1", "actor": "key_1", "min_id": "evt_2", "first_at": now, "last_at": now,
			"entries": 1, "data": []byte{0, 1, 2, 0xff}, "bucket": "0000000"})},
		{"access_credentials", ae(map[string]any{"credential_id": "key_1", "bucket": "0000000"})},
		{"usage_hourly", ae(map[string]any{"credential_id": "key_1", "hour": now.Truncate(3600e9), "requests": 7, "errors": 2})},
		{"credential_limits", ae(map[string]any{"credential_id": "key_1", "currency": "btc", "max_withdrawal_amount": 100})},
		{"credential_limit_usage", ae(map[string]any{"credential_id": "key_1", "day": "2026-12-02", "currency": "btc", "used": 3})},
		{"key_policies", ae(map[string]any{"require_expiry": true, "max_active_keys": 4, "updated_at": now})},
		{"members", a(map[string]any{"id": "mbr_1", "email": "a@example.com", "password_hash": "x", "created_at": now, "role": "admin"})},
		{"sessions", a(map[string]any{"id_hash": "hash_ses_1", "member_id": "mbr_1", "created_at": now, "expires_at": later})},
		{"invitations", a(map[string]any{"id": "inv_1", "email": "b@example.com", "role": "viewer", "token_hash": "hash_inv_1", "invited_by": "mbr_1",
			"created_at": now, "expires_at": later})},
	}
}

// orphanCode is a code whose grant does not exist: it could never be
// exchanged, and the migration drops it rather than guess its tenant.
func orphanCode() seedRow {
	now := store.Now()
	return seedRow{"oauth_codes", map[string]any{"code_hash": "hash_code_orphan", "client_id": "cli_1", "grant_id": "grt_gone",
		"redirect_uri": "https://a.example/cb", "scopes": "balances:read", "created_at": now, "expires_at": now}}
}

func insertRow(ctx context.Context, db *store.DB, r seedRow) error {
	cols := slices.Sorted(maps.Keys(r.cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = r.cols[c]
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", r.table, strings.Join(cols, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
	_, err := store.CrossTenant(db.DB, "test: the schema itself").Raw(q, args...).Exec(ctx)
	return err
}

// countRows counts r.table's rows holding every value of r.
func countRows(t *testing.T, db *store.DB, r seedRow) int {
	t.Helper()
	cols := slices.Sorted(maps.Keys(r.cols))
	conds := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		conds[i] = c + " = ?"
		args[i] = r.cols[c]
	}
	var n int
	if err := store.CrossTenant(db.DB, "test: the schema itself").Raw("SELECT count(*) FROM "+r.table+" WHERE "+strings.Join(conds, " AND "), args...).Scan(context.Background(), &n); err != nil {
		t.Fatalf("count %s: %v", r.table, err)
	}
	return n
}

func tableCount(t *testing.T, db *store.DB, table string) int {
	t.Helper()
	var n int
	if err := store.CrossTenant(db.DB, "test: the schema itself").Raw("SELECT count(*) FROM "+table).Scan(context.Background(), &n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// withTenant is r as the schema after tenantKeys has it: a code carries its
// grant's tenant.
func withTenant(r seedRow) seedRow {
	r.cols = maps.Clone(r.cols)
	if r.table == "oauth_codes" {
		r.cols["partner_id"], r.cols["environment"] = "ptr_a", "live"
	}
	return r
}

func checkSeedKept(t *testing.T, db *store.DB, seed []seedRow, after bool) {
	t.Helper()
	for _, r := range seed {
		if after {
			r = withTenant(r)
		}
		if n := countRows(t, db, r); n != 1 {
			t.Errorf("%s: %d rows hold the seeded values, want 1 (after tenant keys: %v)", r.table, n, after)
		}
		if n := tableCount(t, db, r.table); n != 1 {
			t.Errorf("%s has %d rows, want the 1 seeded (after tenant keys: %v)", r.table, n, after)
		}
	}
}

// uniqueKeys lists each table's primary and unique keys, as "a,b" column
// lists in the key's order.
func uniqueKeys(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	q := `SELECT m.name, il.name, group_concat(ii.name, ',')
		FROM sqlite_master m JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii
		WHERE m.type = 'table' AND il."unique" = 1
		GROUP BY m.name, il.name`
	if db.Dialect == store.Postgres {
		q = `SELECT t.relname, i.relname, string_agg(a.attname, ',' ORDER BY array_position(x.indkey::int2[], a.attnum))
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_class t ON t.oid = x.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey)
		WHERE x.indisunique AND n.nspname = current_schema()
		GROUP BY t.relname, i.relname`
	}
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("read keys: %v", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, index, cols string
		if err := rows.Scan(&table, &index, &cols); err != nil {
			t.Fatal(err)
		}
		out[table] = append(out[table], cols)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, ks := range out {
		slices.Sort(ks)
	}
	return out
}

// globalUniques are the unique keys of tenant tables that stay global on
// purpose: a member signs in by email, which must name one member.
var globalUniques = map[string]bool{"members:email": true}

// checkTenantKeys: every table with a partner_id column is registered as a
// tenant table, and each of its keys includes partner_id.
func checkTenantKeys(t *testing.T, db *store.DB) {
	t.Helper()
	s := schemaOf(t, db)
	keys := uniqueKeys(t, db)
	for _, tbl := range tableNames(s) {
		if _, ok := s[tbl]["partner_id"]; !ok {
			if store.IsTenantTable(tbl) {
				t.Errorf("tenant table %s has no partner_id", tbl)
			}
			continue
		}
		if !store.IsTenantTable(tbl) {
			t.Errorf("%s has partner_id but is not in store's tenantTables", tbl)
		}
		if !s[tbl]["partner_id"].pk {
			t.Errorf("%s: partner_id is not in the primary key", tbl)
		}
		if len(keys[tbl]) == 0 {
			t.Errorf("%s has no primary key", tbl)
		}
		for _, k := range keys[tbl] {
			if !slices.Contains(strings.Split(k, ","), "partner_id") && !globalUniques[tbl+":"+k] {
				t.Errorf("%s: unique key (%s) does not include partner_id", tbl, k)
			}
		}
	}
}

// TestTenantKeysKeepRows seeds a row in every tenant table before the
// tenant-keys migration, migrates up, down and up again, and checks that
// every row is kept each time and that the new keys hold: an id is unique
// within its partner, and may be reused by another partner.
func TestTenantKeysKeepRows(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrateUp(t, db)
		rollBackTo(t, db, tenantKeys)
		if _, pending := statusOf(t, db); len(pending) == 0 || !strings.HasPrefix(pending[0], tenantKeys) {
			t.Fatalf("pending after rolling back: %v, want %s first", pending, tenantKeys)
		}
		seedPartner(t, db, "ptr_a")
		seedPartner(t, db, "ptr_b")
		seed := tenantSeed()
		for _, r := range append(slices.Clone(seed), orphanCode()) {
			if err := insertRow(ctx, db, r); err != nil {
				t.Fatalf("seed %s: %v", r.table, err)
			}
		}
		registered := map[string]bool{}
		for _, r := range seed {
			registered[r.table] = true
		}

		migrateUp(t, db)
		checkSeedKept(t, db, seed, true)
		if n := countRows(t, db, orphanCode()); n != 0 {
			t.Errorf("the code of a missing grant survived the migration")
		}
		checkTenantKeys(t, db)
		for _, tbl := range tableNames(schemaOf(t, db)) {
			if store.IsTenantTable(tbl) && !registered[tbl] {
				t.Errorf("tenant table %s has no seeded row: add one to tenantSeed", tbl)
			}
		}

		// The same key is refused within a partner, accepted under another.
		for _, r := range seed {
			r = withTenant(r)
			if err := insertRow(ctx, db, r); !store.IsUniqueViolation(err) {
				t.Errorf("%s: a second row with the same key under the same partner: %v, want a unique violation", r.table, err)
			}
			other := seedRow{r.table, maps.Clone(r.cols)}
			other.cols["partner_id"] = "ptr_b"
			if r.table == "members" {
				other.cols["email"] = "other@example.com"
			}
			if err := insertRow(ctx, db, other); err != nil {
				t.Errorf("%s: the same id (or digest) under another partner: %v, want it accepted", r.table, err)
			}
		}
		// A member's email stays unique across partners.
		dupEmail := seedRow{"members", map[string]any{"id": "mbr_2", "partner_id": "ptr_b", "email": "a@example.com", "password_hash": "x", "created_at": store.Now()}}
		if err := insertRow(ctx, db, dupEmail); !store.IsUniqueViolation(err) {
			t.Errorf("a member of another partner with a taken email: %v, want a unique violation", err)
		}

		// The old keys come back only without two partners sharing an id.
		for _, r := range seed {
			if _, err := store.CrossTenant(db.DB, "test: the schema itself").Raw("DELETE FROM " + r.table + " WHERE partner_id = 'ptr_b'").Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rollBackTo(t, db, tenantKeys)
		checkSeedKept(t, db, seed, false)
		s := schemaOf(t, db)
		if _, ok := s["oauth_codes"]["partner_id"]; ok {
			t.Error("down kept oauth_codes.partner_id")
		}
		if !s["api_keys"]["id"].pk || s["api_keys"]["partner_id"].pk {
			t.Errorf("down: api_keys primary key is not (id): %+v", s["api_keys"])
		}
		if err := insertRow(ctx, db, seedRow{"api_keys", map[string]any{"id": "key_2", "partner_id": "ptr_b", "environment": "live", "type": "secret",
			"prefix": "p", "last4": "l", "key_hash": "hash_key_1", "scopes": "s", "status": "active", "created_at": store.Now(), "updated_at": store.Now()}}); !store.IsUniqueViolation(err) {
			t.Errorf("down: a key digest reused by another partner: %v, want the old global unique key", err)
		}

		migrateUp(t, db)
		checkSeedKept(t, db, seed, true)
		checkTenantKeys(t, db)
	})
}

// Both dialects have the same primary and unique keys, column for column.
func TestKeyParity(t *testing.T) {
	lite := openSQLite(t)
	migrateUp(t, lite)
	pg := openPostgres(t)
	migrateUp(t, pg)
	lk, pk := uniqueKeys(t, lite), uniqueKeys(t, pg)
	for tbl := range bunTables {
		delete(lk, tbl)
		delete(pk, tbl)
	}
	// An INTEGER PRIMARY KEY is SQLite's rowid: no index of its own.
	delete(pk, "cache_invalidations")
	for _, tbl := range slices.Sorted(maps.Keys(pk)) {
		if !slices.Equal(lk[tbl], pk[tbl]) {
			t.Errorf("%s keys: sqlite %v, postgres %v", tbl, lk[tbl], pk[tbl])
		}
	}
	for tbl := range lk {
		if _, ok := pk[tbl]; !ok {
			t.Errorf("%s keys only in sqlite: %v", tbl, lk[tbl])
		}
	}
}
