// Package idempotency remembers the answers to POST requests sent with an
// Idempotency-Key (CONTRACT §5): per partner and environment, for 24 hours.
// The same key and body replay the first answer; another body is refused;
// a key whose first request still runs is refused until it finishes.
package idempotency

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// TTL is how long a key is remembered.
const TTL = 24 * time.Hour

// Abandoned is how long a first request may run before its key is taken
// back by default: a process that died mid-request never finishes or
// releases it, and without this every retry would be refused as in use for
// a day. Requests end well before (the server's write timeout is 30 s).
const Abandoned = time.Minute

const (
	stateRunning = "running"
	stateDone    = "done"
)

type row struct {
	bun.BaseModel `bun:"table:idempotency_keys"`

	PartnerID      string            `bun:"partner_id,pk"`
	Environment    nexus.Environment `bun:"environment,pk"`
	Key            string            `bun:"key,pk"`
	RequestHash    string            `bun:"request_hash"`
	State          string            `bun:"state"`
	ResponseStatus int               `bun:"response_status"`
	ResponseBody   string            `bun:"response_body"`
	CreatedAt      time.Time         `bun:"created_at"`
	ExpiresAt      time.Time         `bun:"expires_at"`
}

// Store keeps idempotency keys.
type Store struct {
	db *store.DB
	// Abandoned is how long a claim may run before a retry takes it back.
	// Optional. Default: the package's Abandoned.
	Abandoned time.Duration
}

// New returns a store on db.
func New(db *store.DB) *Store { return &Store{db: db, Abandoned: Abandoned} }

// Saved is a first answer to replay.
type Saved struct {
	Status int
	Body   []byte
}

// Hash fingerprints a request: the same key must come with the same
// method, path and body.
func Hash(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

var (
	errReused = &nexus.Error{Code: nexus.CodeIdempotencyKeyReused, Param: "Idempotency-Key",
		Message: "this Idempotency-Key was used with a different request; use a new key for a new request"}
	errInUse = &nexus.Error{Code: nexus.CodeIdempotencyKeyInUse, Param: "Idempotency-Key",
		Message: "a request with this Idempotency-Key is still being processed; retry later"}
)

// Claim is a key won by Begin: the request it guards is this caller's to
// run, and Finish or Abort must follow.
type Claim struct {
	t   nexus.Tenant
	key string
	// at tells this claim from a later one on the same key (after this one
	// was taken back as abandoned): Finish and Abort touch only their own.
	at time.Time
}

// ErrClaimLost is Finish finding its claim gone: it ran longer than the
// abandonment window and a retry took the key back. The caller must roll
// back its change; the retry's stands.
var ErrClaimLost = errors.New("idempotency: the key was taken back by a retry")

// Begin claims key for a request with hash. It returns the saved answer
// when the key was already used with the same request, and an error when
// it was used with another or is still running; otherwise the caller owns
// the key and must call Finish or Abort with the claim.
//
// The claim is committed at once so that concurrent requests with the key
// see it running; the answer is stored by Finish in the transaction of the
// change, so a claim left running by a crash never hides a committed change
// (a committed change always has its answer) and may be taken back once it
// is abandoned.
func (s *Store) Begin(ctx context.Context, t nexus.Tenant, key, hash string) (*Saved, *Claim, error) {
	sc := s.db.For(t)
	for attempt := 0; attempt < 3; attempt++ {
		now := store.Now()
		r := &row{PartnerID: t.PartnerID, Environment: t.Environment, Key: key, RequestHash: hash,
			State: stateRunning, CreatedAt: now, ExpiresAt: now.Add(TTL)}
		_, err := sc.Insert(r).Exec(ctx)
		if err == nil {
			return nil, &Claim{t: t, key: key, at: now}, nil
		}
		if !store.IsUniqueViolation(err) {
			return nil, nil, err
		}
		old := new(row)
		err = sc.Select(old).Where("key = ?", key).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			continue // aborted meanwhile: claim again
		}
		if err != nil {
			return nil, nil, err
		}
		if old.RequestHash != hash && now.Before(old.ExpiresAt) {
			return nil, nil, errReused
		}
		q := sc.Delete((*row)(nil)).Where("key = ?", key).Where("created_at = ?", old.CreatedAt)
		switch {
		case !now.Before(old.ExpiresAt):
			q = q.Where("expires_at <= ?", now)
		case old.State != stateDone && now.Sub(old.CreatedAt) >= s.Abandoned:
			// Nothing was committed under the old claim (its answer would
			// be stored). The state condition keeps a first request that
			// commits right now from being forgotten: the delete then
			// finds its row done and removes nothing.
			q = q.Where("state = ?", stateRunning)
		case old.State != stateDone:
			return nil, nil, errInUse
		default:
			return &Saved{Status: old.ResponseStatus, Body: []byte(old.ResponseBody)}, nil, nil
		}
		// Forget it and claim afresh; the conditions make sure only one of
		// several concurrent retries does.
		if _, err := q.Exec(ctx); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, errInUse
}

// Finish stores the answer of c's request through idb, which must be the
// transaction of the request's change: both commit or neither. It returns
// ErrClaimLost when the key is no longer c's.
func (s *Store) Finish(ctx context.Context, idb bun.IDB, c *Claim, status int, body []byte) error {
	res, err := store.For(idb, c.t).Update((*row)(nil)).
		Set("state = ?", stateDone).Set("response_status = ?", status).Set("response_body = ?", string(body)).
		Where("key = ?", c.key).Where("created_at = ?", c.at).Where("state = ?", stateRunning).Exec(ctx)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return ErrClaimLost
	}
	return nil
}

// Abort releases c's key when its request changed nothing, so that it can
// be retried. A claim whose answer was committed is left alone.
func (s *Store) Abort(ctx context.Context, c *Claim) error {
	_, err := s.db.For(c.t).Delete((*row)(nil)).
		Where("key = ?", c.key).Where("created_at = ?", c.at).Where("state = ?", stateRunning).Exec(ctx)
	return err
}

// Prune deletes expired keys.
func (s *Store) Prune(ctx context.Context) error {
	_, err := store.CrossTenant(s.db.DB, "retention pruning: expired keys of every tenant").
		Delete((*row)(nil)).Where("expires_at < ?", store.Now()).Exec(ctx)
	return err
}
