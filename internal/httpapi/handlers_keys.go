package httpapi

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// list is the envelope of every list answer (CONTRACT §5).
type list[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

func newList[T any](data []T, more bool) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Object: "list", Data: data, HasMore: more}
}

func principal(c *fiber.Ctx) *nexus.Principal { return nexus.PrincipalFrom(c.UserContext()) }

func tenant(c *fiber.Ctx) nexus.Tenant { return principal(c).Tenant() }

type partnerView struct {
	Object      string              `json:"object"`
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Status      nexus.PartnerStatus `json:"status"`
	Environment nexus.Environment   `json:"environment"`
	CreatedAt   time.Time           `json:"created_at"`
	Credential  credentialView      `json:"credential"`
}

type credentialView struct {
	ID     string               `json:"id"`
	Type   nexus.CredentialType `json:"type"`
	Scopes []string             `json:"scopes"`
}

func (s *Server) getPartner(c *fiber.Ctx) error {
	p := principal(c)
	if !jsonTimeOK(p.Partner.CreatedAt) {
		return c.JSON(newPartnerView(p, p.Scopes.Names())) // encoding/json's error
	}
	// The body is shared by concurrent requests: fasthttp only reads a raw
	// body, and copies it before any change.
	c.Response().SetBodyRaw(p.View(encodePartner))
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

// encodePartner is the GET /v1/partner answer of p.
func encodePartner(p *nexus.Principal) []byte {
	v := newPartnerView(p, p.Scopes.Names())
	return v.appendJSON(make([]byte, 0, 512))
}

func newPartnerView(p *nexus.Principal, scopes []string) partnerView {
	return partnerView{
		Object: "partner", ID: p.Partner.ID, Name: p.Partner.Name, Status: p.Partner.Status,
		Environment: p.Environment, CreatedAt: p.Partner.CreatedAt,
		Credential: credentialView{ID: p.CredentialID, Type: p.CredentialType, Scopes: scopes},
	}
}

func (s *Server) createKey(c *fiber.Ctx) error {
	var in apikey.CreateParams
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	k, err := s.cfg.Keys.Create(c.UserContext(), tenant(c), in)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(k)
}

// keyAction serves the bodiless key transitions.
func (s *Server) keyAction(fn func(context.Context, nexus.Tenant, string) (*apikey.Key, error)) fiber.Handler {
	return dropAfter(s, fn)
}

// dropAfter runs a credential transition and drops the credential from this
// instance's cache at once; other instances hear of it through the
// invalidation channel.
func dropAfter[T any](s *Server, fn func(context.Context, nexus.Tenant, string) (T, error)) fiber.Handler {
	inner := action(fn)
	return func(c *fiber.Ctx) error {
		if err := inner(c); err != nil {
			return err
		}
		s.cfg.Auth.Drop(store.TopicKey(c.Params("id")))
		return nil
	}
}

func (s *Server) rotateKey(c *fiber.Ctx) error {
	var in apikey.RotateParams
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	id := c.Params("id")
	k, err := s.cfg.Keys.Rotate(c.UserContext(), tenant(c), id, in)
	if err != nil {
		return err
	}
	s.cfg.Auth.Drop(store.TopicKey(id))
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (s *Server) getPolicy(c *fiber.Ctx) error {
	var none struct{}
	if err := decodeQuery(c, &none); err != nil {
		return err
	}
	p, err := s.cfg.Keys.GetPolicy(c.UserContext(), tenant(c))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) putPolicy(c *fiber.Ctx) error {
	var in apikey.PolicyParams
	if err := decodeBody(c, &in); err != nil {
		return err
	}
	p, err := s.cfg.Keys.PutPolicy(c.UserContext(), tenant(c), in)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// usage answers the hourly or daily request counts of the caller's
// environment, read from the counters the access log keeps.
func (s *Server) usage(c *fiber.Ctx) error {
	var in audit.UsageParams
	if err := decodeQuery(c, &in); err != nil {
		return err
	}
	u, err := s.cfg.Audit.Usage(c.UserContext(), tenant(c), in)
	if err != nil {
		return err
	}
	return c.JSON(u)
}
