package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/killswitch"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/secretscan"
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
	Secret   bool // the answer holds a secret shown once (kept out of idempotent replays)
	Handler  fiber.Handler
}

// Routes is the route table of the partner API.
func (s *Server) Routes() []Route {
	var (
		admin     = Need(nexus.ScopeAdminAll)
		l         = s.cfg.Ledger
		keys      = s.cfg.Keys
		readFund  = Need(nexus.ScopeReadFunding)
		readAddr  = Need(nexus.ScopeReadAddresses)
		writeAddr = Need(nexus.ScopeWriteAddresses)
		readReq   = Need(nexus.ScopeReadRequests)
		writeReq  = Need(nexus.ScopeWriteRequests)
		st        = s.cfg.ServiceTokens
		intFund   = Need(nexus.ScopeInternalFunding)
		intReq    = Need(nexus.ScopeInternalRequests)
		readBal   = Need(nexus.ScopeReadBalances)
		kill      = killswitch.New(s.cfg.DB)
		scan      = secretscan.New(s.cfg.DB)
	)
	return []Route{
		{Method: "GET", Path: "/v1/partner", Access: Authenticated, Handler: s.getPartner},
		// Browsers ask before sending a credential across origins (cors.go).
		{Method: "OPTIONS", Path: "/v1/*", Access: Public, Handler: preflight},

		{Method: "POST", Path: "/v1/api_keys", Access: admin, Secret: true, Handler: s.createKey},
		{Method: "GET", Path: "/v1/api_keys", Access: admin, Handler: listOf(keys.List)},
		{Method: "GET", Path: "/v1/api_keys/:id", Access: admin, Handler: getByID(keys.Get)},
		{Method: "PATCH", Path: "/v1/api_keys/:id", Access: admin, Handler: update(keys.Update)},
		{Method: "DELETE", Path: "/v1/api_keys/:id", Access: admin, Handler: s.keyAction(keys.Revoke)},
		{Method: "POST", Path: "/v1/api_keys/:id/suspend", Access: admin, Handler: s.keyAction(keys.Suspend)},
		{Method: "POST", Path: "/v1/api_keys/:id/reactivate", Access: admin, Handler: s.keyAction(keys.Reactivate)},
		{Method: "POST", Path: "/v1/api_keys/:id/revoke", Access: admin, Handler: s.keyAction(keys.Revoke)},
		{Method: "POST", Path: "/v1/api_keys/:id/rotate", Access: admin, Secret: true, Handler: s.rotateKey},

		{Method: "GET", Path: "/v1/policy", Access: admin, Handler: s.getPolicy},
		{Method: "PUT", Path: "/v1/policy", Access: admin, Handler: s.putPolicy},

		{Method: "GET", Path: "/v1/balances", Access: readBal, Handler: s.listBalances},
		{Method: "GET", Path: "/v1/balances/:currency", Access: readBal, Handler: s.getBalance},

		{Method: "GET", Path: "/v1/funding", Access: readFund, Handler: listOf(l.ListFunding)},
		{Method: "GET", Path: "/v1/funding/:id", Access: readFund, Handler: getByID(l.GetFunding)},

		{Method: "POST", Path: "/v1/addresses", Access: writeAddr, Handler: create(l.CreateAddress)},
		{Method: "GET", Path: "/v1/addresses", Access: readAddr, Handler: listOf(l.ListAddresses)},
		{Method: "GET", Path: "/v1/addresses/:id", Access: readAddr, Handler: getByID(l.GetAddress)},
		{Method: "DELETE", Path: "/v1/addresses/:id", Access: writeAddr, Handler: action(l.ArchiveAddress)},

		{Method: "POST", Path: "/v1/requests", Access: writeReq, Handler: create(l.CreateRequest)},
		{Method: "GET", Path: "/v1/requests", Access: readReq, Handler: listOf(l.ListRequests)},
		{Method: "GET", Path: "/v1/requests/:id", Access: readReq, Handler: getByID(l.GetRequest)},
		{Method: "POST", Path: "/v1/requests/:id/cancel", Access: writeReq, Handler: action(l.CancelRequest)},

		{Method: "POST", Path: "/v1/test_helpers/funding", Access: admin, TestOnly: true, Handler: create(l.CreateFunding)},
		{Method: "POST", Path: "/v1/test_helpers/funding/:id/complete", Access: admin, TestOnly: true, Handler: action(l.CompleteFunding)},
		{Method: "POST", Path: "/v1/test_helpers/requests/:id/complete", Access: admin, TestOnly: true, Handler: action(l.CompleteRequest)},
		{Method: "POST", Path: "/v1/test_helpers/requests/:id/fail", Access: admin, TestOnly: true, Handler: action(l.FailRequest)},

		{Method: "POST", Path: "/v1/service_credentials", Access: admin, Secret: true, Handler: create(st.Create)},
		{Method: "GET", Path: "/v1/service_credentials", Access: admin, Handler: listOf(st.List)},
		{Method: "GET", Path: "/v1/service_credentials/:id", Access: admin, Handler: getByID(st.Get)},
		{Method: "PATCH", Path: "/v1/service_credentials/:id", Access: admin, Handler: update(st.Update)},
		{Method: "POST", Path: "/v1/service_credentials/:id/revoke", Access: admin, Handler: dropAfter(s, st.Revoke)},

		{Method: "POST", Path: "/v1/oauth_clients", Access: admin, Secret: true, Handler: create(s.cfg.OAuth.CreateClient)},
		{Method: "GET", Path: "/v1/oauth_clients", Access: admin, Handler: listOf(s.cfg.OAuth.ListClients)},
		{Method: "GET", Path: "/v1/oauth_clients/:id", Access: admin, Handler: getByID(s.cfg.OAuth.GetClient)},
		{Method: "DELETE", Path: "/v1/oauth_clients/:id", Access: admin, Handler: dropAfter(s, s.cfg.OAuth.DeleteClient)},
		{Method: "GET", Path: "/v1/oauth_grants", Access: admin, Handler: listOf(s.cfg.OAuth.ListGrants)},
		{Method: "DELETE", Path: "/v1/oauth_grants/:id", Access: admin, Handler: dropAfter(s, s.cfg.OAuth.RevokeGrant)},

		{Method: "POST", Path: "/v1/credentials/revoke_all", Access: admin, Handler: s.revokeAll(kill)},

		{Method: "GET", Path: "/v1/audit_events", Access: admin, Handler: listOf(s.cfg.Audit.List)},
		{Method: "GET", Path: "/v1/usage", Access: Need(nexus.ScopeReadUsage), Handler: s.usage},

		// Signed by the code host instead of a credential (ECDSA P-256).
		{Method: "POST", Path: "/secret-scanning/github", Access: Public, Handler: s.secretScanning(scan)},

		{Method: "GET", Path: "/.well-known/oauth-authorization-server", Access: Public, Handler: s.metadata},
		{Method: "GET", Path: "/oauth/authorize", Access: Public, Handler: s.authorizeGet},
		{Method: "POST", Path: "/oauth/authorize", Access: Public, Handler: s.authorizePost},
		{Method: "POST", Path: "/oauth/token", Access: Public, Handler: s.token},
		{Method: "POST", Path: "/oauth/revoke", Access: Public, Handler: s.revoke},
		{Method: "POST", Path: "/oauth/introspect", Access: Public, Handler: s.introspect},
		{Method: "GET", Path: "/login", Access: Public, Handler: s.loginPage},
		{Method: "POST", Path: "/login", Access: Public, Handler: s.loginPost},
		{Method: "POST", Path: "/logout", Access: Public, Handler: s.logout},

		{Method: "POST", Path: "/internal/v1/funding", Access: intFund, Handler: create(l.CreateFunding)},
		{Method: "POST", Path: "/internal/v1/funding/:id/complete", Access: intFund, Handler: action(l.CompleteFunding)},
		{Method: "POST", Path: "/internal/v1/funding/:id/fail", Access: intFund, Handler: action(l.FailFunding)},
		{Method: "POST", Path: "/internal/v1/requests/:id/process", Access: intReq, Handler: action(l.ProcessRequest)},
		{Method: "POST", Path: "/internal/v1/requests/:id/complete", Access: intReq, Handler: action(l.CompleteRequest)},
		{Method: "POST", Path: "/internal/v1/requests/:id/fail", Access: intReq, Handler: action(l.FailRequest)},
	}
}
