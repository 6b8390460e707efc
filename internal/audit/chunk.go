package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
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

// AccessChunk holds the access entries of one credential from one flush.
// Its id is the greatest entry id, so chunks sort like the entries they
// hold; MinID is the least.
type AccessChunk struct {
	bun.BaseModel `bun:"table:access_chunks"`

	ID           string            `bun:"id,pk"`
	PartnerID    string            `bun:"partner_id"`
	Environment  nexus.Environment `bun:"environment"`
	CredentialID string            `bun:"credential_id"`
	Actor        string            `bun:"actor"`
	MinID        string            `bun:"min_id"`
	FirstAt      time.Time         `bun:"first_at"`
	LastAt       time.Time         `bun:"last_at"`
	Entries      int               `bun:"entries"`
	Data         []byte            `bun:"data"` // JSON lines (AccessEntry), S2-compressed
}

// AccessEntry is one access row inside a chunk: a line of Data. Its id is
// its request's (see eventID) and is stored only when it cannot be derived.
type AccessEntry struct {
	ID        string `json:"id,omitempty"`
	RequestID string `json:"request_id"`
	IP        string `json:"ip"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	At        int64  `json:"at"` // Unix microseconds
}

// Time is when the request arrived.
func (e *AccessEntry) Time() time.Time { return time.UnixMicro(e.At).UTC() }

// view is the entry as the API shows it.
func (e *AccessEntry) view(c *AccessChunk) *View {
	return &View{Object: "audit_event", ID: e.ID, Type: AccessType, Environment: c.Environment,
		CredentialID: c.CredentialID, Actor: c.Actor, IP: e.IP, RequestID: e.RequestID,
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
	tenant       nexus.Tenant
	credentialID string
	actor        string
}

// chunkState is a chunk being filled. Ids are tracked by their suffix, a
// substring of the request id, so that an entry costs no allocation.
type chunkState struct {
	key          chunkKey
	minID, maxID string // id suffixes
	first, last  int64  // Unix microseconds
	entries      int
	buf          []byte
}

// buildChunks groups a batch by credential, in arrival order, into chunks
// of at most maxEntries entries.
func buildChunks(batch []Access, maxEntries int, pool *bufferPool) []AccessChunk {
	var states []*chunkState
	open := map[chunkKey]*chunkState{} // the chunk being filled, by key
	var cur *chunkState                // the last one used: runs of one credential skip the map
	for i := range batch {
		a := &batch[i]
		if cur == nil || cur.key.credentialID != a.CredentialID || cur.key.tenant != a.Tenant || cur.key.actor != a.Actor {
			cur = open[chunkKey{a.Tenant, a.CredentialID, a.Actor}]
		}
		if cur == nil || cur.entries == maxEntries {
			cur = &chunkState{key: chunkKey{a.Tenant, a.CredentialID, a.Actor}, first: math.MaxInt64, last: math.MinInt64,
				buf: pool.get(4096)}
			states = append(states, cur)
			open[cur.key] = cur
		}
		at := a.At.UnixMicro()
		suffix, ours := idSuffix(a.RequestID)
		var own string // an id of its own, for a request id not of ours
		if !ours {
			own = nexus.NewID("evt")
			suffix = own[4:]
		}
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
			ID: "evt_" + st.maxID, MinID: "evt_" + st.minID,
			PartnerID: st.key.tenant.PartnerID, Environment: st.key.tenant.Environment,
			CredentialID: st.key.credentialID, Actor: st.key.actor,
			FirstAt: time.UnixMicro(st.first).UTC(), LastAt: time.UnixMicro(st.last).UTC(),
			Entries: st.entries,
			// Compressed here rather than by the database: S2 costs a tenth
			// of a microsecond an entry, and the database then stores, logs
			// and replicates a fifth of the bytes.
			Data: s2.Encode(pool.get(s2.MaxEncodedLen(len(st.buf))), st.buf),
		}
		pool.put(st.buf)
	}
	return chunks
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
	b = append(b, `"request_id":`...)
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
