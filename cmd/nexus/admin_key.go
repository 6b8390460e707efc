package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/killswitch"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/store"
)

// dbRunner is cmdAdmin's withDB: it opens the database, runs fn and prints
// what fn returns; partnerRunner is its ofPartner, which first makes sure
// the partner exists.
type (
	dbRunner      = func(fn func(db *store.DB) (any, error)) error
	partnerRunner = func(partnerID string, fn func(db *store.DB) (any, error)) error
)

// The operator's way to stop a compromised key without holding an admin
// API key. The changes go through the same service as the API's, so they
// write the same audit events (actor "operator") and publish the same cache
// drop, which reaches running servers within a second.

// keyFlags are the flags every `admin key list|suspend|revoke` takes.
type keyFlags struct {
	partner, environment, id *string
}

func bindKeyFlags(fs *flag.FlagSet) keyFlags {
	return keyFlags{
		partner:     fs.String("partner", "", "partner id (required)"),
		environment: fs.String("environment", "", "live or test (default: both)"),
		id:          fs.String("id", "", "key id (key_…)"),
	}
}

// tenants are the partner's tenants the flags name: one environment, or both.
func (f keyFlags) tenants() ([]nexus.Tenant, error) {
	if *f.partner == "" {
		return nil, nexus.ParamError(nexus.CodeParameterMissing, "partner", "--partner is required")
	}
	if !strings.HasPrefix(*f.partner, "ptr_") {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "partner", "--partner must be a partner id (ptr_…)")
	}
	if *f.id != "" && !strings.HasPrefix(*f.id, "key_") {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "id", "--id must be an api key id (key_…)")
	}
	envs := []nexus.Environment{nexus.Live, nexus.Test}
	if *f.environment != "" {
		e := nexus.Environment(*f.environment)
		if !e.Valid() {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, "environment", "--environment must be test or live")
		}
		envs = []nexus.Environment{e}
	}
	out := make([]nexus.Tenant, len(envs))
	for i, e := range envs {
		out[i] = nexus.Tenant{PartnerID: *f.partner, Environment: e}
	}
	return out, nil
}

// findKey returns the tenant that owns key id among ts: an operator need
// not know a key's environment to stop it.
func findKey(ctx context.Context, keys *apikey.Service, ts []nexus.Tenant, id string) (nexus.Tenant, error) {
	for _, t := range ts {
		_, err := keys.Get(ctx, t, id)
		if err == nil {
			return t, nil
		}
		var ne *nexus.Error
		if !errors.As(err, &ne) || ne.Code != nexus.CodeResourceMissing {
			return nexus.Tenant{}, err
		}
	}
	return nexus.Tenant{}, nexus.NotFound("api_key", id)
}

// adminKeyList prints the partner's keys, newest first (both environments
// unless one is named; only key --id when given).
func adminKeyList(ctx context.Context, fs *flag.FlagSet, args []string, ofPartner partnerRunner) error {
	f := bindKeyFlags(fs)
	status := fs.String("status", "", "active, suspended, revoked or expired (default: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ts, err := f.tenants()
	if err != nil {
		return err
	}
	st := apikey.Status(*status)
	switch st {
	case "", apikey.Active, apikey.Suspended, apikey.Revoked, apikey.Expired:
	default:
		return nexus.ParamError(nexus.CodeParameterInvalid, "status", "--status must be active, suspended, revoked or expired")
	}
	return ofPartner(*f.partner, func(db *store.DB) (any, error) {
		keys := apikey.NewService(db)
		out := []*apikey.Key{}
		if *f.id != "" {
			t, err := findKey(ctx, keys, ts, *f.id)
			if err != nil {
				return nil, err
			}
			k, err := keys.Get(ctx, t, *f.id)
			if err != nil {
				return nil, err
			}
			if st == "" || k.Status == st {
				out = append(out, k)
			}
			return listJSON(out), nil
		}
		for _, t := range ts {
			p := apikey.ListParams{Page: store.Page{Limit: 100}, Status: st}
			for {
				page, more, err := keys.List(ctx, t, p)
				if err != nil {
					return nil, err
				}
				out = append(out, page...)
				if !more {
					break
				}
				p.StartingAfter = page[len(page)-1].ID
			}
		}
		return listJSON(out), nil
	})
}

// adminKeyChange suspends or revokes key --id, or (set-limits) replaces
// its money limits with --limits.
func adminKeyChange(ctx context.Context, verb string, fs *flag.FlagSet, args []string, ofPartner partnerRunner) error {
	f := bindKeyFlags(fs)
	var limits *string
	if verb == "set-limits" {
		limits = fs.String("limits", "", `money limits as JSON, e.g. '{"usdc": {"daily_withdrawal_total": 1000000000}}' ('{}' removes them)`)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ts, err := f.tenants()
	if err != nil {
		return err
	}
	if *f.id == "" {
		return nexus.ParamError(nexus.CodeParameterMissing, "id", "--id is required")
	}
	return ofPartner(*f.partner, func(db *store.DB) (any, error) {
		keys := apikey.NewService(db)
		t, err := findKey(ctx, keys, ts, *f.id)
		if err != nil {
			return nil, err
		}
		switch verb {
		case "suspend":
			return keys.Suspend(ctx, t, *f.id)
		case "set-limits":
			if *limits == "" {
				return nil, nexus.ParamError(nexus.CodeParameterMissing, "limits", "--limits is required")
			}
			return keys.Update(ctx, t, *f.id, apikey.UpdateParams{Limits: json.RawMessage(*limits)})
		}
		return keys.Revoke(ctx, t, *f.id)
	})
}

// adminPartnerShow prints one partner.
func adminPartnerShow(ctx context.Context, fs *flag.FlagSet, args []string, withDB dbRunner) error {
	id := fs.String("id", "", "partner id (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return nexus.ParamError(nexus.CodeParameterMissing, "id", "--id is required")
	}
	return withDB(func(db *store.DB) (any, error) {
		p, err := partner.NewService(db).Get(ctx, *id)
		if err != nil {
			return nil, err
		}
		return viewPartner(p), nil
	})
}

// adminMemberList prints the partner's members.
func adminMemberList(ctx context.Context, fs *flag.FlagSet, args []string, ofPartner partnerRunner) error {
	pid := fs.String("partner", "", "partner id (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return ofPartner(*pid, func(db *store.DB) (any, error) {
		ms, err := oauth.NewService(db).ListMembers(ctx, *pid)
		if err != nil {
			return nil, err
		}
		return listJSON(ms), nil
	})
}

func listJSON[T any](data []T) map[string]any {
	if data == nil {
		data = []T{}
	}
	return map[string]any{"object": "list", "data": data, "has_more": false}
}

// adminPartnerLockdown is the operator's kill switch: every credential of
// one environment of a partner is revoked, as POST
// /v1/credentials/revoke_all does (same transaction, event, actor operator).
func adminPartnerLockdown(ctx context.Context, fs *flag.FlagSet, args []string, ofPartner partnerRunner) error {
	id := fs.String("id", "", "partner id (required)")
	env := fs.String("environment", "", "live or test (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return nexus.ParamError(nexus.CodeParameterMissing, "id", "--id is required")
	}
	e := nexus.Environment(*env)
	if e != nexus.Live && e != nexus.Test {
		return nexus.ParamError(nexus.CodeParameterInvalid, "environment", "--environment must be live or test")
	}
	return ofPartner(*id, func(db *store.DB) (any, error) {
		return killswitch.New(db).RevokeAll(ctx, nexus.Tenant{PartnerID: *id, Environment: e})
	})
}
