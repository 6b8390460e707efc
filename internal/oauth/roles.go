package oauth

import "github.com/nexus-fintech/nexus/internal/nexus"

// Role is what a member may do in the dashboard. Each role may do all that
// the roles below it may.
type Role string

// The roles, most powerful first.
const (
	// Owner also manages members.
	Owner Role = "owner"
	// Admin also manages live-environment credentials.
	Admin Role = "admin"
	// Developer manages test-environment keys, service credentials and
	// OAuth apps.
	Developer Role = "developer"
	// Viewer reads everything and changes nothing.
	Viewer Role = "viewer"
)

// Roles lists every role, most powerful first.
var Roles = []Role{Owner, Admin, Developer, Viewer}

var roleRank = map[Role]int{Viewer: 1, Developer: 2, Admin: 3, Owner: 4}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return roleRank[r] > 0 }

// AtLeast reports whether r may do what min may.
func (r Role) AtLeast(min Role) bool { return roleRank[r] >= roleRank[min] && roleRank[min] > 0 }

// CanManage reports whether r may create and revoke credentials of env.
func (r Role) CanManage(env nexus.Environment) bool {
	if env == nexus.Live {
		return r.AtLeast(Admin)
	}
	return r.AtLeast(Developer)
}

// Scopes is what a member of role r holds in env, as a principal: the same
// scope checks as the API apply to the dashboard's actions.
func (r Role) Scopes(env nexus.Environment) nexus.ScopeSet {
	if r.CanManage(env) {
		return nexus.PartnerScopes
	}
	if r.Valid() {
		return nexus.ReadScopes
	}
	return 0
}
