// Package dashboard is the partner dashboard: server-rendered pages at
// /dashboard where a partner's members manage keys, apps and members and
// read their logs. It is a second front door to the same capability
// services as the API: every action runs with a principal and an audit
// origin naming the member, so the same scope checks and the same audit
// events apply.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/csrf"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config wires the dashboard to the capability services.
type Config struct {
	Keys     *apikey.Service  // Required.
	OAuth    *oauth.Service   // Required: sessions, members, apps, grants.
	Partners *partner.Service // Required.
	Ledger   *ledger.Service  // Required.
	Audit    *audit.Reader    // Required.
	CSRF     *csrf.Signer     // Required: the signer of the sign-in forms.
	Services *servicetoken.Service
	// Drop forgets a credential on this instance at once (other instances
	// hear of it through the invalidation channel). Optional.
	Drop func(topic string)
	// Issuer is the public base URL, for invitation links. Optional.
	Issuer string
	// Environments the deployment serves. Optional. Default: live and test.
	Environments []nexus.Environment
	Logger       *slog.Logger // Optional. Default: slog.Default().
	// Now is the clock. Optional. Default: time.Now.
	Now func() time.Time
}

// Dashboard serves the pages.
type Dashboard struct {
	cfg      Config
	pages    map[string]*template.Template
	clientIP func(*fiber.Ctx) string
	served   map[nexus.Environment]bool
}

// New parses the templates and returns the dashboard.
func New(cfg Config) *Dashboard {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Environments) == 0 {
		cfg.Environments = []nexus.Environment{nexus.Live, nexus.Test}
	}
	d := &Dashboard{cfg: cfg, pages: map[string]*template.Template{}, served: map[nexus.Environment]bool{}}
	for _, e := range cfg.Environments {
		d.served[e] = true
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		d.pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return d
}

// Need is what a route asks of the signed-in member.
type Need int

// The needs, weakest first. The zero value is no decision: a route without
// one fails TestEveryRouteDeclaresANeed.
const (
	undeclared Need = iota
	// Public needs no session (static files, the invitation page).
	Public
	// Read is any member of the partner, viewers included.
	Read
	// Manage is a member who may change credentials of the page's
	// environment: developer and up in test, admin and up in live.
	Manage
	// ManageMembers is an owner.
	ManageMembers
)

func (n Need) String() string {
	return [...]string{"undeclared", "public", "read", "manage", "manage_members"}[n]
}

// Route is one row of the dashboard's route table.
type Route struct {
	Method, Path string // Path is relative to /dashboard
	Need         Need
	Handler      func(c *fiber.Ctx, r *request) error
}

// Routes is the dashboard's route table: reading it tells what every page
// and action needs.
func (d *Dashboard) Routes() []Route {
	get, post := fiber.MethodGet, fiber.MethodPost
	return []Route{
		{get, "/static/:name", Public, d.static},
		{get, "/invitations/:token", Public, d.invitationPage},
		{post, "/invitations/:token", Public, d.invitationAccept},
		{get, "/", Read, d.home},
		{get, "/:env", Read, d.overview},
		{get, "/:env/keys", Read, d.keysPage},
		{get, "/:env/keys/new", Manage, d.keyNewPage},
		{post, "/:env/keys", Manage, d.keyCreate},
		{get, "/:env/keys/:id", Read, d.keyPage},
		{post, "/:env/keys/:id/suspend", Manage, d.keySuspend},
		{post, "/:env/keys/:id/reactivate", Manage, d.keyReactivate},
		{post, "/:env/keys/:id/rotate", Manage, d.keyRotate},
		{get, "/:env/keys/:id/revoke", Manage, d.keyRevokePage},
		{post, "/:env/keys/:id/revoke", Manage, d.keyRevoke},
		{get, "/:env/members", Read, d.membersPage},
		{post, "/:env/members/invitations", ManageMembers, d.invite},
		{post, "/:env/members/:id/role", ManageMembers, d.memberRole},
		{get, "/:env/members/:id/remove", ManageMembers, d.memberRemovePage},
		{post, "/:env/members/:id/remove", ManageMembers, d.memberRemove},
		{get, "/:env/logs", Read, d.logsPage},
		{get, "/:env/usage", Read, d.usagePage},
		{get, "/:env/apps", Read, d.appsPage},
		{post, "/:env/service_credentials", Manage, d.serviceCreate},
		{post, "/:env/oauth_clients", Manage, d.clientCreate},
		{get, "/:env/:kind/:id/end", Manage, d.endPage},
		{post, "/:env/:kind/:id/end", Manage, d.end},
	}
}

// Mount adds the routes under r (the /dashboard group); clientIP tells a
// request's client address as the API's limits and audit see it.
func (d *Dashboard) Mount(r fiber.Router, clientIP func(*fiber.Ctx) string) {
	d.clientIP = clientIP
	for _, rt := range d.Routes() {
		r.Add(rt.Method, rt.Path, d.wrap(rt))
	}
}

// request is what a handler knows of the signed-in member.
type request struct {
	member  *oauth.Member
	partner nexus.Partner
	env     nexus.Environment
	session string // the cookie value, to which the CSRF tokens bind
	ctx     context.Context
}

func (r *request) tenant() nexus.Tenant {
	return nexus.Tenant{PartnerID: r.partner.ID, Environment: r.env}
}

// csrfPurpose is the purpose of every dashboard form's token.
const csrfPurpose = "dashboard"

// headers are those of every dashboard answer: a strict CSP (no inline
// script or style; scripts, styles and images from the dashboard only), no
// framing, no caching of pages that may hold a secret.
func headers(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.Set("X-Frame-Options", "DENY")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderCacheControl, "no-store")
}

// wrap applies the route's need: a session, a member of a partner allowed
// in the environment, the role, and for a POST a CSRF token bound to the
// session.
func (d *Dashboard) wrap(rt Route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		headers(c)
		if rt.Need == Public {
			return rt.Handler(c, nil)
		}
		ctx := c.UserContext()
		tok := c.Cookies(oauth.SessionCookie)
		sess, err := d.cfg.OAuth.Session(ctx, tok)
		if err != nil {
			return d.fail(c, nil, err)
		}
		var m *oauth.Member
		if sess != nil {
			m, err = d.cfg.OAuth.GetMember(ctx, sess.PartnerID, sess.MemberID)
			if nexus.CodeOf(err) == nexus.CodeResourceMissing {
				sess, err = nil, nil // the member was removed
			} else if err != nil {
				return d.fail(c, nil, err)
			}
		}
		if sess == nil {
			if c.Method() == fiber.MethodGet {
				return c.Redirect("/login?return_to="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
			}
			return d.message(c, nil, fiber.StatusForbidden, "Signed out", "Your session ended. Sign in again and repeat the action.")
		}
		p, err := d.cfg.Partners.Get(ctx, sess.PartnerID)
		if err != nil {
			return d.fail(c, nil, err)
		}
		r := &request{member: m, partner: p, session: tok}
		if e := c.Params("env"); e != "" {
			r.env = nexus.Environment(e)
			if !r.env.Valid() {
				return d.message(c, nil, fiber.StatusNotFound, "Not found", "There is no such page.")
			}
		} else {
			r.env = nexus.Test
		}
		if rt.Path != "/" {
			if !d.served[r.env] {
				return d.message(c, r, fiber.StatusForbidden, "Environment not served", "This deployment does not serve the "+string(r.env)+" environment.")
			}
			if !p.Status.Allows(r.env) {
				return d.message(c, r, fiber.StatusForbidden, "Not available", "Your account ("+string(p.Status)+") cannot use the "+string(r.env)+" environment yet.")
			}
		}
		switch rt.Need {
		case Manage:
			if !m.Role.CanManage(r.env) {
				return d.message(c, r, fiber.StatusForbidden, "Not allowed", "Your role ("+string(m.Role)+") cannot change "+string(r.env)+"-environment credentials.")
			}
		case ManageMembers:
			if !m.Role.AtLeast(oauth.Owner) {
				return d.message(c, r, fiber.StatusForbidden, "Not allowed", "Only owners manage members.")
			}
		case Read:
		default:
			return d.message(c, r, fiber.StatusForbidden, "Not allowed", "This page declares no access rule.")
		}
		if c.Method() != fiber.MethodGet && !d.cfg.CSRF.Valid(csrfPurpose, tok, c.FormValue("csrf_token")) {
			return d.message(c, r, fiber.StatusForbidden, "Not verified", "The form could not be verified (it is too old or came from another site). Reload the page and try again.")
		}
		// The member acts as a principal with its role's scopes, and the
		// audit log names it.
		r.ctx = nexus.WithPrincipal(audit.WithOrigin(ctx, audit.Origin{
			CredentialID: m.ID, Actor: m.Email, IP: d.clientIP(c), RequestID: string(c.Response().Header.Peek("X-Request-Id")),
		}), &nexus.Principal{
			Partner: p, Environment: r.env, Scopes: m.Role.Scopes(r.env),
			CredentialID: m.ID, CredentialType: nexus.CredentialMember, Actor: m.Email,
		})
		return rt.Handler(c, r)
	}
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the active section
	Env     nexus.Environment
	Partner nexus.Partner
	Member  *oauth.Member
	CSRF    string
	// LogoutCSRF is the sign-out form's token (its purpose is /logout's).
	LogoutCSRF string
	// Here is the current section's path after the environment, for the
	// environment switch.
	Here    string
	Envs    []nexus.Environment
	Notice  string
	CanEdit bool // the member may change credentials of this environment
	Owner   bool
	Data    any
}

func (d *Dashboard) newPage(r *request, title, nav, here string, data any) page {
	p := page{Title: title, Nav: nav, Here: here, Data: data}
	if r != nil {
		p.Env, p.Partner, p.Member = r.env, r.partner, r.member
		p.CSRF = d.cfg.CSRF.Token(csrfPurpose, r.session)
		p.LogoutCSRF = d.cfg.CSRF.Token("logout", r.session)
		for _, e := range []nexus.Environment{nexus.Test, nexus.Live} {
			if d.served[e] && r.partner.Status.Allows(e) {
				p.Envs = append(p.Envs, e)
			}
		}
		p.CanEdit = r.member.Role.CanManage(r.env)
		p.Owner = r.member.Role.AtLeast(oauth.Owner)
	}
	return p
}

func (d *Dashboard) render(c *fiber.Ctx, status int, name string, p page) error {
	var buf bytes.Buffer
	t, ok := d.pages[name]
	if !ok {
		return errors.New("dashboard: no template " + name)
	}
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).Send(buf.Bytes())
}

// message renders a page holding one message.
func (d *Dashboard) message(c *fiber.Ctx, r *request, status int, title, msg string) error {
	p := d.newPage(r, title, "", "", nil)
	p.Notice = msg
	return d.render(c, status, "message.html", p)
}

// fail renders an error of a service call: not found and invalid state as
// such, anything else as a 500 (logged, never shown).
func (d *Dashboard) fail(c *fiber.Ctx, r *request, err error) error {
	var ne *nexus.Error
	if errors.As(err, &ne) {
		switch ne.Code {
		case nexus.CodeResourceMissing:
			return d.message(c, r, fiber.StatusNotFound, "Not found", "There is no such object in this environment.")
		case nexus.CodeInvalidState:
			return d.message(c, r, fiber.StatusConflict, "Not possible", ne.Message)
		case nexus.CodeServiceUnavailable:
			return d.message(c, r, fiber.StatusServiceUnavailable, "Unavailable", "The service is briefly unavailable. Try again in a moment.")
		}
		if ne.Param != "" || strings.HasPrefix(string(ne.Code), "parameter_") || ne.Code == nexus.CodeInvalidScopes {
			return d.message(c, r, fiber.StatusBadRequest, "Not possible", ne.Message)
		}
	}
	if errors.Is(err, oauth.ErrBusy) {
		return d.message(c, r, fiber.StatusServiceUnavailable, "Busy", "Too many password checks are running. Try again in a moment.")
	}
	d.cfg.Logger.Error("dashboard: request failed", "path", c.Path(), "request_id", string(c.Response().Header.Peek("X-Request-Id")), "err", err)
	return d.message(c, r, fiber.StatusInternalServerError, "Something went wrong", "The request failed. Try again; if it keeps failing, contact support with the request id "+string(c.Response().Header.Peek("X-Request-Id"))+".")
}

func (d *Dashboard) home(c *fiber.Ctx, r *request) error {
	return c.Redirect("/dashboard/"+string(d.defaultEnv(r)), fiber.StatusSeeOther)
}

// defaultEnv is test when the partner may use it (the safe place to
// start), else live.
func (d *Dashboard) defaultEnv(r *request) nexus.Environment {
	if d.served[nexus.Test] && r.partner.Status.Allows(nexus.Test) {
		return nexus.Test
	}
	return nexus.Live
}

// static serves the embedded stylesheet and script.
func (d *Dashboard) static(c *fiber.Ctx, _ *request) error {
	name := c.Params("name")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		return c.Status(fiber.StatusNotFound).SendString("not found")
	}
	switch path.Ext(name) {
	case ".css":
		c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	case ".js":
		c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	case ".svg":
		c.Set(fiber.HeaderContentType, "image/svg+xml")
	default:
		c.Set(fiber.HeaderContentType, fiber.MIMEOctetStream)
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(b)
}

// storePage is a list page of size n after the cursor in the query.
func storePage(c *fiber.Ctx, n int) store.Page {
	after := c.Query("starting_after")
	if len(after) > 64 {
		after = ""
	}
	return store.Page{Limit: n, StartingAfter: after}
}
