package dashboard

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// scopeChoice is one check-box of the create-key form.
type scopeChoice struct {
	Name, Words string
	Read        bool // publishable keys may hold it
	Checked     bool
}

// scopeChoices lists the scopes a partner can give a key, in plain words.
func scopeChoices(checked []string) []scopeChoice {
	l := []scopeChoice{
		{Name: "read:balances", Words: "See balances", Read: true},
		{Name: "read:funding", Words: "See deposits", Read: true},
		{Name: "read:addresses", Words: "See payout addresses", Read: true},
		{Name: "write:addresses", Words: "Add and archive payout addresses"},
		{Name: "read:requests", Words: "See withdrawal requests", Read: true},
		{Name: "write:requests", Words: "Create and cancel withdrawal requests"},
		{Name: "read:usage", Words: "See request counts (usage)", Read: true},
		{Name: "admin:all", Words: "Full access: everything above, and manage keys, apps and audit events"},
	}
	for i := range l {
		for _, c := range checked {
			if c == l[i].Name {
				l[i].Checked = true
			}
		}
	}
	return l
}

// keysPageSize is the keys list page size.
const keysPageSize = 50

type keysData struct {
	Keys     []*apikey.Key
	Status   string
	Statuses []string
	More     bool
	Next     string
	Done     string
}

// doneWords are the notices a finished action leaves, by its ?done value.
var doneWords = map[string]string{
	"revoked":     "The key was revoked. It stopped working at once.",
	"suspended":   "The key was suspended. Reactivate it to use it again.",
	"reactivated": "The key was reactivated.",
}

func (d *Dashboard) keysPage(c *fiber.Ctx, r *request) error {
	status := c.Query("status", "active")
	p := apikey.ListParams{Page: storePage(c, keysPageSize)}
	switch status {
	case "active", "suspended", "revoked", "expired":
		p.Status = apikey.Status(status)
	case "all":
	default:
		status, p.Status = "active", apikey.Active
	}
	keys, more, err := d.cfg.Keys.List(r.ctx, r.tenant(), p)
	if nexus.CodeOf(err) == nexus.CodeParameterInvalid {
		p.StartingAfter = "" // a stale cursor: start over
		keys, more, err = d.cfg.Keys.List(r.ctx, r.tenant(), p)
	}
	if err != nil {
		return d.fail(c, r, err)
	}
	data := keysData{Keys: keys, Status: status, Statuses: []string{"active", "suspended", "expired", "revoked", "all"}, More: more}
	if more && len(keys) > 0 {
		data.Next = keys[len(keys)-1].ID
	}
	pg := d.newPage(r, "API keys", "keys", "/keys", data)
	pg.Notice = doneWords[c.Query("done")]
	return d.render(c, fiber.StatusOK, "keys.html", pg)
}

// keyForm is the create-key form's values and errors by field.
type keyForm struct {
	Name, Type, ExpiresOn, AllowedIPs, AllowedOrigins string
	Scopes                                            []scopeChoice
	Errors                                            map[string]string
	Live                                              bool
}

func (d *Dashboard) keyNewPage(c *fiber.Ctx, r *request) error {
	f := keyForm{Type: "secret", Scopes: scopeChoices(nil), Errors: map[string]string{}, Live: r.env == nexus.Live}
	return d.render(c, fiber.StatusOK, "key_new.html", d.newPage(r, "Create an API key", "keys", "/keys/new", f))
}

// splitList reads a list typed one per line or separated by commas.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' }) {
		out = append(out, f)
	}
	return out
}

// formValues are the values of a repeated form field.
func formValues(c *fiber.Ctx, name string) []string {
	var out []string
	for _, v := range c.Request().PostArgs().PeekMulti(name) {
		out = append(out, string(v))
	}
	return out
}

// fieldOf names the form field a service error is about.
func fieldOf(param string) string {
	if i := strings.IndexByte(param, '['); i >= 0 {
		param = param[:i]
	}
	return param
}

func (d *Dashboard) keyCreate(c *fiber.Ctx, r *request) error {
	f := keyForm{
		Name: strings.TrimSpace(c.FormValue("name")), Type: c.FormValue("type"),
		ExpiresOn: c.FormValue("expires_on"), AllowedIPs: c.FormValue("allowed_ips"), AllowedOrigins: c.FormValue("allowed_origins"),
		Errors: map[string]string{}, Live: r.env == nexus.Live,
	}
	scopes := formValues(c, "scopes")
	f.Scopes = scopeChoices(scopes)
	again := func(status int) error {
		return d.render(c, status, "key_new.html", d.newPage(r, "Create an API key", "keys", "/keys/new", f))
	}
	in := apikey.CreateParams{Type: apikey.Type(f.Type), Name: f.Name, Scopes: scopes,
		AllowedIPs: splitList(f.AllowedIPs), AllowedOrigins: splitList(f.AllowedOrigins)}
	if in.Type != apikey.Secret && in.Type != apikey.Publishable {
		f.Errors["type"] = "Choose secret or publishable."
	}
	if len(f.Name) > 200 {
		f.Errors["name"] = "Names are at most 200 characters."
	}
	if f.ExpiresOn != "" {
		day, err := time.Parse("2006-01-02", f.ExpiresOn)
		if err != nil {
			f.Errors["expires_on"] = "Give a date as YYYY-MM-DD."
		} else {
			// The key works through the whole day it expires on (UTC).
			end := day.Add(24 * time.Hour)
			in.ExpiresAt = &end
		}
	}
	if len(f.Errors) > 0 {
		return again(fiber.StatusBadRequest)
	}
	if r.env == nexus.Live && in.Type == apikey.Secret {
		if ok, err := d.passwordOK(c, r); err != nil {
			return d.fail(c, r, err)
		} else if !ok {
			f.Errors["password"] = "The password is wrong. Enter your own password to create a live secret key."
			return again(fiber.StatusForbidden)
		}
	}
	k, err := d.cfg.Keys.Create(r.ctx, r.tenant(), in)
	var ne *nexus.Error
	if errors.As(err, &ne) && (ne.Param != "" || ne.Code == nexus.CodeInvalidScopes) {
		field := fieldOf(ne.Param)
		if field == "" {
			field = "scopes"
		}
		f.Errors[field] = ne.Message
		return again(fiber.StatusBadRequest)
	}
	if err != nil {
		return d.fail(c, r, err)
	}
	return d.showSecret(c, r, k, "Your new API key")
}

// showSecret renders a key's secret, the only time it is shown.
func (d *Dashboard) showSecret(c *fiber.Ctx, r *request, k *apikey.Key, title string) error {
	return d.render(c, fiber.StatusCreated, "key_secret.html", d.newPage(r, title, "keys", "/keys", k))
}

// passwordOK re-checks the member's password from the form's password
// field.
func (d *Dashboard) passwordOK(c *fiber.Ctx, r *request) (bool, error) {
	pw := c.FormValue("password")
	if pw == "" {
		return false, nil
	}
	return d.cfg.OAuth.CheckPassword(r.ctx, r.member, pw)
}

type keyData struct {
	Key    *apikey.Key
	Graces []grace
	Error  string
}

type grace struct {
	Seconds  int
	Words    string
	Selected bool
}

func graces() []grace {
	return []grace{{0, "None: the old key stops at once", false}, {3600, "1 hour", false}, {86400, "24 hours", true}, {604800, "7 days", false}}
}

func (d *Dashboard) keyPage(c *fiber.Ctx, r *request) error {
	k, err := d.cfg.Keys.Get(r.ctx, r.tenant(), c.Params("id"))
	if err != nil {
		return d.fail(c, r, err)
	}
	return d.render(c, fiber.StatusOK, "key.html", d.newPage(r, "API key "+keyTitle(k), "keys", "/keys", keyData{Key: k, Graces: graces()}))
}

func keyTitle(k *apikey.Key) string {
	if k.Name != "" {
		return k.Name
	}
	return k.ID
}

// keyChange runs a bodiless key transition and returns to the list.
func (d *Dashboard) keyChange(c *fiber.Ctx, r *request, fn func(*request, string) (*apikey.Key, error), done string) error {
	id := c.Params("id")
	if _, err := fn(r, id); err != nil {
		return d.fail(c, r, err)
	}
	d.drop(id)
	return c.Redirect("/dashboard/"+string(r.env)+"/keys?done="+done, fiber.StatusSeeOther)
}

func (d *Dashboard) drop(id string) {
	if d.cfg.Drop != nil {
		d.cfg.Drop(store.TopicKey(id))
	}
}

func (d *Dashboard) keySuspend(c *fiber.Ctx, r *request) error {
	return d.keyChange(c, r, func(r *request, id string) (*apikey.Key, error) { return d.cfg.Keys.Suspend(r.ctx, r.tenant(), id) }, "suspended")
}

func (d *Dashboard) keyReactivate(c *fiber.Ctx, r *request) error {
	return d.keyChange(c, r, func(r *request, id string) (*apikey.Key, error) { return d.cfg.Keys.Reactivate(r.ctx, r.tenant(), id) }, "reactivated")
}

func (d *Dashboard) keyRotate(c *fiber.Ctx, r *request) error {
	id := c.Params("id")
	old, err := d.cfg.Keys.Get(r.ctx, r.tenant(), id)
	if err != nil {
		return d.fail(c, r, err)
	}
	secs, err := strconv.Atoi(c.FormValue("grace_period_seconds", "86400"))
	if err != nil || secs < 0 || secs > 604800 {
		return d.render(c, fiber.StatusBadRequest, "key.html", d.newPage(r, "API key "+keyTitle(old), "keys", "/keys",
			keyData{Key: old, Graces: graces(), Error: "Choose a grace period from the list."}))
	}
	if r.env == nexus.Live && old.Type == apikey.Secret {
		// A rotation creates a live secret key.
		if ok, err := d.passwordOK(c, r); err != nil {
			return d.fail(c, r, err)
		} else if !ok {
			return d.render(c, fiber.StatusForbidden, "key.html", d.newPage(r, "API key "+keyTitle(old), "keys", "/keys",
				keyData{Key: old, Graces: graces(), Error: "The password is wrong. Enter your own password to rotate a live secret key."}))
		}
	}
	k, err := d.cfg.Keys.Rotate(r.ctx, r.tenant(), id, apikey.RotateParams{GracePeriodSeconds: &secs})
	if err != nil {
		return d.fail(c, r, err)
	}
	d.drop(id)
	return d.showSecret(c, r, k, "Your rotated API key")
}

type revokeData struct {
	Key   *apikey.Key
	Error string
}

func (d *Dashboard) keyRevokePage(c *fiber.Ctx, r *request) error {
	k, err := d.cfg.Keys.Get(r.ctx, r.tenant(), c.Params("id"))
	if err != nil {
		return d.fail(c, r, err)
	}
	return d.render(c, fiber.StatusOK, "key_revoke.html", d.newPage(r, "Revoke "+keyTitle(k), "keys", "/keys", revokeData{Key: k}))
}

func (d *Dashboard) keyRevoke(c *fiber.Ctx, r *request) error {
	id := c.Params("id")
	if r.env == nexus.Live {
		k, err := d.cfg.Keys.Get(r.ctx, r.tenant(), id)
		if err != nil {
			return d.fail(c, r, err)
		}
		if ok, err := d.passwordOK(c, r); err != nil {
			return d.fail(c, r, err)
		} else if !ok {
			return d.render(c, fiber.StatusForbidden, "key_revoke.html", d.newPage(r, "Revoke "+keyTitle(k), "keys", "/keys",
				revokeData{Key: k, Error: "The password is wrong. Enter your own password to revoke a live key."}))
		}
	}
	return d.keyChange(c, r, func(r *request, id string) (*apikey.Key, error) { return d.cfg.Keys.Revoke(r.ctx, r.tenant(), id) }, "revoked")
}
