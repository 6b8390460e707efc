package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

type accessKind uint8

const (
	public accessKind = iota + 1
	anyScope
	scoped
)

// Access is a route's protection: public, any valid credential, or one scope.
type Access struct {
	kind  accessKind
	scope nexus.Scope
}

var (
	// Public routes need no credential.
	Public = Access{kind: public}
	// Authenticated routes need a valid credential and no particular scope.
	Authenticated = Access{kind: anyScope}
)

// Need requires scope s (with the implications of CONTRACT §3).
func Need(s nexus.Scope) Access { return Access{kind: scoped, scope: s} }

// String names the decision, as the route table test and docs show it.
func (a Access) String() string {
	switch a.kind {
	case public:
		return "public"
	case anyScope:
		return "authenticated"
	case scoped:
		return a.scope.String()
	}
	return "undecided"
}

// Route is one endpoint: reading the table tells every endpoint's protection.
type Route struct {
	Method   string
	Path     string
	Access   Access
	TestOnly bool // test-environment credentials only (403 test_mode_only)
	Handler  fiber.Handler
}

// Routes is the route table of the partner API.
func (s *Server) Routes() []Route {
	admin := Need(nexus.ScopeAdminAll)
	return []Route{
		{"GET", "/v1/partner", Authenticated, false, s.getPartner},

		{"POST", "/v1/api_keys", admin, false, s.createKey},
		{"GET", "/v1/api_keys", admin, false, s.listKeys},
		{"GET", "/v1/api_keys/:id", admin, false, s.getKey},
		{"DELETE", "/v1/api_keys/:id", admin, false, s.keyAction(s.cfg.Keys.Revoke)},
		{"POST", "/v1/api_keys/:id/suspend", admin, false, s.keyAction(s.cfg.Keys.Suspend)},
		{"POST", "/v1/api_keys/:id/reactivate", admin, false, s.keyAction(s.cfg.Keys.Reactivate)},
		{"POST", "/v1/api_keys/:id/revoke", admin, false, s.keyAction(s.cfg.Keys.Revoke)},
		{"POST", "/v1/api_keys/:id/rotate", admin, false, s.rotateKey},
	}
}
