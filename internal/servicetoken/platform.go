package servicetoken

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

// Platform is an internal service registered by an operator.
type Platform struct {
	bun.BaseModel `bun:"table:platform_services"`

	ID          string    `bun:"id,pk" json:"id"`
	Object      string    `bun:"-" json:"object"`
	Name        string    `bun:"name" json:"name"`
	Algorithm   string    `bun:"algorithm" json:"algorithm"`
	PublicKey   string    `bun:"public_key" json:"public_key"`
	Permissions string    `bun:"permissions" json:"-"`
	Perms       []string  `bun:"-" json:"permissions"`
	Status      string    `bun:"status" json:"status"`
	CreatedAt   time.Time `bun:"created_at" json:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at" json:"-"`
}

// CreatePlatform registers an internal service with its public key and
// internal permissions (internal:funding, internal:requests).
func (s *Service) CreatePlatform(ctx context.Context, name, publicKeyPEM string, permissions []string) (*Platform, error) {
	if name == "" {
		return nil, nexus.ParamError(nexus.CodeParameterMissing, "name", "--name is required")
	}
	alg, _, err := algorithmOf(publicKeyPEM)
	if err != nil {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "public_key", "%v", err)
	}
	perms, bad, ok := nexus.ParseScopes(permissions)
	if !ok || len(permissions) == 0 || perms&^nexus.InternalScopes != 0 {
		return nil, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "permissions",
			Message: fmt.Sprintf("permissions must be internal:funding and/or internal:requests (got %q)", bad+strings.Join(permissions, ","))}
	}
	now := store.Now()
	p := &Platform{ID: nexus.NewID("svc"), Name: name, Algorithm: alg, PublicKey: strings.TrimSpace(publicKeyPEM) + "\n",
		Permissions: perms.String(), Status: "active", CreatedAt: now, UpdatedAt: now}
	if _, err := s.db.NewInsert().Model(p).Exec(ctx); err != nil {
		if store.IsUniqueViolation(err) {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, "name", "a platform service named %q exists", name)
		}
		return nil, err
	}
	p.Object, p.Perms = "platform_service", perms.Names()
	return p, nil
}
