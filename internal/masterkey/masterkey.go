// Package masterkey keeps the master key and the database in step: it
// records which key the database's sealed secrets are under (a check value,
// never the key), refuses another key before anything is served with it, and
// re-seals every secret under a new key when the key is rotated.
package masterkey

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/secretbox"
	"github.com/nexus-fintech/nexus/internal/store"
)

// ErrMismatch means the configured key is not the one the database's
// secrets are sealed under: serving with it would fail every HS256 token.
var ErrMismatch = errors.New("the master key does not match the key this database's secrets are sealed under")

// checkRow is the one row of master_key_checks.
type checkRow struct {
	bun.BaseModel `bun:"table:master_key_checks"`

	ID         string    `bun:"id,pk"`
	CheckValue string    `bun:"check_value"`
	CreatedAt  time.Time `bun:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at"`
}

const rowID = "master"

// sealedColumn is a column of secretbox ciphertexts, each sealed for its
// row's id.
type sealedColumn struct{ table, column string }

// sealed lists every column that holds sealed secrets: Verify proves a key
// on them and Rekey re-seals them. A test fails when a *_enc column of the
// schema is missing here.
var sealed = []sealedColumn{
	{"service_credentials", "secret_enc"},
}

// Verify checks box against the key recorded for db. The first time (a new
// database, or one from before checks were kept) it proves the key on the
// secrets already sealed and records it. MatchPrevious means a rotation is
// under way: secrets open, and `nexus admin rekey` should finish it.
func Verify(ctx context.Context, db *store.DB, box *secretbox.Box) (secretbox.Match, error) {
	row, found, err := readCheck(ctx, db.DB)
	if err != nil {
		return secretbox.MatchNone, err
	}
	if !found {
		m, err := prove(ctx, db.DB, box)
		if err != nil {
			return m, err
		}
		check := box.Check()
		if m == secretbox.MatchPrevious {
			check = box.PreviousCheck()
		}
		now := store.Now()
		// Two instances starting together: the first row wins and the other
		// compares itself with it below.
		if _, err := db.NewInsert().Model(&checkRow{ID: rowID, CheckValue: check, CreatedAt: now, UpdatedAt: now}).
			On("CONFLICT (id) DO NOTHING").Exec(ctx); err != nil {
			return secretbox.MatchNone, err
		}
		if row, _, err = readCheck(ctx, db.DB); err != nil {
			return secretbox.MatchNone, err
		}
	}
	m := box.Match(row.CheckValue)
	if m == secretbox.MatchNone {
		return m, ErrMismatch
	}
	return m, nil
}

// InUse reports whether db already depends on a master key: a key is
// recorded or a secret is sealed. A missing key file must then not be
// replaced by a fresh key.
func InUse(ctx context.Context, db *store.DB) (bool, error) {
	if _, found, err := readCheck(ctx, db.DB); err != nil || found {
		return found, err
	}
	for _, c := range sealed {
		n, err := store.CrossTenant(db.DB, "master key: is any secret sealed").Select(nil).TableExpr("?", bun.Ident(c.table)).Where("? IS NOT NULL", bun.Ident(c.column)).Count(ctx)
		if err != nil || n > 0 {
			return n > 0, err
		}
	}
	return false, nil
}

func readCheck(ctx context.Context, idb bun.IDB) (*checkRow, bool, error) {
	row := new(checkRow)
	err := idb.NewSelect().Model(row).Where("id = ?", rowID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the master key check (is the schema migrated? run nexus migrate up): %w", err)
	}
	return row, true, nil
}

type sealedValue struct{ id, value string }

func readSealed(ctx context.Context, idb bun.IDB, c sealedColumn) ([]sealedValue, error) {
	rows, err := store.CrossTenant(idb, "master key: every sealed secret").Select(nil).TableExpr("?", bun.Ident(c.table)).
		ColumnExpr("id, ?", bun.Ident(c.column)).Where("? IS NOT NULL", bun.Ident(c.column)).
		OrderExpr("id").Rows(ctx)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sealedValue
	for rows.Next() {
		var v sealedValue
		if err := rows.Scan(&v.id, &v.value); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// prove opens every sealed secret with box: MatchCurrent when the current
// key opens them all, MatchPrevious when some need the previous key, and
// ErrMismatch when one opens under neither.
func prove(ctx context.Context, idb bun.IDB, box *secretbox.Box) (secretbox.Match, error) {
	m := secretbox.MatchCurrent
	for _, c := range sealed {
		vals, err := readSealed(ctx, idb, c)
		if err != nil {
			return secretbox.MatchNone, err
		}
		for _, v := range vals {
			_, previous, err := box.Reseal(v.id, v.value)
			if errors.Is(err, secretbox.ErrCannotOpen) {
				return secretbox.MatchNone, ErrMismatch
			}
			if err != nil {
				return secretbox.MatchNone, fmt.Errorf("%s.%s of %s: %w", c.table, c.column, v.id, err)
			}
			if previous {
				m = secretbox.MatchPrevious
			}
		}
	}
	return m, nil
}

// RekeyResult counts what Rekey did.
type RekeyResult struct {
	Object       string         `json:"object"`            // "master_key_rekey"
	Resealed     int            `json:"resealed"`          // secrets now sealed under the current key
	FromPrevious int            `json:"from_previous_key"` // of which were under the previous key
	Tables       map[string]int `json:"tables"`            // resealed per table
}

// Rekey re-seals every stored secret under box's current key and records
// that key, in one transaction: either every secret moves or none does.
// Instances still running with the previous key configured as
// NEXUS_MASTER_KEY_PREVIOUS keep opening them.
func Rekey(ctx context.Context, db *store.DB, box *secretbox.Box) (*RekeyResult, error) {
	res := &RekeyResult{Object: "master_key_rekey", Tables: map[string]int{}}
	err := db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		row, found, err := readCheck(ctx, tx)
		if err != nil {
			return err
		}
		if found && box.Match(row.CheckValue) == secretbox.MatchNone {
			return ErrMismatch
		}
		for _, c := range sealed {
			vals, err := readSealed(ctx, tx, c)
			if err != nil {
				return err
			}
			res.Tables[c.table] = 0
			for _, v := range vals {
				next, previous, err := box.Reseal(v.id, v.value)
				if errors.Is(err, secretbox.ErrCannotOpen) {
					return fmt.Errorf("%w: %s %s opens under neither NEXUS_MASTER_KEY nor NEXUS_MASTER_KEY_PREVIOUS", ErrMismatch, c.table, v.id)
				}
				if err != nil {
					return err
				}
				r, err := store.CrossTenant(tx, "master key: reseal every secret").Update(nil).TableExpr("?", bun.Ident(c.table)).
					Set("? = ?", bun.Ident(c.column), next).
					Where("id = ?", v.id).Where("? = ?", bun.Ident(c.column), v.value).Exec(ctx)
				if err != nil {
					return err
				}
				if n, _ := r.RowsAffected(); n != 1 {
					return fmt.Errorf("%s %s changed during the rekey; run it again", c.table, v.id)
				}
				res.Resealed++
				res.Tables[c.table]++
				if previous {
					res.FromPrevious++
				}
			}
		}
		now := store.Now()
		_, err = tx.NewInsert().Model(&checkRow{ID: rowID, CheckValue: box.Check(), CreatedAt: now, UpdatedAt: now}).
			On("CONFLICT (id) DO UPDATE").Set("check_value = EXCLUDED.check_value").Set("updated_at = EXCLUDED.updated_at").
			Exec(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// seals reports whether "table.column" is a column Rekey re-seals.
func seals(tableColumn string) bool {
	for _, c := range sealed {
		if c.table+"."+c.column == tableColumn {
			return true
		}
	}
	return false
}
