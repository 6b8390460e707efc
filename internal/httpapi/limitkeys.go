package httpapi

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync/atomic"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// The guard needs, on every credentialed request, the client address as
// text and two rate-limiter keys built from it and from the credential id.
// The same few addresses and credentials send most requests, so the last
// ones seen are remembered in small direct-mapped caches instead of being
// formatted and concatenated (three allocations) each time. A collision
// only replaces an entry.

type addrCache [256]atomic.Pointer[addrEntry]

type addrEntry struct {
	addr    netip.Addr
	text    string // addr.String()
	failKey string // the failed-authentication limiter key
}

func (c *addrCache) get(a netip.Addr) *addrEntry {
	b := a.As16()
	h := (binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])) * 0x9e3779b97f4a7c15
	slot := &c[h>>56]
	if e := slot.Load(); e != nil && e.addr == a {
		return e
	}
	text := a.String()
	e := &addrEntry{addr: a, text: text, failKey: "fail:" + text}
	slot.Store(e)
	return e
}

type credKeyCache [256]atomic.Pointer[credKey]

type credKey struct{ id, partner, key string }

var credKeySeed = maphash.MakeSeed()

// get returns the limiter key of credential id acting for partner: a
// platform service acts for many partners, and each (service, partner)
// pair has a count of its own under that partner's limit. partner is ""
// for a credential of one partner.
func (c *credKeyCache) get(id, partner string) string {
	slot := &c[(maphash.String(credKeySeed, id)^maphash.String(credKeySeed, partner))>>56]
	if e := slot.Load(); e != nil && e.id == id && e.partner == partner {
		return e.key
	}
	key := "cred:" + id
	if partner != "" {
		key += ":" + partner
	}
	e := &credKey{id: id, partner: partner, key: key}
	slot.Store(e)
	return e.key
}

// limitKey is the principal's rate-limit key.
func (c *credKeyCache) limitKey(p *nexus.Principal) string {
	if p.CredentialType == nexus.CredentialInternalService {
		return c.get(p.CredentialID, p.Partner.ID)
	}
	return c.get(p.CredentialID, "")
}
