package servicetoken

import (
	"context"
	"database/sql"
	"errors"
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

	ID          string     `bun:"id,pk" json:"id"`
	Object      string     `bun:"-" json:"object"`
	Name        string     `bun:"name" json:"name"`
	Algorithm   string     `bun:"algorithm" json:"algorithm"`
	PublicKey   string     `bun:"public_key" json:"public_key"`
	Permissions string     `bun:"permissions" json:"-"`
	Perms       []string   `bun:"-" json:"permissions"`
	Status      string     `bun:"status" json:"status"` // active or revoked
	CreatedAt   time.Time  `bun:"created_at" json:"created_at"`
	UpdatedAt   time.Time  `bun:"updated_at" json:"-"`
	RevokedAt   *time.Time `bun:"revoked_at" json:"revoked_at"`
}

// fill sets the fields the object shows but does not store.
func (p *Platform) fill() *Platform {
	perms, _ := nexus.ParseScopeString(p.Permissions)
	p.Object, p.Perms = "platform_service", perms.Names()
	return p
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
	return p.fill(), nil
}

// ListPlatforms returns every platform service, newest first, revoked ones
// included (their status and revoked_at are the record of the revocation).
func (s *Service) ListPlatforms(ctx context.Context) ([]*Platform, error) {
	ps := make([]*Platform, 0)
	if err := s.db.NewSelect().Model(&ps).Order("id DESC").Scan(ctx); err != nil {
		return nil, err
	}
	for _, p := range ps {
		p.fill()
	}
	return ps, nil
}

// RevokePlatform ends a platform service for good: every instance refuses
// its tokens, cached ones included, once it hears the invalidation
// published with the change (within a second).
func (s *Service) RevokePlatform(ctx context.Context, id string) (*Platform, error) {
	p := new(Platform)
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := store.Now()
		// platform_services is not a tenant table: no Scope to go through.
		n, err := store.MoveAll(ctx, tx.NewUpdate().Model((*Platform)(nil)).Where("id = ?", id), "revoked", []string{"active"}, "revoked_at", now)
		if err != nil {
			return err
		}
		if err := tx.NewSelect().Model(p).Where("id = ?", id).Scan(ctx); errors.Is(err, sql.ErrNoRows) {
			return nexus.NotFound("platform_service", id)
		} else if err != nil {
			return err
		}
		if n == 0 {
			return nexus.InvalidState("platform service", p.Status, "revoked")
		}
		return s.db.Publish(ctx, tx, store.TopicKey(id))
	})
	if err != nil {
		return nil, err
	}
	return p.fill(), nil
}
