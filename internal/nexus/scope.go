package nexus

import (
	"math/bits"
	"sort"
	"strings"
)

// Scope is one permission. ScopeSet is a bit set of them so that the check on
// every request is a single AND.
type Scope uint32

const (
	ScopeReadBalances Scope = 1 << iota
	ScopeReadFunding
	ScopeReadAddresses
	ScopeWriteAddresses
	ScopeReadRequests
	ScopeWriteRequests
	ScopeAdminAll
	ScopeInternalFunding
	ScopeInternalRequests
	// ScopeReadUsage came later: new scopes go last, so that no existing
	// bit changes meaning.
	ScopeReadUsage
	scopeEnd
)

// ScopeSet is a set of scopes.
type ScopeSet uint32

var scopeNames = map[Scope]string{
	ScopeReadBalances:     "read:balances",
	ScopeReadFunding:      "read:funding",
	ScopeReadAddresses:    "read:addresses",
	ScopeWriteAddresses:   "write:addresses",
	ScopeReadRequests:     "read:requests",
	ScopeWriteRequests:    "write:requests",
	ScopeAdminAll:         "admin:all",
	ScopeInternalFunding:  "internal:funding",
	ScopeInternalRequests: "internal:requests",
	ScopeReadUsage:        "read:usage",
}

var scopeByName = func() map[string]Scope {
	m := make(map[string]Scope, len(scopeNames))
	for s, n := range scopeNames {
		m[n] = s
	}
	return m
}()

const (
	// ReadScopes is every read:* scope.
	ReadScopes = ScopeSet(ScopeReadBalances | ScopeReadFunding | ScopeReadAddresses | ScopeReadRequests | ScopeReadUsage)
	// WriteScopes is every write:* scope.
	WriteScopes = ScopeSet(ScopeWriteAddresses | ScopeWriteRequests)
	// PartnerScopes is every scope a partner credential can hold.
	PartnerScopes = ReadScopes | WriteScopes | ScopeSet(ScopeAdminAll)
	// InternalScopes is every scope only platform services hold.
	InternalScopes = ScopeSet(ScopeInternalFunding | ScopeInternalRequests)
)

func (s Scope) String() string { return scopeNames[s] }

// Has reports whether the set grants s, following the implications of
// CONTRACT §3: write:X implies read:X, admin:all implies every partner scope.
func (set ScopeSet) Has(s Scope) bool { return set.Effective()&ScopeSet(s) != 0 }

// Effective expands the implications so that a membership test is one AND.
func (set ScopeSet) Effective() ScopeSet {
	e := set
	if set&ScopeSet(ScopeAdminAll) != 0 {
		e |= PartnerScopes
	}
	if set&ScopeSet(ScopeWriteAddresses) != 0 {
		e |= ScopeSet(ScopeReadAddresses)
	}
	if set&ScopeSet(ScopeWriteRequests) != 0 {
		e |= ScopeSet(ScopeReadRequests)
	}
	return e
}

// Contains reports whether every scope of other is granted by set.
func (set ScopeSet) Contains(other ScopeSet) bool {
	e := set.Effective()
	return other&^e == 0
}

// scopesByName is every scope with its name, in the order of the names
// (the order Names lists them in).
var scopesByName = func() []scopeName {
	out := make([]scopeName, 0, len(scopeNames))
	for s, n := range scopeNames {
		out = append(out, scopeName{s, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}()

type scopeName struct {
	scope Scope
	name  string
}

// Names lists the canonical names, sorted, as responses show them.
func (set ScopeSet) Names() []string {
	return set.AppendNames(make([]string, 0, bits.OnesCount32(uint32(set))))
}

// AppendNames appends the names Names lists to dst, so that a caller on a
// hot path can supply the storage.
func (set ScopeSet) AppendNames(dst []string) []string {
	for _, s := range scopesByName {
		if set&ScopeSet(s.scope) != 0 {
			dst = append(dst, s.name)
		}
	}
	return dst
}

// String is the space-separated canonical form, as OAuth and storage use.
func (set ScopeSet) String() string { return strings.Join(set.Names(), " ") }

// ParseScopes reads scope names and the input aliases `read`, `write` and
// `admin`. It returns the first unknown name on failure.
func ParseScopes(names []string) (ScopeSet, string, bool) {
	var set ScopeSet
	for _, n := range names {
		switch n {
		case "read":
			set |= ReadScopes
		case "write":
			set |= ReadScopes | WriteScopes
		case "admin":
			set |= ScopeSet(ScopeAdminAll)
		default:
			s, ok := scopeByName[n]
			if !ok {
				return 0, n, false
			}
			set |= ScopeSet(s)
		}
	}
	return set, "", true
}

// ParseScopeString reads the space-separated stored form.
func ParseScopeString(s string) (ScopeSet, bool) {
	set, _, ok := ParseScopes(strings.Fields(s))
	return set, ok
}
