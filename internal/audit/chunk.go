package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

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
	Data         string            `bun:"data"`
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

// Time is when the request was answered.
func (e *AccessEntry) Time() time.Time { return time.UnixMicro(e.At).UTC() }

// view is the entry as the API shows it.
func (e *AccessEntry) view(c *AccessChunk) *View {
	return &View{Object: "audit_event", ID: e.ID, Type: AccessType, Environment: c.Environment,
		CredentialID: c.CredentialID, Actor: c.Actor, IP: e.IP, RequestID: e.RequestID,
		Method: e.Method, Path: e.Path, Status: e.Status, CreatedAt: e.Time()}
}

// ParseChunk decodes a chunk's Data.
func ParseChunk(data string) ([]AccessEntry, error) {
	out := make([]AccessEntry, 0, strings.Count(data, "\n"))
	dec := json.NewDecoder(strings.NewReader(data))
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
			e.ID, _ = derivedID(e.RequestID)
		}
		out = append(out, e)
	}
}

// eventID gives an access row the id of its request under the event
// prefix: unique as request ids are, time-ordered, and free to make.
func eventID(requestID string) string {
	if id, ok := derivedID(requestID); ok {
		return id
	}
	return nexus.NewID("evt")
}

func derivedID(requestID string) (string, bool) {
	if suffix, ok := strings.CutPrefix(requestID, "req_"); ok && len(suffix) == 26 {
		return "evt_" + suffix, true
	}
	return "", false
}

type chunkKey struct {
	tenant       nexus.Tenant
	credentialID string
	actor        string
}

// buildChunks groups a batch by credential, in arrival order, into chunks
// of at most max entries.
func buildChunks(batch []Access, max int) []AccessChunk {
	var chunks []AccessChunk
	open := map[chunkKey]int{} // the chunk being filled, by key
	var bufs [][]byte          // each chunk's Data, as it grows
	for i := range batch {
		a := &batch[i]
		k := chunkKey{a.Tenant, a.CredentialID, a.Actor}
		at := a.At.UTC().Truncate(time.Microsecond)
		id := eventID(a.RequestID)
		ci, ok := open[k]
		if !ok || chunks[ci].Entries == max {
			chunks = append(chunks, AccessChunk{
				ID: id, MinID: id, PartnerID: a.Tenant.PartnerID, Environment: a.Tenant.Environment,
				CredentialID: a.CredentialID, Actor: a.Actor, FirstAt: at, LastAt: at,
			})
			ci = len(chunks) - 1
			open[k] = ci
			bufs = append(bufs, make([]byte, 0, 4096))
		}
		c := &chunks[ci]
		c.Entries++
		c.ID, c.MinID = maxStr(c.ID, id), minStr(c.MinID, id)
		if at.Before(c.FirstAt) {
			c.FirstAt = at
		}
		if at.After(c.LastAt) {
			c.LastAt = at
		}
		bufs[ci] = appendEntry(bufs[ci], id, a, at)
	}
	for i := range chunks {
		chunks[i].Data = string(bufs[i])
	}
	return chunks
}

func maxStr(a, b string) string {
	if b > a {
		return b
	}
	return a
}

func minStr(a, b string) string {
	if b < a {
		return b
	}
	return a
}

// appendEntry writes one entry as a line of JSON, by hand: encoding/json
// cost more than the rest of the write.
func appendEntry(b []byte, id string, a *Access, at time.Time) []byte {
	b = append(b, '{')
	if derived, _ := derivedID(a.RequestID); derived != id {
		b = append(b, `"id":`...)
		b = appendJSONString(b, id)
		b = append(b, ',')
	}
	b = append(b, `"request_id":`...)
	b = appendJSONString(b, a.RequestID)
	b = append(b, `,"ip":`...)
	b = appendJSONString(b, a.IP)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, a.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, a.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.Status), 10)
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, at.UnixMicro(), 10)
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does, so any path a client sends decodes.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
