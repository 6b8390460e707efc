package oauth

import (
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

func TestRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role             Role
		test, live, memb bool
	}{
		{Owner, true, true, true},
		{Admin, true, true, false},
		{Developer, true, false, false},
		{Viewer, false, false, false},
		{"root", false, false, false},
	} {
		if got := tc.role.CanManage(nexus.Test); got != tc.test {
			t.Errorf("%s manages test: %v", tc.role, got)
		}
		if got := tc.role.CanManage(nexus.Live); got != tc.live {
			t.Errorf("%s manages live: %v", tc.role, got)
		}
		if got := tc.role.AtLeast(Owner); got != tc.memb {
			t.Errorf("%s manages members: %v", tc.role, got)
		}
		if s := tc.role.Scopes(nexus.Live); tc.live != s.Has(nexus.ScopeAdminAll) || (tc.role.Valid() && !s.Has(nexus.ScopeReadBalances)) {
			t.Errorf("%s's live scopes: %v", tc.role, s)
		}
	}
}

// A session ends after SessionIdle unused, and use (a minute apart at
// least) keeps it alive.
func TestSessionIdleTimeout(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFxOn(t, db)
		if _, err := f.svc.CreateMemberWithRole(f.ctx, f.user.ID, "idle@example.test", "a long enough password", Viewer); err != nil {
			t.Fatal(err)
		}
		tok, err := f.svc.Login(f.ctx, "idle@example.test", "a long enough password")
		if err != nil {
			t.Fatal(err)
		}
		seen := func(ago time.Duration) {
			t.Helper()
			if _, err := f.cross("ages a session").Update((*session)(nil)).Set("last_seen_at = ?", store.Now().Add(-ago)).Where("id_hash = ?", digest(tok)).Exec(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		seen(SessionIdle - 2*time.Minute)
		if s, err := f.svc.Session(f.ctx, tok); err != nil || s == nil {
			t.Fatalf("a session used %v ago ended: %v", SessionIdle-2*time.Minute, err)
		}
		// That use moved last_seen_at to now: it survives what would have
		// ended it before.
		row := new(session)
		if err := f.cross("reads a session").Select(row).Where("id_hash = ?", digest(tok)).Scan(f.ctx); err != nil || row.LastSeenAt == nil || time.Since(*row.LastSeenAt) > time.Minute {
			t.Fatalf("last_seen_at not refreshed: %+v %v", row, err)
		}
		seen(SessionIdle + time.Second)
		if s, _ := f.svc.Session(f.ctx, tok); s != nil {
			t.Fatalf("a session unused for %v still works", SessionIdle+time.Second)
		}
	})
}

// An invitation creates its member once: a second use, an expired link or
// a wrong token do nothing.
func TestInvitationOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFxOn(t, db)
		tok, inv, err := f.svc.Invite(f.ctx, f.user.ID, " New@Example.test ", Developer, "mbr_x")
		if err != nil || inv.Email != "new@example.test" || !inv.ExpiresAt.After(store.Now().Add(InvitationTTL-time.Minute)) {
			t.Fatalf("invite: %+v %v", inv, err)
		}
		if _, err := f.svc.AcceptInvitation(f.ctx, tok, "short"); nexus.CodeOf(err) != nexus.CodeParameterInvalid {
			t.Errorf("a short password: %v", err)
		}
		m, err := f.svc.AcceptInvitation(f.ctx, tok, "a long enough password")
		if err != nil || m.Role != Developer || m.PartnerID != f.user.ID {
			t.Fatalf("accept: %+v %v", m, err)
		}
		if _, err := f.svc.AcceptInvitation(f.ctx, tok, "another long password"); err != ErrInvitationInvalid {
			t.Errorf("second use: %v", err)
		}
		if _, _, err := f.svc.Invite(f.ctx, f.user.ID, "new@example.test", Viewer, "mbr_x"); nexus.CodeOf(err) != nexus.CodeParameterInvalid {
			t.Errorf("inviting a member again: %v", err)
		}
		tok2, inv2, err := f.svc.Invite(f.ctx, f.user.ID, "late@example.test", Viewer, "mbr_x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.cross("expires an invitation").Update((*Invitation)(nil)).Set("expires_at = ?", store.Now().Add(-time.Second)).Where("id = ?", inv2.ID).Exec(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AcceptInvitation(f.ctx, tok2, "a long enough password"); err != ErrInvitationInvalid {
			t.Errorf("expired: %v", err)
		}
		if _, err := f.svc.AcceptInvitation(f.ctx, "wrong", "a long enough password"); err != ErrInvitationInvalid {
			t.Errorf("wrong token: %v", err)
		}
		if _, _, err := f.svc.Invite(f.ctx, f.user.ID, "x@example.test", "root", "mbr_x"); nexus.CodeOf(err) != nexus.CodeParameterInvalid {
			t.Errorf("unknown role: %v", err)
		}
	})
}
