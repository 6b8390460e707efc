package dashboard

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
)

type membersData struct {
	Members     []*oauth.Member
	Invitations []*oauth.Invitation
	Roles       []oauth.Role
	// Link is a new invitation's link, shown once.
	Link, Email, Role string
	Errors            map[string]string
}

func (d *Dashboard) membersData(r *request) (membersData, error) {
	ms, err := d.cfg.OAuth.ListMembers(r.ctx, r.partner.ID)
	if err != nil {
		return membersData{}, err
	}
	var invs []*oauth.Invitation
	if r.member.Role.AtLeast(oauth.Owner) {
		if invs, err = d.cfg.OAuth.ListInvitations(r.ctx, r.partner.ID); err != nil {
			return membersData{}, err
		}
	}
	return membersData{Members: ms, Invitations: invs, Roles: oauth.Roles, Role: string(oauth.Developer), Errors: map[string]string{}}, nil
}

func (d *Dashboard) membersPage(c *fiber.Ctx, r *request) error {
	data, err := d.membersData(r)
	if err != nil {
		return d.fail(c, r, err)
	}
	return d.render(c, fiber.StatusOK, "members.html", d.newPage(r, "Members", "members", "/members", data))
}

// invite records an invitation and shows its link once: the owner passes
// it on (Nexus sends no mail).
func (d *Dashboard) invite(c *fiber.Ctx, r *request) error {
	email, role := strings.TrimSpace(c.FormValue("email")), c.FormValue("role")
	tok, _, err := d.cfg.OAuth.Invite(r.ctx, r.partner.ID, email, oauth.Role(role), r.member.ID)
	data, lerr := d.membersData(r)
	if lerr != nil {
		return d.fail(c, r, lerr)
	}
	data.Email, data.Role = email, role
	var ne *nexus.Error
	if errors.As(err, &ne) && ne.Param != "" {
		data.Errors[ne.Param] = ne.Message
		return d.render(c, fiber.StatusBadRequest, "members.html", d.newPage(r, "Members", "members", "/members", data))
	}
	if err != nil {
		return d.fail(c, r, err)
	}
	data.Link = d.cfg.Issuer + "/dashboard/invitations/" + tok
	data.Email, data.Role = "", string(oauth.Developer)
	return d.render(c, fiber.StatusCreated, "members.html", d.newPage(r, "Members", "members", "/members", data))
}

// invitationPurpose binds the invitation form's CSRF token to the link's
// token.
const invitationPurpose = "invitation"

type invitationData struct {
	Email, Partner, Role, CSRF, Token string
	Errors                            map[string]string
}

func (d *Dashboard) invitationPage(c *fiber.Ctx, _ *request) error {
	tok := c.Params("token")
	inv, err := d.cfg.OAuth.PendingInvitation(c.UserContext(), tok)
	if errors.Is(err, oauth.ErrInvitationInvalid) {
		return d.message(c, nil, fiber.StatusNotFound, "Invitation not valid", err.Error()+" Ask the person who invited you for a new link.")
	}
	if err != nil {
		return d.fail(c, nil, err)
	}
	return d.invitationForm(c, fiber.StatusOK, inv, tok, nil)
}

func (d *Dashboard) invitationForm(c *fiber.Ctx, status int, inv *oauth.Invitation, tok string, errs map[string]string) error {
	p, err := d.cfg.Partners.Get(c.UserContext(), inv.PartnerID)
	if err != nil {
		return d.fail(c, nil, err)
	}
	pg := d.newPage(nil, "Join "+p.Name+" on Nexus", "", "", invitationData{
		Email: inv.Email, Partner: p.Name, Role: string(inv.Role), Token: tok,
		CSRF: d.cfg.CSRF.Token(invitationPurpose, tok), Errors: errs,
	})
	return d.render(c, status, "invitation.html", pg)
}

func (d *Dashboard) invitationAccept(c *fiber.Ctx, _ *request) error {
	tok := c.Params("token")
	ctx := c.UserContext()
	if !d.cfg.CSRF.Valid(invitationPurpose, tok, c.FormValue("csrf_token")) {
		return d.message(c, nil, fiber.StatusForbidden, "Not verified", "The form could not be verified. Open the invitation link again.")
	}
	inv, err := d.cfg.OAuth.PendingInvitation(ctx, tok)
	if errors.Is(err, oauth.ErrInvitationInvalid) {
		return d.message(c, nil, fiber.StatusNotFound, "Invitation not valid", err.Error())
	}
	if err != nil {
		return d.fail(c, nil, err)
	}
	pw := c.FormValue("password")
	if pw != c.FormValue("password_again") {
		return d.invitationForm(c, fiber.StatusBadRequest, inv, tok, map[string]string{"password_again": "The two passwords differ."})
	}
	ctx = audit.WithOrigin(ctx, audit.Origin{IP: d.clientIP(c), RequestID: string(c.Response().Header.Peek("X-Request-Id"))})
	_, err = d.cfg.OAuth.AcceptInvitation(ctx, tok, pw)
	var ne *nexus.Error
	switch {
	case errors.As(err, &ne) && ne.Param == "password":
		return d.invitationForm(c, fiber.StatusBadRequest, inv, tok, map[string]string{"password": "Choose a password of 12 to 256 characters."})
	case errors.As(err, &ne) && ne.Param == "email":
		return d.message(c, nil, fiber.StatusConflict, "Already a member", "A member with this email exists. Sign in instead.")
	case errors.Is(err, oauth.ErrInvitationInvalid):
		return d.message(c, nil, fiber.StatusNotFound, "Invitation not valid", err.Error())
	case err != nil:
		return d.fail(c, nil, err)
	}
	pg := d.newPage(nil, "Welcome", "", "", nil)
	pg.Notice = "Your account is ready."
	return d.render(c, fiber.StatusCreated, "joined.html", pg)
}

func (d *Dashboard) memberRole(c *fiber.Ctx, r *request) error {
	if _, err := d.cfg.OAuth.SetMemberRole(r.ctx, r.partner.ID, c.Params("id"), oauth.Role(c.FormValue("role"))); err != nil {
		return d.fail(c, r, err)
	}
	return c.Redirect("/dashboard/"+string(r.env)+"/members", fiber.StatusSeeOther)
}

func (d *Dashboard) memberRemovePage(c *fiber.Ctx, r *request) error {
	m, err := d.cfg.OAuth.GetMember(r.ctx, r.partner.ID, c.Params("id"))
	if err != nil {
		return d.fail(c, r, err)
	}
	return d.render(c, fiber.StatusOK, "confirm.html", d.newPage(r, "Remove member", "members", "/members", confirmData{
		What: "member " + m.Email, Verb: "Remove", Action: "/dashboard/" + string(r.env) + "/members/" + m.ID + "/remove",
		Back: "/dashboard/" + string(r.env) + "/members",
	}))
}

func (d *Dashboard) memberRemove(c *fiber.Ctx, r *request) error {
	if _, err := d.cfg.OAuth.RemoveMember(r.ctx, r.partner.ID, c.Params("id")); err != nil {
		return d.fail(c, r, err)
	}
	return c.Redirect("/dashboard/"+string(r.env)+"/members", fiber.StatusSeeOther)
}
