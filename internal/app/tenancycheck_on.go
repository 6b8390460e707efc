//go:build nexus_tenancycheck

package app

import (
	"log/slog"

	"github.com/nexus-fintech/nexus/internal/store"
)

// checkTenancy installs the tenancy query hook in a server the e2e suite
// builds, which fails a test whose server logs a violation: the rule of
// store.For is then checked on every query the whole suite makes.
func checkTenancy(db *store.DB, log *slog.Logger) {
	db.AddQueryHook(&store.TenancyCheck{OnViolation: func(why, query string) {
		log.Error("tenancy violation", "why", why, "query", query)
	}})
}
