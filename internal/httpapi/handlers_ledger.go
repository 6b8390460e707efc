package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/ledger"
)

func (s *Server) listBalances(c *fiber.Ctx) error {
	var none struct{}
	if err := decodeQuery(c, &none); err != nil {
		return err
	}
	bs, err := s.cfg.Ledger.Balances(c.UserContext(), tenant(c))
	if err != nil {
		return err
	}
	return c.JSON(newList(bs, false))
}

func (s *Server) getBalance(c *fiber.Ctx) error {
	var none struct{}
	if err := decodeQuery(c, &none); err != nil {
		return err
	}
	b, err := s.cfg.Ledger.Balance(c.UserContext(), tenant(c), ledger.Currency(c.Params("currency")))
	if err != nil {
		return err
	}
	return c.JSON(b)
}
