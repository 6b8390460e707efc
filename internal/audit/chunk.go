package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/jsonenc"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// AccessType is the event type of access rows.
const AccessType = "api.access"

// maxChunkEntries bounds a chunk, so that reading one page of the log
// decodes at most about 100 KB per chunk touched.
const maxChunkEntries = 1000

// AccessChunk holds the access entries of one tenant from one flush, all
// of one bucket. Its id is the greatest entry id, so chunks sort like the
// entries they hold; MinID is the least.
//
// A chunk per credential (as chunks were first written) made a row per
// request once many keys were in use; now each entry names its credential,
// and AccessCredential finds the buckets a credential was used in.
type AccessChunk struct {
	bun.BaseModel `bun:"table:access_chunks"`

	ID          string            `bun:"id,pk"`
	PartnerID   string            `bun:"partner_id"`
	Environment nexus.Environment `bun:"environment"`
	// CredentialID and Actor are those of every entry in chunks written
	// before entries named their own; empty in later ones.
	CredentialID string `bun:"credential_id"`
	Actor        string `bun:"actor"`
	// Bucket is the bucketOf of every entry id in the chunk.
	Bucket  string    `bun:"bucket"`
	MinID   string    `bun:"min_id"`
	FirstAt time.Time `bun:"first_at"`
	LastAt  time.Time `bun:"last_at"`
	Entries int       `bun:"entries"`
	Data    []byte    `bun:"data"` // JSON lines (AccessEntry), S2-compressed
}

// AccessCredential says that a credential has entries in a bucket of its
// tenant's chunks: the index of the access log by credential. A row per
// credential and bucket (about 33 s), not per chunk, keeps its cost per
// request flat however many credentials are in use.
type AccessCredential struct {
	bun.BaseModel `bun:"table:access_credentials"`

	PartnerID    string            `bun:"partner_id,pk"`
	Environment  nexus.Environment `bun:"environment,pk"`
	CredentialID string            `bun:"credential_id,pk"`
	Bucket       string            `bun:"bucket,pk"`
}

// bucketDigits is how many leading base32 digits of an id suffix make its
// bucket: ids start with 48 bits of Unix milliseconds after 2 zero bits, so
// 7 digits are the milliseconds over 2^15, about 33 s.
const bucketDigits = 7

// bucketOf is the bucket of an id suffix (an id without "evt_"). Buckets
// order as the ids in them do.
func bucketOf(suffix string) string { return suffix[:bucketDigits] }

// nextBucket is the bucket after b.
func nextBucket(b string) string {
	d := []byte(b)
	for i := len(d) - 1; i >= 0; i-- {
		j := strings.IndexByte(idAlphabet, d[i])
		if j < len(idAlphabet)-1 {
			d[i] = idAlphabet[j+1]
			return string(d)
		}
		d[i] = idAlphabet[0]
	}
	return b + "~" // past the last: sorts after every bucket
}

// idAlphabet is the digits of nexus ids, in order.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// AccessEntry is one access row inside a chunk: a line of Data. Its id is
// its request's (see eventID) and is stored only when it cannot be derived.
type AccessEntry struct {
	ID           string `json:"id,omitempty"`
	CredentialID string `json:"credential_id,omitempty"` // empty in old chunks: the chunk's
	Actor        string `json:"actor,omitempty"`
	RequestID    string `json:"request_id"`
	IP           string `json:"ip"`
	Method       string `json:"method"`
	Path         string `json:"path"`
	Status       int    `json:"status"`
	At           int64  `json:"at"` // Unix microseconds
}

// Time is when the request arrived.
func (e *AccessEntry) Time() time.Time { return time.UnixMicro(e.At).UTC() }

// credential is the entry's credential and actor.
func (e *AccessEntry) credential(c *AccessChunk) (id, actor string) {
	if e.CredentialID == "" {
		return c.CredentialID, c.Actor
	}
	return e.CredentialID, e.Actor
}

// view is the entry as the API shows it.
func (e *AccessEntry) view(c *AccessChunk) *View {
	cred, actor := e.credential(c)
	return &View{Object: "audit_event", ID: e.ID, Type: AccessType, Environment: c.Environment,
		CredentialID: cred, Actor: actor, IP: e.IP, RequestID: e.RequestID,
		Method: e.Method, Path: e.Path, Status: e.Status, CreatedAt: e.Time()}
}

// ParseChunk decodes a chunk's Data.
func ParseChunk(data []byte) ([]AccessEntry, error) {
	lines, err := s2.Decode(nil, data)
	if err != nil {
		return nil, fmt.Errorf("access chunk: %w", err)
	}
	out := make([]AccessEntry, 0, bytes.Count(lines, []byte("\n")))
	dec := json.NewDecoder(bytes.NewReader(lines))
	for {
		var e AccessEntry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("access chunk entry %d: %w", len(out), err)
		}
		if e.ID == "" {
			e.ID = eventID(e.RequestID)
		}
		out = append(out, e)
	}
}

// eventID gives an access row the id of its request under the event
// prefix: unique as request ids are, time-ordered, and free to make.
func eventID(requestID string) string {
	if suffix, ok := idSuffix(requestID); ok {
		return "evt_" + suffix
	}
	return nexus.NewID("evt")
}

// idSuffix returns the 26 characters after "req_" of one of our request ids.
func idSuffix(requestID string) (string, bool) {
	if len(requestID) == 30 && requestID[:4] == "req_" {
		return requestID[4:], true
	}
	return "", false
}

type chunkKey struct {
	tenant nexus.Tenant
	bucket string
}

// chunkState is a chunk being filled. Ids are tracked by their suffix, a
// substring of the request id, so that an entry costs no allocation.
type chunkState struct {
	key          chunkKey
	minID, maxID string // id suffixes
	first, last  int64  // Unix microseconds
	entries      int
	buf          []byte
	lastCred     string // the credential of the last entry, already in refs
}

// buildChunks groups a batch by tenant and bucket, in arrival order, into
// chunks of at most maxEntries entries, and lists the credentials of each
// tenant and bucket once.
func buildChunks(batch []Access, maxEntries int, pool *bufferPool) ([]AccessChunk, []AccessCredential) {
	var states []*chunkState
	open := map[chunkKey]*chunkState{} // the chunk being filled, by key
	var cur *chunkState                // the last one used: runs of one tenant skip the map
	var refs []AccessCredential
	seen := map[AccessCredential]struct{}{}
	for i := range batch {
		a := &batch[i]
		suffix, ours := idSuffix(a.RequestID)
		var own string // an id of its own, for a request id not of ours
		if !ours {
			own = nexus.NewID("evt")
			suffix = own[4:]
		}
		bucket := bucketOf(suffix)
		if cur == nil || cur.key.tenant != a.Tenant || cur.key.bucket != bucket {
			cur = open[chunkKey{a.Tenant, bucket}]
		}
		if cur == nil || cur.entries == maxEntries {
			cur = &chunkState{key: chunkKey{a.Tenant, bucket}, first: math.MaxInt64, last: math.MinInt64,
				buf: pool.get(4096)}
			states = append(states, cur)
			open[cur.key] = cur
		}
		if cur.entries == 0 || a.CredentialID != cur.lastCred {
			// Runs of one credential skip the map.
			ref := AccessCredential{PartnerID: a.Tenant.PartnerID, Environment: a.Tenant.Environment, CredentialID: a.CredentialID, Bucket: bucket}
			if _, ok := seen[ref]; !ok {
				seen[ref] = struct{}{}
				refs = append(refs, ref)
			}
			cur.lastCred = a.CredentialID
		}
		at := a.At.UnixMicro()
		if cur.entries == 0 {
			cur.minID, cur.maxID = suffix, suffix
		} else {
			cur.minID, cur.maxID = min(cur.minID, suffix), max(cur.maxID, suffix)
		}
		cur.first, cur.last = min(cur.first, at), max(cur.last, at)
		cur.entries++
		cur.buf = appendEntry(cur.buf, own, a, at)
	}
	chunks := make([]AccessChunk, len(states))
	for i, st := range states {
		chunks[i] = AccessChunk{
			ID: "evt_" + st.maxID, MinID: "evt_" + st.minID, Bucket: st.key.bucket,
			PartnerID: st.key.tenant.PartnerID, Environment: st.key.tenant.Environment,
			FirstAt: time.UnixMicro(st.first).UTC(), LastAt: time.UnixMicro(st.last).UTC(),
			Entries: st.entries,
			// Compressed here rather than by the database: S2 costs a tenth
			// of a microsecond an entry, and the database then stores, logs
			// and replicates a fifth of the bytes.
			Data: s2.Encode(pool.get(s2.MaxEncodedLen(len(st.buf))), st.buf),
		}
		pool.put(st.buf)
	}
	return chunks, refs
}

// bufferPool recycles the writer's buffers: growing fresh ones for every
// flush was four fifths of the bytes the server allocated per request, and
// the garbage collector's work with them. Only the writer uses it.
type bufferPool struct{ free [][]byte }

// get returns an empty buffer of at least n bytes' capacity.
func (p *bufferPool) get(n int) []byte {
	if p != nil {
		for i := len(p.free) - 1; i >= 0; i-- {
			if b := p.free[i]; cap(b) >= n {
				p.free[i] = p.free[len(p.free)-1]
				p.free = p.free[:len(p.free)-1]
				return b[:0]
			}
		}
	}
	return make([]byte, 0, n)
}

// put keeps b for reuse, within bounds: at most 64 buffers of 1 MB.
func (p *bufferPool) put(b []byte) {
	if p != nil && cap(b) <= 1<<20 && len(p.free) < 64 {
		p.free = append(p.free, b[:0])
	}
}

// appendEntry writes one entry as a line of JSON, by hand: encoding/json
// cost more than the rest of the write. own is the entry's id when it is
// not derived from its request id.
func appendEntry(b []byte, own string, a *Access, at int64) []byte {
	b = append(b, '{')
	if own != "" {
		b = append(b, `"id":`...)
		b = jsonenc.AppendString(b, own)
		b = append(b, ',')
	}
	b = append(b, `"credential_id":`...)
	b = jsonenc.AppendString(b, a.CredentialID)
	b = append(b, `,"actor":`...)
	b = jsonenc.AppendString(b, a.Actor)
	b = append(b, `,"request_id":`...)
	b = jsonenc.AppendString(b, a.RequestID)
	b = append(b, `,"ip":`...)
	b = jsonenc.AppendString(b, a.IP)
	b = append(b, `,"method":`...)
	b = jsonenc.AppendString(b, a.Method)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, a.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.Status), 10)
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, at, 10)
	return append(b, "}\n"...)
}
