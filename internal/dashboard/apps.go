package dashboard

import (
	"context"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
)

type appsData struct {
	Services []*servicetoken.View
	Clients  []*oauth.ClientView
	Grants   []*oauth.GrantView
	// The create forms' values and errors.
	SC     scForm
	Client clientForm
}

type scForm struct {
	Name, Algorithm, PublicKey string
	Scopes                     []scopeChoice
	Errors                     map[string]string
}

type clientForm struct {
	Name, Type, RedirectURIs string
	Scopes                   []scopeChoice
	Errors                   map[string]string
}

// appScopeChoices are the scopes an OAuth app may be registered for: read
// and write ones, never admin:all.
func appScopeChoices(checked []string) []scopeChoice {
	var out []scopeChoice
	for _, c := range scopeChoices(checked) {
		if c.Name != "admin:all" {
			out = append(out, c)
		}
	}
	return out
}

// appsPageSize bounds each list of the apps page.
const appsPageSize = 100

func (d *Dashboard) appsData(r *request) (appsData, error) {
	var data appsData
	var err error
	page := store.Page{Limit: appsPageSize}
	if d.cfg.Services != nil {
		if data.Services, _, err = d.cfg.Services.List(r.ctx, r.tenant(), page); err != nil {
			return data, err
		}
	}
	if data.Clients, _, err = d.cfg.OAuth.ListClients(r.ctx, r.tenant(), page); err != nil {
		return data, err
	}
	if data.Grants, _, err = d.cfg.OAuth.ListGrants(r.ctx, r.tenant(), page); err != nil {
		return data, err
	}
	data.SC = scForm{Algorithm: "HS256", Scopes: scopeChoices(nil), Errors: map[string]string{}}
	data.Client = clientForm{Type: oauth.Confidential, Scopes: appScopeChoices(nil), Errors: map[string]string{}}
	return data, nil
}

func (d *Dashboard) appsPage(c *fiber.Ctx, r *request) error {
	data, err := d.appsData(r)
	if err != nil {
		return d.fail(c, r, err)
	}
	pg := d.newPage(r, "Apps and service credentials", "apps", "/apps", data)
	pg.Notice = map[string]string{
		"revoked": "The credential was revoked. It stopped working at once.",
		"deleted": "The app was deleted and every token issued to it revoked.",
		"grant":   "The app's access was revoked, with every token it held.",
	}[c.Query("done")]
	return d.render(c, fiber.StatusOK, "apps.html", pg)
}

// paramError puts a service's parameter error next to its field.
func paramError(err error, errs map[string]string, fallback string) bool {
	var ne *nexus.Error
	if !errors.As(err, &ne) || (ne.Param == "" && ne.Code != nexus.CodeInvalidScopes && !strings.HasPrefix(string(ne.Code), "parameter_")) {
		return false
	}
	f := fieldOf(ne.Param)
	if f == "" {
		f = fallback
	}
	errs[f] = ne.Message
	return true
}

func (d *Dashboard) serviceCreate(c *fiber.Ctx, r *request) error {
	if d.cfg.Services == nil {
		return d.message(c, r, fiber.StatusNotFound, "Not found", "Service credentials are not served here.")
	}
	in := servicetoken.CreateParams{Name: strings.TrimSpace(c.FormValue("name")), Algorithm: c.FormValue("algorithm"),
		PublicKey: c.FormValue("public_key"), Scopes: formValues(c, "scopes")}
	v, err := d.cfg.Services.Create(r.ctx, r.tenant(), in)
	if err != nil {
		data, lerr := d.appsData(r)
		if lerr != nil {
			return d.fail(c, r, lerr)
		}
		data.SC = scForm{Name: in.Name, Algorithm: in.Algorithm, PublicKey: in.PublicKey, Scopes: scopeChoices(in.Scopes), Errors: map[string]string{}}
		if !paramError(err, data.SC.Errors, "algorithm") {
			return d.fail(c, r, err)
		}
		return d.render(c, fiber.StatusBadRequest, "apps.html", d.newPage(r, "Apps and service credentials", "apps", "/apps", data))
	}
	return d.render(c, fiber.StatusCreated, "secret.html", d.newPage(r, "Your new service credential", "apps", "/apps", secretData{
		What: "service credential " + v.ID, Secret: v.Secret, Label: "Signing secret (HS256)",
		Note: "Your services sign their JWTs with this secret; the credential id " + v.ID + " is their kid and iss.",
	}))
}

// secretData is a secret shown once.
type secretData struct {
	What, Secret, Label, Note string
}

func (d *Dashboard) clientCreate(c *fiber.Ctx, r *request) error {
	in := oauth.CreateClientParams{Name: strings.TrimSpace(c.FormValue("name")), Type: c.FormValue("type"),
		RedirectURIs: splitList(c.FormValue("redirect_uris")), Scopes: formValues(c, "scopes")}
	errs := map[string]string{}
	if in.Name == "" || len(in.Name) > 100 {
		errs["name"] = "Give the app a name of at most 100 characters."
	}
	if len(in.RedirectURIs) == 0 {
		errs["redirect_uris"] = "Give at least one redirect URI."
	}
	if len(in.Scopes) == 0 {
		errs["scopes"] = "Tick at least one thing the app may do."
	}
	var v *oauth.ClientView
	var err error
	if len(errs) == 0 {
		v, err = d.cfg.OAuth.CreateClient(r.ctx, r.tenant(), in)
		if err != nil && !paramError(err, errs, "scopes") {
			return d.fail(c, r, err)
		}
	}
	if len(errs) > 0 {
		data, lerr := d.appsData(r)
		if lerr != nil {
			return d.fail(c, r, lerr)
		}
		data.Client = clientForm{Name: in.Name, Type: in.Type, RedirectURIs: c.FormValue("redirect_uris"), Scopes: appScopeChoices(in.Scopes), Errors: errs}
		return d.render(c, fiber.StatusBadRequest, "apps.html", d.newPage(r, "Apps and service credentials", "apps", "/apps", data))
	}
	return d.render(c, fiber.StatusCreated, "secret.html", d.newPage(r, "Your new OAuth app", "apps", "/apps", secretData{
		What: "OAuth app " + v.Name, Secret: v.ClientSecret, Label: "Client secret",
		Note: "The client id is " + v.ClientID + ".",
	}))
}

// ending is a revocation the apps page confirms: what it ends and how.
type ending struct {
	kind, done, verb string
	get              func(r *request, id string) (string, error) // the object's name (and its existence)
	end              func(ctx context.Context, t nexus.Tenant, id string) error
}

func (d *Dashboard) endings() map[string]ending {
	return map[string]ending{
		"service_credentials": {"service credential", "revoked", "Revoke",
			func(r *request, id string) (string, error) {
				if d.cfg.Services == nil {
					return "", nexus.NotFound("service_credential", id)
				}
				v, err := d.cfg.Services.Get(r.ctx, r.tenant(), id)
				if err != nil {
					return "", err
				}
				return v.Name + " (" + v.ID + ")", nil
			},
			func(ctx context.Context, t nexus.Tenant, id string) error {
				_, err := d.cfg.Services.Revoke(ctx, t, id)
				return err
			}},
		"oauth_clients": {"OAuth app", "deleted", "Delete",
			func(r *request, id string) (string, error) {
				v, err := d.cfg.OAuth.GetClient(r.ctx, r.tenant(), id)
				if err != nil {
					return "", err
				}
				return v.Name + " (" + v.ID + ")", nil
			},
			func(ctx context.Context, t nexus.Tenant, id string) error {
				_, err := d.cfg.OAuth.DeleteClient(ctx, t, id)
				return err
			}},
		"oauth_grants": {"connected app", "grant", "Revoke access",
			func(r *request, id string) (string, error) {
				gs, _, err := d.cfg.OAuth.ListGrants(r.ctx, r.tenant(), store.Page{Limit: 100})
				if err != nil {
					return "", err
				}
				for _, g := range gs {
					if g.ID == id {
						return g.ClientName + " (" + g.ID + ")", nil
					}
				}
				return "", nexus.NotFound("oauth_grant", id)
			},
			func(ctx context.Context, t nexus.Tenant, id string) error {
				_, err := d.cfg.OAuth.RevokeGrant(ctx, t, id)
				return err
			}},
	}
}

type confirmData struct {
	What, Verb, Action, Back, Error string
}

func (d *Dashboard) endConfirm(c *fiber.Ctx, r *request, status int, e ending, id, msg string) error {
	name, err := e.get(r, id)
	if err != nil {
		return d.fail(c, r, err)
	}
	return d.render(c, status, "confirm.html", d.newPage(r, e.verb+" "+e.kind, "apps", "/apps", confirmData{
		What: e.kind + " " + name, Verb: e.verb, Error: msg,
		Action: "/dashboard/" + string(r.env) + "/" + c.Params("kind") + "/" + id + "/end", Back: "/dashboard/" + string(r.env) + "/apps",
	}))
}

func (d *Dashboard) endPage(c *fiber.Ctx, r *request) error {
	e, ok := d.endings()[c.Params("kind")]
	if !ok {
		return d.message(c, r, fiber.StatusNotFound, "Not found", "There is no such page.")
	}
	return d.endConfirm(c, r, fiber.StatusOK, e, c.Params("id"), "")
}

// end revokes a service credential or grant, or deletes an app; live ones
// need the member's password again.
func (d *Dashboard) end(c *fiber.Ctx, r *request) error {
	e, ok := d.endings()[c.Params("kind")]
	if !ok {
		return d.message(c, r, fiber.StatusNotFound, "Not found", "There is no such page.")
	}
	id := c.Params("id")
	if _, err := e.get(r, id); err != nil {
		return d.fail(c, r, err)
	}
	if r.env == nexus.Live {
		if ok, err := d.passwordOK(c, r); err != nil {
			return d.fail(c, r, err)
		} else if !ok {
			return d.endConfirm(c, r, fiber.StatusForbidden, e, id, "The password is wrong. Enter your own password to end a live credential.")
		}
	}
	if err := e.end(r.ctx, r.tenant(), id); err != nil {
		return d.fail(c, r, err)
	}
	d.drop(id)
	return c.Redirect("/dashboard/"+string(r.env)+"/apps?done="+e.done, fiber.StatusSeeOther)
}
