package httpapi

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nexus-fintech/nexus/internal/jsonenc"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// GET /v1/partner is the request partners poll most. Its answer is a
// function of the principal alone, and a principal is immutable once built
// (the authenticator hands out the same one for as long as it trusts its
// verification; a changed partner or credential comes with a new one), so
// the answer is encoded once per principal and kept in a small
// direct-mapped cache. It is written by hand, byte for byte as json.Marshal
// writes it (encode_test.go holds the two side by side).

type bodyCache [256]atomic.Pointer[bodyEntry]

type bodyEntry struct {
	p    *nexus.Principal // kept alive by the entry, so its address is not reused
	body []byte
}

func bodySlot(c *bodyCache, p *nexus.Principal) *atomic.Pointer[bodyEntry] {
	// Heap objects do not move: the address identifies the principal.
	h := uint64(uintptr(unsafe.Pointer(p))>>4) * 0x9e3779b97f4a7c15
	return &c[h>>56]
}

// get returns p's answer, nil when it is not cached.
func (c *bodyCache) get(p *nexus.Principal) []byte {
	if e := bodySlot(c, p).Load(); e != nil && e.p == p {
		return e.body
	}
	return nil
}

func (c *bodyCache) put(p *nexus.Principal, body []byte) []byte {
	bodySlot(c, p).Store(&bodyEntry{p: p, body: body})
	return body
}

func (v *partnerView) appendJSON(b []byte) []byte {
	b = append(b, `{"object":`...)
	b = jsonenc.AppendString(b, v.Object)
	b = append(b, `,"id":`...)
	b = jsonenc.AppendString(b, v.ID)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, v.Name)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, string(v.Status))
	b = append(b, `,"environment":`...)
	b = jsonenc.AppendString(b, string(v.Environment))
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, v.CreatedAt)
	b = append(b, `,"credential":{"id":`...)
	b = jsonenc.AppendString(b, v.Credential.ID)
	b = append(b, `,"type":`...)
	b = jsonenc.AppendString(b, string(v.Credential.Type))
	b = append(b, `,"scopes":[`...)
	for i, s := range v.Credential.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, s)
	}
	return append(b, "]}}"...)
}

// jsonTimeOK reports whether time.Time.MarshalJSON accepts t (years 0 to
// 9999); appendJSONTime writes only those.
func jsonTimeOK(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }

// appendJSONTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
