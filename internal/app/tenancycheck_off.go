//go:build !nexus_tenancycheck

package app

import (
	"log/slog"

	"github.com/nexus-fintech/nexus/internal/store"
)

// checkTenancy does nothing in a production build (see tenancycheck_on.go).
func checkTenancy(*store.DB, *slog.Logger) {}
