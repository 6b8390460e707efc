package nexus

import (
	"slices"
	"testing"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		want  ScopeSet
		bad   string
		valid bool
	}{
		{name: "empty", in: nil, want: 0, valid: true},
		{name: "one", in: []string{"read:balances"}, want: ScopeSet(ScopeReadBalances), valid: true},
		{name: "several", in: []string{"read:funding", "write:requests"}, want: ScopeSet(ScopeReadFunding | ScopeWriteRequests), valid: true},
		{name: "duplicate", in: []string{"read:funding", "read:funding"}, want: ScopeSet(ScopeReadFunding), valid: true},
		{name: "alias read", in: []string{"read"}, want: ReadScopes, valid: true},
		{name: "alias write", in: []string{"write"}, want: ReadScopes | WriteScopes, valid: true},
		{name: "alias admin", in: []string{"admin"}, want: ScopeSet(ScopeAdminAll), valid: true},
		{name: "alias and name", in: []string{"read", "write:addresses"}, want: ReadScopes | ScopeSet(ScopeWriteAddresses), valid: true},
		{name: "internal", in: []string{"internal:funding", "internal:requests"}, want: InternalScopes, valid: true},
		{name: "every canonical name", in: []string{
			"read:balances", "read:funding", "read:addresses", "write:addresses",
			"read:requests", "write:requests", "admin:all", "internal:funding", "internal:requests", "read:usage",
		}, want: PartnerScopes | InternalScopes, valid: true},
		{name: "unknown", in: []string{"read:balances", "read:everything"}, bad: "read:everything"},
		{name: "first unknown reported", in: []string{"nope", "also-nope"}, bad: "nope"},
		{name: "case sensitive", in: []string{"READ:balances"}, bad: "READ:balances"},
		{name: "alias case sensitive", in: []string{"Read"}, bad: "Read"},
		{name: "empty name", in: []string{""}, bad: ""},
		{name: "padded", in: []string{" read:balances"}, bad: " read:balances"},
		{name: "write without colon part", in: []string{"write:"}, bad: "write:"},
		{name: "admin full name alias mixup", in: []string{"admin:"}, bad: "admin:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, ok := ParseScopes(tt.in)
			if ok != tt.valid {
				t.Fatalf("ParseScopes(%q) ok = %v, want %v", tt.in, ok, tt.valid)
			}
			if !ok {
				if bad != tt.bad {
					t.Errorf("ParseScopes(%q) bad = %q, want %q", tt.in, bad, tt.bad)
				}
				if got != 0 {
					t.Errorf("ParseScopes(%q) = %v on failure, want empty set", tt.in, got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("ParseScopes(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if bad != "" {
				t.Errorf("ParseScopes(%q) bad = %q on success", tt.in, bad)
			}
		})
	}
}

func TestParseScopeString(t *testing.T) {
	for _, set := range []ScopeSet{0, ReadScopes, WriteScopes, PartnerScopes, InternalScopes, ScopeSet(ScopeAdminAll), ScopeSet(ScopeReadFunding | ScopeWriteRequests)} {
		got, ok := ParseScopeString(set.String())
		if !ok || got != set {
			t.Errorf("ParseScopeString(%q) = %v, %v; want %v, true", set.String(), got, ok, set)
		}
	}
	if got, ok := ParseScopeString("  read:balances \t write:addresses\n"); !ok || got != ScopeSet(ScopeReadBalances|ScopeWriteAddresses) {
		t.Errorf("ParseScopeString with extra whitespace = %v, %v", got, ok)
	}
	if _, ok := ParseScopeString("read:balances bogus"); ok {
		t.Error("ParseScopeString accepted an unknown scope")
	}
}

var allScopes = []Scope{
	ScopeReadBalances, ScopeReadFunding, ScopeReadAddresses, ScopeWriteAddresses,
	ScopeReadRequests, ScopeWriteRequests, ScopeAdminAll, ScopeInternalFunding, ScopeInternalRequests, ScopeReadUsage,
}

func TestHas(t *testing.T) {
	tests := []struct {
		name string
		set  ScopeSet
		want []Scope // exactly the scopes Has reports
	}{
		{name: "empty", set: 0, want: nil},
		{name: "read:balances", set: ScopeSet(ScopeReadBalances), want: []Scope{ScopeReadBalances}},
		{name: "read:addresses does not imply write", set: ScopeSet(ScopeReadAddresses), want: []Scope{ScopeReadAddresses}},
		{name: "write:addresses implies read:addresses", set: ScopeSet(ScopeWriteAddresses), want: []Scope{ScopeWriteAddresses, ScopeReadAddresses}},
		{name: "write:requests implies read:requests", set: ScopeSet(ScopeWriteRequests), want: []Scope{ScopeWriteRequests, ScopeReadRequests}},
		{name: "read alias", set: ReadScopes, want: []Scope{ScopeReadBalances, ScopeReadFunding, ScopeReadAddresses, ScopeReadRequests, ScopeReadUsage}},
		{name: "write alias", set: ReadScopes | WriteScopes, want: []Scope{
			ScopeReadBalances, ScopeReadFunding, ScopeReadAddresses, ScopeWriteAddresses, ScopeReadRequests, ScopeWriteRequests, ScopeReadUsage,
		}},
		{name: "admin:all implies every partner scope, no internal one", set: ScopeSet(ScopeAdminAll), want: []Scope{
			ScopeReadBalances, ScopeReadFunding, ScopeReadAddresses, ScopeWriteAddresses, ScopeReadRequests, ScopeWriteRequests, ScopeAdminAll, ScopeReadUsage,
		}},
		{name: "internal:funding implies nothing else", set: ScopeSet(ScopeInternalFunding), want: []Scope{ScopeInternalFunding}},
		{name: "internal scopes do not imply partner scopes", set: InternalScopes, want: []Scope{ScopeInternalFunding, ScopeInternalRequests}},
		{name: "every read does not imply admin", set: ReadScopes | WriteScopes, want: []Scope{
			ScopeReadBalances, ScopeReadFunding, ScopeReadAddresses, ScopeWriteAddresses, ScopeReadRequests, ScopeWriteRequests, ScopeReadUsage,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range allScopes {
				want := slices.Contains(tt.want, s)
				if got := tt.set.Has(s); got != want {
					t.Errorf("%q.Has(%s) = %v, want %v", tt.set, s, got, want)
				}
			}
		})
	}
}

func TestEffectiveIsIdempotent(t *testing.T) {
	for set := ScopeSet(0); set < ScopeSet(scopeEnd); set++ {
		e := set.Effective()
		if e.Effective() != e {
			t.Fatalf("Effective not idempotent for %v", set)
		}
		if e&set != set {
			t.Fatalf("Effective(%v) = %v lost scopes", set, e)
		}
		if set&InternalScopes == 0 && e&InternalScopes != 0 {
			t.Fatalf("Effective(%v) = %v grants an internal scope", set, e)
		}
	}
}

func TestContains(t *testing.T) {
	tests := []struct {
		name       string
		set, other ScopeSet
		want       bool
	}{
		{"empty contains empty", 0, 0, true},
		{"anything contains empty", ScopeSet(ScopeReadFunding), 0, true},
		{"empty contains nothing", 0, ScopeSet(ScopeReadFunding), false},
		{"itself", ReadScopes, ReadScopes, true},
		{"superset", ReadScopes, ScopeSet(ScopeReadBalances | ScopeReadFunding), true},
		{"subset does not contain superset", ScopeSet(ScopeReadBalances), ReadScopes, false},
		{"write implies read", ScopeSet(ScopeWriteAddresses), ScopeSet(ScopeReadAddresses | ScopeWriteAddresses), true},
		{"write implies only its own read", ScopeSet(ScopeWriteAddresses), ScopeSet(ScopeReadRequests), false},
		{"read does not imply write", ScopeSet(ScopeReadAddresses), ScopeSet(ScopeWriteAddresses), false},
		{"admin contains every partner scope", ScopeSet(ScopeAdminAll), PartnerScopes, true},
		{"admin does not contain internal", ScopeSet(ScopeAdminAll), ScopeSet(ScopeInternalFunding), false},
		{"admin does not contain partner+internal", ScopeSet(ScopeAdminAll), PartnerScopes | ScopeSet(ScopeInternalRequests), false},
		{"read+write does not contain admin", ReadScopes | WriteScopes, ScopeSet(ScopeAdminAll), false},
		{"internal does not contain read", InternalScopes, ScopeSet(ScopeReadFunding), false},
		{"internal contains internal", InternalScopes, ScopeSet(ScopeInternalRequests), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.set.Contains(tt.other); got != tt.want {
				t.Errorf("%q.Contains(%q) = %v, want %v", tt.set, tt.other, got, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		set  ScopeSet
		want []string
	}{
		{0, []string{}},
		{ScopeSet(ScopeWriteRequests | ScopeReadBalances), []string{"read:balances", "write:requests"}},
		{ReadScopes, []string{"read:addresses", "read:balances", "read:funding", "read:requests", "read:usage"}},
		// Names lists the set as held, not its implications.
		{ScopeSet(ScopeAdminAll), []string{"admin:all"}},
		{ScopeSet(ScopeWriteAddresses), []string{"write:addresses"}},
		{PartnerScopes | InternalScopes, []string{
			"admin:all", "internal:funding", "internal:requests",
			"read:addresses", "read:balances", "read:funding", "read:requests", "read:usage",
			"write:addresses", "write:requests",
		}},
		// Bits beyond the known scopes are not names.
		{ScopeSet(ScopeReadFunding) | ScopeSet(scopeEnd) | 1<<31, []string{"read:funding"}},
	}
	for _, tt := range tests {
		got := tt.set.Names()
		if got == nil {
			t.Errorf("Names() of %b is nil; want a non-nil slice (renders as [] in JSON)", tt.set)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Names() of %b = %q, want %q", tt.set, got, tt.want)
		}
		if !slices.IsSorted(got) {
			t.Errorf("Names() of %b not sorted: %q", tt.set, got)
		}
	}
	if got, want := (ReadScopes | WriteScopes).String(), "read:addresses read:balances read:funding read:requests read:usage write:addresses write:requests"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// Every scope has a canonical name that parses back to it.
func TestScopeNamesRoundTrip(t *testing.T) {
	for s := Scope(1); s < scopeEnd; s <<= 1 {
		name := s.String()
		if name == "" {
			t.Fatalf("scope %d has no name", s)
		}
		got, _, ok := ParseScopes([]string{name})
		if !ok || got != ScopeSet(s) {
			t.Errorf("ParseScopes(%q) = %v, %v; want %v", name, got, ok, s)
		}
	}
	if len(scopeNames) != len(allScopes) {
		t.Errorf("scopeNames has %d entries, the tests know %d scopes", len(scopeNames), len(allScopes))
	}
}
