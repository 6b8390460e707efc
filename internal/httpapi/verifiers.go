package httpapi

import (
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
)

// Compile-time checks of what the authenticator is given. It finds
// VerifyDigest and Drop by type assertion, so a verifier whose method was
// renamed or changed would otherwise be skipped silently: tokens digested
// twice, or, worse, a revocation never dropped from a verifier's cache.
var (
	_ auth.TokenVerifier  = (*oauth.Verifier)(nil)
	_ auth.DigestVerifier = (*oauth.Verifier)(nil)
	_ auth.Dropper        = (*oauth.Verifier)(nil)
	_ auth.TokenVerifier  = (*servicetoken.Verifier)(nil)
	_ auth.Dropper        = (*servicetoken.Verifier)(nil)
	_ auth.Gate           = (*addrGate)(nil)
)
