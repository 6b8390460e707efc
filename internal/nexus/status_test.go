package nexus

import "testing"

func TestPartnerStatusAllows(t *testing.T) {
	tests := []struct {
		status     PartnerStatus
		live, test bool
	}{
		{PartnerPending, false, true},
		{PartnerApproved, true, true},
		{PartnerInactive, false, false},
		{PartnerRejected, false, false},
		{PartnerStatus(""), false, false},
		{PartnerStatus("APPROVED"), false, false},
		{PartnerStatus("suspended"), false, false},
	}
	for _, tt := range tests {
		if got := tt.status.Allows(Live); got != tt.live {
			t.Errorf("%q.Allows(live) = %v, want %v", tt.status, got, tt.live)
		}
		if got := tt.status.Allows(Test); got != tt.test {
			t.Errorf("%q.Allows(test) = %v, want %v", tt.status, got, tt.test)
		}
		// No status allows an environment that does not exist.
		if tt.status.Allows(Environment("staging")) && tt.status != PartnerApproved {
			t.Errorf("%q.Allows(staging) = true", tt.status)
		}
	}
}

func TestPartnerStatusValid(t *testing.T) {
	for _, s := range []PartnerStatus{PartnerPending, PartnerApproved, PartnerInactive, PartnerRejected} {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
	}
	for _, s := range []PartnerStatus{"", "Approved", "active", "suspended"} {
		if s.Valid() {
			t.Errorf("%q.Valid() = true", s)
		}
	}
}

func TestEnvironmentValid(t *testing.T) {
	for _, e := range []Environment{Live, Test} {
		if !e.Valid() {
			t.Errorf("%q.Valid() = false", e)
		}
	}
	for _, e := range []Environment{"", "Live", "prod", "sandbox"} {
		if e.Valid() {
			t.Errorf("%q.Valid() = true", e)
		}
	}
}
