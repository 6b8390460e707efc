package httpapi

import (
	"crypto/subtle"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/killswitch"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// revokeAllParams is the body of POST /v1/credentials/revoke_all. Both
// fields repeat what the credential already says (its environment, its
// partner): a lockdown is never triggered by a body sent to the wrong place.
type revokeAllParams struct {
	Environment string `json:"environment" validate:"required"`
	Confirm     string `json:"confirm" validate:"required"`
}

// revokeAll is the kill switch: every credential of the caller's
// environment, the calling one included, is revoked in one transaction.
func (s *Server) revokeAll(ks *killswitch.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in revokeAllParams
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		t := tenant(c)
		env := nexus.Environment(in.Environment)
		if env != nexus.Live && env != nexus.Test {
			return nexus.ParamError(nexus.CodeParameterInvalid, "environment", "environment must be live or test")
		}
		if env != t.Environment {
			// A credential acts on its own environment only (a test key
			// cannot lock live down, nor the other way round).
			return nexus.ParamError(nexus.CodeParameterInvalid, "environment",
				"environment must be the calling credential's environment (%s)", t.Environment)
		}
		if subtle.ConstantTimeCompare([]byte(in.Confirm), []byte(t.PartnerID)) != 1 {
			return nexus.ParamError(nexus.CodeParameterInvalid, "confirm", "confirm must be your partner id, as GET /v1/partner shows it")
		}
		r, err := ks.RevokeAll(c.UserContext(), t)
		if err != nil {
			return err
		}
		return c.JSON(r)
	}
}
