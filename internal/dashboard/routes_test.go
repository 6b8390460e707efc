package dashboard

import (
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// Every dashboard route declares what it needs of the member, as every API
// route declares its scope; every change is a POST behind a role.
func TestEveryRouteDeclaresANeed(t *testing.T) {
	t.Parallel()
	d := New(Config{})
	seen := map[string]bool{}
	for _, r := range d.Routes() {
		key := r.Method + " " + r.Path
		if seen[key] {
			t.Errorf("%s: declared twice", key)
		}
		seen[key] = true
		if r.Need == undeclared || r.Need > ManageMembers {
			t.Errorf("%s: no access decision", key)
		}
		if r.Handler == nil {
			t.Errorf("%s: no handler", key)
		}
		if r.Need == Public && !strings.HasPrefix(r.Path, "/static/") && !strings.HasPrefix(r.Path, "/invitations/") {
			t.Errorf("%s: public, but only static files and invitation links may be", key)
		}
		if r.Method == fiber.MethodPost && r.Need < Manage && !strings.HasPrefix(r.Path, "/invitations/") {
			t.Errorf("%s: a change any viewer could make", key)
		}
	}
}

// Every page template parses with the layout, and every static file the
// layout names exists.
func TestTemplatesAndAssets(t *testing.T) {
	t.Parallel()
	d := New(Config{})
	for _, name := range []string{"keys.html", "key.html", "key_new.html", "key_secret.html", "key_revoke.html",
		"members.html", "invitation.html", "joined.html", "overview.html", "logs.html", "message.html", "usage.html", "apps.html", "secret.html", "confirm.html"} {
		if d.pages[name] == nil {
			t.Errorf("no page %s", name)
		}
	}
	for _, f := range []string{"static/app.css", "static/app.js"} {
		if _, err := staticFS.ReadFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
