package store

import (
	"context"
	"regexp"
	"strings"
	"sync"

	"github.com/uptrace/bun"
)

// tenantColumns says which tenant conditions a tenant table's rows carry.
type tenantColumns int

const (
	// partnerAndEnvironment: the row belongs to one partner in one
	// environment (test and live never mix).
	partnerAndEnvironment tenantColumns = iota + 1
	// partnerOnly: the row belongs to a partner in both environments
	// (dashboard members, their sessions and invitations).
	partnerOnly
)

// tenantTables lists every table whose rows belong to a tenant. A new tenant
// table is added here, or TenancyCheck lets unscoped queries on it pass.
var tenantTables = map[string]tenantColumns{
	"api_keys":               partnerAndEnvironment,
	"audit_events":           partnerAndEnvironment,
	"balances":               partnerAndEnvironment,
	"funding":                partnerAndEnvironment,
	"addresses":              partnerAndEnvironment,
	"requests":               partnerAndEnvironment,
	"idempotency_keys":       partnerAndEnvironment,
	"service_credentials":    partnerAndEnvironment,
	"oauth_clients":          partnerAndEnvironment,
	"oauth_grants":           partnerAndEnvironment,
	"oauth_codes":            partnerAndEnvironment,
	"oauth_tokens":           partnerAndEnvironment,
	"access_chunks":          partnerAndEnvironment,
	"access_credentials":     partnerAndEnvironment,
	"usage_hourly":           partnerAndEnvironment,
	"credential_limits":      partnerAndEnvironment,
	"credential_limit_usage": partnerAndEnvironment,
	"key_policies":           partnerAndEnvironment,
	"members":                partnerOnly,
	"sessions":               partnerOnly,
	"invitations":            partnerOnly,
}

// IsTenantTable reports whether rows of table belong to a tenant.
func IsTenantTable(table string) bool { return tenantTables[table] != 0 }

var tableRef = regexp.MustCompile(`(?i)\b(?:FROM|JOIN|UPDATE|INTO)\s+"?([a-z_]+)"?`)

// TenancyViolation returns why query breaks the tenancy rule, or "": a
// query on a tenant table is built by a Scope (marked, with partner_id and,
// where the table has one, environment) or by CrossTenant (marked with why).
func TenancyViolation(query string) string {
	var tables []string
	for _, m := range tableRef.FindAllStringSubmatch(query, -1) {
		if IsTenantTable(strings.ToLower(m[1])) {
			tables = append(tables, strings.ToLower(m[1]))
		}
	}
	if len(tables) == 0 {
		return ""
	}
	if strings.Contains(query, "/* "+crossTenantMark) {
		return ""
	}
	if !strings.Contains(query, "/* "+scopedMark+" */") {
		// bun drops a query's comment when it counts: mark cross-tenant
		// counts by hand, or count through a Scope
		return "query on tenant table " + tables[0] + " not built by store.For (nor store.CrossTenant)"
	}
	insert := strings.Contains(strings.ToUpper(query), "INSERT INTO")
	for _, tb := range tables {
		if insert {
			continue // Scope.Insert stamps the tenant columns on the rows
		}
		if !strings.Contains(query, `."partner_id" = `) && !strings.Contains(query, "partner_id = ") {
			return "query on tenant table " + tb + " lacks its partner_id condition"
		}
		if tenantTables[tb] == partnerAndEnvironment && !strings.Contains(query, `."environment" = `) && !strings.Contains(query, "environment = ") {
			return "query on tenant table " + tb + " lacks its environment condition"
		}
	}
	return ""
}

// TenancyCheck is a query hook the test harness installs after migrating:
// it collects every query that breaks the tenancy rule (TenancyViolation),
// for the test to fail on.
type TenancyCheck struct {
	// OnViolation, when set, is told of each violation as it happens (a
	// server under e2e logs it) instead of collecting it.
	OnViolation func(why, query string)

	mu         sync.Mutex
	violations []string
}

var _ bun.QueryHook = (*TenancyCheck)(nil)

type migratingKey struct{}

// migrating marks the queries of a migration, which move rows between tenant
// tables by hand on purpose and are reviewed as SQL files.
func migrating(ctx context.Context) context.Context {
	return context.WithValue(ctx, migratingKey{}, true)
}

// BeforeQuery checks the query.
func (c *TenancyCheck) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	if ctx.Value(migratingKey{}) != nil {
		return ctx
	}
	if why := TenancyViolation(e.Query); why != "" {
		if c.OnViolation != nil {
			c.OnViolation(why, e.Query)
			return ctx
		}
		c.mu.Lock()
		c.violations = append(c.violations, why+": "+e.Query)
		c.mu.Unlock()
	}
	return ctx
}

// AfterQuery does nothing.
func (c *TenancyCheck) AfterQuery(context.Context, *bun.QueryEvent) {}

// Violations returns what was collected so far.
func (c *TenancyCheck) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// Reset forgets what was collected: for a test that breaks the rule on
// purpose, after checking it was caught.
func (c *TenancyCheck) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.violations = nil
}
