package main

import (
	"context"
	"errors"
	"flag"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
)

// adminService runs `nexus admin service list|revoke` (create stays beside
// the other create commands): verb is list or revoke, args its flags.
func adminService(ctx context.Context, verb string, fs *flag.FlagSet, args []string, withDB func(func(db *store.DB) (any, error)) error) error {
	switch verb {
	case "list":
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		return withDB(func(db *store.DB) (any, error) {
			ps, err := servicetoken.NewService(db, nil).ListPlatforms(ctx)
			return map[string]any{"object": "list", "data": ps, "has_more": false}, err
		})
	case "revoke":
		id := fs.String("id", "", "platform service id, svc_… (required)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *id == "" {
			return nexus.ParamError(nexus.CodeParameterMissing, "id", "--id is required")
		}
		// Every instance refuses the service's tokens within a second: the
		// revocation is announced through the database.
		return withDB(func(db *store.DB) (any, error) {
			return servicetoken.NewService(db, nil).RevokePlatform(ctx, *id)
		})
	}
	return errors.New(adminUsage)
}
