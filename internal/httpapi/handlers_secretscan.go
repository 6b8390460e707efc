package httpapi

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/secretscan"
)

// The headers of GitHub's secret-scanning partner protocol.
const (
	headerScanKeyID     = "Github-Public-Key-Identifier"
	headerScanSignature = "Github-Public-Key-Signature"
)

// scanActor is the audit actor of what a code host's report did.
const scanActor = "github-secret-scanning"

var errScanSignature = nexus.Errorf(nexus.CodeInvalidSignature,
	"the report must be signed: Github-Public-Key-Identifier names a configured key, Github-Public-Key-Signature is its ECDSA P-256 signature of the body")

// secretScanning receives a code host's report of Nexus secrets found in
// public code. Nothing is read from the body before its signature verifies.
func (s *Server) secretScanning(svc *secretscan.Service) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := &c.Request().Header
		body := c.Body()
		if err := s.cfg.SecretScanning.Verify(string(h.Peek(headerScanKeyID)), string(h.Peek(headerScanSignature)), body); err != nil {
			return errScanSignature
		}
		var fs []secretscan.Finding
		if err := json.Unmarshal(body, &fs); err != nil {
			return nexus.Errorf(nexus.CodeBodyInvalidJSON, "the body must be a JSON array of {token, type, url, source}")
		}
		if len(fs) > secretscan.MaxFindings {
			return nexus.Errorf(nexus.CodeParameterInvalid, "a report holds at most %d tokens", secretscan.MaxFindings)
		}
		ip := s.cfg.Auth.ClientIP(&auth.Request{RemoteIP: remoteIP(c), XForwardedFor: forwardedFor(h)}).String()
		ctx := audit.WithOrigin(c.UserContext(), audit.Origin{Actor: scanActor, IP: ip, RequestID: requestID(c)})
		labels, err := svc.Report(ctx, fs)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(labels)
	}
}
