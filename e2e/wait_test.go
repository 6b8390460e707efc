package e2e

// Bounded waits for a state the server reaches on its own (an expiry, a
// batched write). The server has no injectable clock, so a test polls for
// the change instead of sleeping for a guessed duration.

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
)

// awaitRefusal calls call until it answers anything but 200 and returns
// that answer. The refusal must come at or after notBefore (an expiry: a
// refusal before it would be a bug) and within 5 s after it.
func awaitRefusal(t *testing.T, what string, notBefore time.Time, call func() *Response) *Response {
	t.Helper()
	var last *Response
	var at time.Time
	_, ok := poll(time.Until(notBefore)+5*time.Second, 25*time.Millisecond, func() bool {
		last = call()
		at = time.Now()
		return last.Status != 200
	})
	if !ok {
		t.Fatalf("%s: still accepted 5 s after %s: %s", what, notBefore.Format(time.RFC3339Nano), last)
	}
	if at.Before(notBefore) {
		t.Errorf("%s: refused at %s, before %s: %s", what, at.Format(time.RFC3339Nano), notBefore.Format(time.RFC3339Nano), last)
	}
	t.Logf("%s: refused %s after %s", what, at.Sub(notBefore).Round(time.Millisecond), notBefore.Format(time.RFC3339Nano))
	return last
}

// awaitAccessLogged waits (at most 15 s) until the access log of partnerID
// holds an entry of each request in ids (X-Request-Id): the batched writer,
// which works off the request path, has written them.
func awaitAccessLogged(t *testing.T, b *Backend, partnerID string, ids ...string) {
	t.Helper()
	db := OpenDB(t, b.URL)
	var missing []string
	took, ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		seen := map[string]bool{}
		for _, e := range accessEntries(t, b, db, partnerID) {
			seen[e.RequestID] = true
		}
		missing = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return seen[id] })
		return len(missing) == 0
	})
	if !ok {
		t.Fatalf("no access entry of the requests %v after %s", missing, took)
	}
	t.Logf("the access entries of %d requests were written %s after them", len(ids), took.Round(time.Millisecond))
}

// accessEntry is what the e2e tests read of a stored access entry.
type accessEntry struct {
	CredentialID string `json:"credential_id"`
	RequestID    string `json:"request_id"`
	Status       int    `json:"status"`
}

// accessEntries reads every access entry stored for partnerID.
func accessEntries(t *testing.T, b *Backend, db *sql.DB, partnerID string) []accessEntry {
	t.Helper()
	rows, err := db.Query(b.SQL("SELECT data FROM access_chunks WHERE partner_id = ?"), partnerID)
	if err != nil {
		t.Fatalf("access_chunks: %v", err)
	}
	defer rows.Close()
	var out []accessEntry
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		// A chunk holds one JSON object per access entry, S2-compressed.
		lines, err := s2.Decode(nil, data)
		if err != nil {
			t.Fatalf("access chunk: %v", err)
		}
		for dec := json.NewDecoder(bytes.NewReader(lines)); dec.More(); {
			var e accessEntry
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("access chunk: %v", err)
			}
			out = append(out, e)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
