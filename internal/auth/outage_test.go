package auth

import (
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// TestCacheOutageGrace: losing the invalidation channel (a database outage)
// does not empty the API-key cache; its entries are trusted for the grace
// and no longer, and the channel's return drops them (issue 12.3).
func TestCacheOutageGrace(t *testing.T) {
	a := New(Config{OutageGrace: 30 * time.Second})
	var d [32]byte
	d[0] = 1
	now := time.Now()
	e := &entry{principal: &nexus.Principal{CredentialID: "key_1"}, digest: d, loadedAt: now.UnixNano()}
	a.cache.put(d, e, a.cache.gen.Load())

	a.Drop(store.TopicUnheard)
	if a.cache.len() != 1 {
		t.Fatalf("the channel's loss emptied the cache (%d entries)", a.cache.len())
	}
	if got := a.cache.get(d, now.Add(29*time.Second)); got != e {
		t.Fatalf("within the grace: %v, want the cached entry", got)
	}
	if got := a.cache.get(d, now.Add(31*time.Second)); got != nil {
		t.Fatalf("after the grace: %v, want nothing (the database decides)", got)
	}
	// A second loss does not extend the first one's grace.
	a.Drop(store.TopicUnheard)
	if got := a.cache.get(d, now.Add(31*time.Second)); got != nil {
		t.Fatalf("after a second loss: %v, want nothing", got)
	}

	// The channel is back: what it missed is unknown, so all is dropped,
	// and new entries are trusted for the usual max age again.
	a.Drop(store.TopicAll)
	if a.cache.len() != 0 {
		t.Fatalf("%d entries after TopicAll", a.cache.len())
	}
	e.loadedAt = now.Add(time.Minute).UnixNano()
	a.cache.put(d, e, a.cache.gen.Load())
	if got := a.cache.get(d, now.Add(2*time.Minute)); got != e {
		t.Fatalf("after the channel came back: %v, want the entry", got)
	}
}
