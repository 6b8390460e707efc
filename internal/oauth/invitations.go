package oauth

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 72 * time.Hour

// Invitation asks a person to become a member of a partner. The link holds
// a random token; only its digest is stored, and it works once.
type Invitation struct {
	bun.BaseModel `bun:"table:invitations"`

	ID         string     `bun:"id,pk"`
	PartnerID  string     `bun:"partner_id"`
	Email      string     `bun:"email"`
	Role       Role       `bun:"role"`
	TokenHash  string     `bun:"token_hash"`
	InvitedBy  string     `bun:"invited_by"`
	CreatedAt  time.Time  `bun:"created_at"`
	ExpiresAt  time.Time  `bun:"expires_at"`
	AcceptedAt *time.Time `bun:"accepted_at"`
}

// ErrInvitationInvalid is the one answer for an unknown, used or expired
// invitation token: the page cannot tell which, and need not.
var ErrInvitationInvalid = errors.New("this invitation link is not valid: it was used, it expired, or it is wrong")

// Invite records an invitation of email with role to partnerID and returns
// the token of its link (shown once). invitedBy is the inviting member's
// id.
func (s *Service) Invite(ctx context.Context, partnerID, email string, role Role, invitedBy string) (string, *Invitation, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if err := checkEmail(email); err != nil {
		return "", nil, err
	}
	if !role.Valid() {
		return "", nil, nexus.ParamError(nexus.CodeParameterInvalid, "role", "role must be owner, admin, developer or viewer")
	}
	tok := randomToken()
	now := store.Now()
	inv := &Invitation{ID: nexus.NewID("inv"), PartnerID: partnerID, Email: email, Role: role, TokenHash: digest(tok),
		InvitedBy: invitedBy, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// Sign-in finds a member by email alone: an email is one member of
		// all partners'.
		n, err := store.CrossTenant(tx, "member emails are unique across partners").Select((*Member)(nil)).
			Where("email = ?", email).Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return nexus.ParamError(nexus.CodeParameterInvalid, "email", "a member with this email exists")
		}
		if _, err := members(tx, partnerID).Insert(inv).Exec(ctx); err != nil {
			return err
		}
		for _, env := range []nexus.Environment{nexus.Live, nexus.Test} {
			if err := audit.Record(ctx, tx, nexus.Tenant{PartnerID: partnerID, Environment: env}, "member.invited", inv.ID,
				map[string]any{"email": email, "role": role}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return tok, inv, nil
}

// PendingInvitation returns the open invitation of a token.
func (s *Service) PendingInvitation(ctx context.Context, tok string) (*Invitation, error) {
	inv := new(Invitation)
	err := store.CrossTenant(s.db.DB, "invitation token hash: the link names the partner").Select(inv).
		Where("token_hash = ?", digest(tok)).Where("accepted_at IS NULL").Where("expires_at > ?", store.Now()).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInvitationInvalid
	}
	return inv, err
}

// ListInvitations returns a partner's open invitations, newest first.
func (s *Service) ListInvitations(ctx context.Context, partnerID string) ([]*Invitation, error) {
	var l []*Invitation
	err := members(s.db.DB, partnerID).Select(&l).Where("?TableAlias.accepted_at IS NULL").
		Where("?TableAlias.expires_at > ?", store.Now()).OrderExpr("?TableAlias.created_at DESC, ?TableAlias.id DESC").Limit(100).Scan(ctx)
	return l, err
}

// AcceptInvitation uses an invitation once: it creates the member with the
// password chosen, in the transaction that marks the invitation used, so a
// second use (even a concurrent one) finds nothing to accept.
func (s *Service) AcceptInvitation(ctx context.Context, tok, password string) (*Member, error) {
	inv, err := s.PendingInvitation(ctx, tok)
	if err != nil {
		return nil, err
	}
	m, err := newMember(inv.PartnerID, inv.Email, password, inv.Role)
	if err != nil {
		return nil, err
	}
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := store.Now()
		res, err := members(tx, inv.PartnerID).Update((*Invitation)(nil)).Set("accepted_at = ?", now).
			Where("?TableAlias.id = ?", inv.ID).Where("?TableAlias.accepted_at IS NULL").Where("?TableAlias.expires_at > ?", now).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrInvitationInvalid
		}
		ctx = audit.WithOrigin(ctx, audit.Origin{CredentialID: m.ID, Actor: m.Email, IP: audit.OriginFrom(ctx).IP})
		return insertMember(ctx, tx, m, map[string]any{"invitation": inv.ID})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// SetMemberRole changes a member's role. A partner always keeps an owner.
func (s *Service) SetMemberRole(ctx context.Context, partnerID, id string, role Role) (*Member, error) {
	if !role.Valid() {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "role", "role must be owner, admin, developer or viewer")
	}
	return s.changeMember(ctx, partnerID, id, "member.role_changed", map[string]any{"role": role}, func(tx bun.Tx) (int64, error) {
		res, err := members(tx, partnerID).Update((*Member)(nil)).Set("role = ?", role).Where("?TableAlias.id = ?", id).Exec(ctx)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
}

// RemoveMember deletes a member and ends its sessions. A partner always
// keeps an owner.
func (s *Service) RemoveMember(ctx context.Context, partnerID, id string) (*Member, error) {
	return s.changeMember(ctx, partnerID, id, "member.removed", nil, func(tx bun.Tx) (int64, error) {
		if _, err := members(tx, partnerID).Delete((*session)(nil)).Where("?TableAlias.member_id = ?", id).Exec(ctx); err != nil {
			return 0, err
		}
		res, err := members(tx, partnerID).Delete((*Member)(nil)).Where("?TableAlias.id = ?", id).Exec(ctx)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
}

// changeMember runs change on one member, refuses a partner left with no
// owner, and records event in both environments.
func (s *Service) changeMember(ctx context.Context, partnerID, id, event string, data map[string]any, change func(bun.Tx) (int64, error)) (*Member, error) {
	m, err := s.GetMember(ctx, partnerID, id)
	if err != nil {
		return nil, err
	}
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		n, err := change(tx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nexus.NotFound("member", id)
		}
		owners, err := members(tx, partnerID).Select((*Member)(nil)).Where("?TableAlias.role = ?", Owner).Count(ctx)
		if err != nil {
			return err
		}
		if owners == 0 {
			return nexus.Errorf(nexus.CodeInvalidState, "a partner keeps at least one owner: make another member owner first")
		}
		for _, env := range []nexus.Environment{nexus.Live, nexus.Test} {
			if err := audit.Record(ctx, tx, nexus.Tenant{PartnerID: partnerID, Environment: env}, event, id, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r, ok := data["role"].(Role); ok {
		m.Role = r
	}
	return m, nil
}
