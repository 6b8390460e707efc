package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/store"
)

// adminClient runs `nexus admin client list|disable|enable|delete`: an
// operator stops (or restarts, or removes) one OAuth app of any partner
// without touching the partner.
func adminClient(ctx context.Context, verb string, fs *flag.FlagSet, args []string, withDB dbRunner, ofPartner partnerRunner) error {
	switch verb {
	case "list":
		pid := fs.String("partner", "", "only the clients this partner registered (ptr_…)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		list := func(db *store.DB) (any, error) {
			cs, err := oauth.NewService(db).AllClients(ctx, *pid)
			return map[string]any{"object": "list", "data": cs, "has_more": false}, err
		}
		if *pid != "" {
			return ofPartner(*pid, list)
		}
		return withDB(list)
	case "disable", "enable", "delete":
		id := fs.String("id", "", "client id, cli_… (required)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if *id == "" {
			return nexus.ParamError(nexus.CodeParameterMissing, "id", "--id is required")
		}
		return withDB(func(db *store.DB) (any, error) {
			svc := oauth.NewService(db)
			t, err := svc.ClientTenant(ctx, *id)
			if err != nil {
				return nil, err
			}
			change := map[string]func(context.Context, nexus.Tenant, string) (*oauth.ClientView, error){
				"disable": svc.DisableClient, "enable": svc.EnableClient, "delete": svc.DeleteClient,
			}[verb]
			v, err := change(ctx, t, *id)
			if err != nil {
				return nil, err
			}
			return oauth.OperatorClient{ClientView: v, PartnerID: t.PartnerID}, nil
		})
	}
	return fmt.Errorf(adminUsage)
}
