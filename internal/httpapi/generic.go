package httpapi

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// The handler constructors below carry what differs between endpoints (the
// service call, the input type, the status) so that no handler is written
// twice.

// create decodes a strict JSON body of type P and answers 201 with the result.
func create[P, T any](fn func(context.Context, nexus.Tenant, P) (T, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in P
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		out, err := fn(c.UserContext(), tenant(c), in)
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusCreated).JSON(out)
	}
}

// getByID answers the object named by the :id path parameter.
func getByID[T any](fn func(context.Context, nexus.Tenant, string) (T, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		out, err := fn(c.UserContext(), tenant(c), c.Params("id"))
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}

// listOf decodes query parameters of type P and answers a list page.
func listOf[P, T any](fn func(context.Context, nexus.Tenant, P) ([]T, bool, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in P
		if err := decodeQuery(c, &in); err != nil {
			return err
		}
		data, more, err := fn(c.UserContext(), tenant(c), in)
		if err != nil {
			return err
		}
		return c.JSON(newList(data, more))
	}
}

// action runs a bodiless transition on the :id object (an empty JSON object
// is accepted as a body) and answers the object after it.
func action[T any](fn func(context.Context, nexus.Tenant, string) (T, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in struct{}
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		out, err := fn(c.UserContext(), tenant(c), c.Params("id"))
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}

// update decodes a strict JSON body of type P, changes the :id object with
// it and answers the object after the change.
func update[P, T any](fn func(context.Context, nexus.Tenant, string, P) (T, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in P
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		out, err := fn(c.UserContext(), tenant(c), c.Params("id"), in)
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}
