package httpapi

import (
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
)

// Compile-time checks of what the authenticator is given. It finds Drop by
// type assertion, so a verifier whose method was renamed or changed would
// otherwise be skipped silently: a revocation never dropped from its
// cache. (internal/oauth checks its verifier itself.)
var (
	_ auth.TokenVerifier = (*servicetoken.Verifier)(nil)
	_ auth.Dropper       = (*servicetoken.Verifier)(nil)
	_ auth.Gate          = (*addrGate)(nil)
)
