package dashboard

import (
	"html/template"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/audit"
)

const logsPageSize = 50

type logsData struct {
	Kind, Credential, Status, From, To string
	Entries                            []*audit.View
	Next                               template.URL // the next page
	Errors                             map[string]string
}

// logsPage shows the request log (kind=requests, the default) or the
// lifecycle events (kind=events), filtered by credential, status class and
// time range (UTC), newest first.
func (d *Dashboard) logsPage(c *fiber.Ctx, r *request) error {
	data := logsData{Kind: c.Query("kind", "requests"), Credential: c.Query("credential_id"), Status: c.Query("status"),
		From: c.Query("from"), To: c.Query("to"), Errors: map[string]string{}}
	p := audit.ListParams{Page: storePage(c, logsPageSize), CredentialID: data.Credential}
	if len(p.CredentialID) > 64 {
		data.Errors["credential_id"] = "That is not a credential id."
	}
	if data.Kind == "events" {
		p.Lifecycle = true
	} else {
		data.Kind = "requests"
		p.Type = audit.AccessType
		switch data.Status {
		case "2xx", "3xx", "4xx", "5xx":
			p.StatusClass = int(data.Status[0] - '0')
		case "":
		default:
			data.Errors["status"] = "Choose a status class from the list."
		}
	}
	for _, f := range []struct {
		v, name string
		to      **time.Time
	}{{data.From, "from", &p.CreatedAfter}, {data.To, "to", &p.CreatedBefore}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse("2006-01-02T15:04", f.v)
		if err != nil {
			data.Errors[f.name] = "Give a date and time (UTC)."
			continue
		}
		*f.to = &t
	}
	if len(data.Errors) > 0 {
		return d.render(c, fiber.StatusBadRequest, "logs.html", d.newPage(r, "Logs", "logs", "/logs", data))
	}
	entries, more, err := d.cfg.Audit.List(r.ctx, r.tenant(), p)
	if err != nil {
		return d.fail(c, r, err)
	}
	data.Entries = entries
	if more && len(entries) > 0 {
		q := url.Values{"kind": {data.Kind}, "starting_after": {entries[len(entries)-1].ID}}
		for k, v := range map[string]string{"credential_id": data.Credential, "status": data.Status, "from": data.From, "to": data.To} {
			if v != "" {
				q.Set(k, v)
			}
		}
		data.Next = template.URL("/dashboard/" + string(r.env) + "/logs?" + q.Encode())
	}
	return d.render(c, fiber.StatusOK, "logs.html", d.newPage(r, "Logs", "logs", "/logs", data))
}

// statusClass is an access entry's class for styling.
func statusClass(s int) string { return strconv.Itoa(s/100) + "xx" }
