package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
)

// partnerJSON is the partner as the API and the CLI show it.
type partnerJSON struct {
	Object    string              `json:"object"`
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	Status    nexus.PartnerStatus `json:"status"`
	RateLimit int                 `json:"rate_limit"`
	CreatedAt time.Time           `json:"created_at"`
	UpdatedAt time.Time           `json:"updated_at"`
}

func viewPartner(p nexus.Partner) partnerJSON {
	rl := p.RateLimit
	if rl == 0 {
		rl = nexus.DefaultRateLimit
	}
	return partnerJSON{Object: "partner", ID: p.ID, Name: p.Name, Status: p.Status, RateLimit: rl, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// readPassword reads one line from stdin; on a terminal it prompts on
// stderr and does not echo what is typed.
func readPassword(stdin io.Reader) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(os.Stderr, "Password (12 to 256 characters): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", nexus.ParamError(nexus.CodeParameterMissing, "password", "send the password as one line on stdin")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

const adminUsage = "usage: nexus admin partner create|set-status|list|show|lockdown | nexus admin key create|list|suspend|revoke | nexus admin member create|list | nexus admin service create|list|revoke | nexus admin rekey | nexus admin client list|disable|enable|delete"

func cmdAdmin(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "rekey" {
		return cmdAdminRekey(ctx, args[1:], stdout)
	}
	if len(args) > 0 && isHelp(args[0]) || len(args) > 1 && isHelp(args[1]) {
		fmt.Fprintln(stdout, adminUsage+"\n\nRun \"nexus admin <object> <verb> -h\" for a command's flags.")
		return nil
	}
	if len(args) < 2 {
		return usageError{msg: adminUsage}
	}
	fs := flag.NewFlagSet("admin "+args[0]+" "+args[1], flag.ContinueOnError)
	var c config
	bindCommon(fs, &c)
	// withDB opens the database (which must exist and be migrated: an admin
	// command run in the wrong folder must not create one), runs fn and
	// prints the object fn returns, as the API shows it.
	withDB := func(fn func(db *store.DB) (any, error)) error {
		db, err := openExisting(ctx, c)
		if err != nil {
			return err
		}
		defer db.Close()
		out, err := fn(db)
		if err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	// ofPartner runs fn for an existing partner.
	ofPartner := func(pid string, fn func(db *store.DB) (any, error)) error {
		if pid == "" {
			return nexus.ParamError(nexus.CodeParameterMissing, "partner", "--partner is required")
		}
		return withDB(func(db *store.DB) (any, error) {
			if _, err := partner.NewService(db).Get(ctx, pid); err != nil {
				return nil, err
			}
			return fn(db)
		})
	}
	switch args[0] + " " + args[1] {
	case "client list", "client disable", "client enable", "client delete":
		return adminClient(ctx, args[1], fs, args[2:], withDB, ofPartner)
	case "partner create":
		name := fs.String("name", "", "partner name (required)")
		status := fs.String("status", "pending", "pending, approved, inactive or rejected")
		rate := fs.Int("rate-limit", 0, "requests per minute per credential (default 6000)")
		if err := parseFlags(fs, args[2:]); err != nil {
			return err
		}
		return withDB(func(db *store.DB) (any, error) {
			p, err := partner.NewService(db).Create(ctx, partner.CreateParams{Name: *name, Status: nexus.PartnerStatus(*status), RateLimit: *rate})
			return viewPartner(p), err
		})
	case "partner set-status":
		id := fs.String("id", "", "partner id (required)")
		status := fs.String("status", "", "pending, approved, inactive or rejected (required)")
		if err := parseFlags(fs, args[2:]); err != nil {
			return err
		}
		if *id == "" {
			return nexus.ParamError(nexus.CodeParameterMissing, "id", "--id is required")
		}
		return withDB(func(db *store.DB) (any, error) {
			p, err := partner.NewService(db).SetStatus(ctx, *id, nexus.PartnerStatus(*status))
			return viewPartner(p), err
		})
	case "partner show":
		return adminPartnerShow(ctx, fs, args[2:], withDB)
	case "partner lockdown":
		return adminPartnerLockdown(ctx, fs, args[2:], ofPartner)
	case "key list":
		return adminKeyList(ctx, fs, args[2:], ofPartner)
	case "key suspend", "key revoke", "key set-limits":
		return adminKeyChange(ctx, args[1], fs, args[2:], ofPartner)
	case "member list":
		return adminMemberList(ctx, fs, args[2:], ofPartner)
	case "partner list":
		if err := parseFlags(fs, args[2:]); err != nil {
			return err
		}
		return withDB(func(db *store.DB) (any, error) {
			ps, err := partner.NewService(db).List(ctx)
			out := make([]partnerJSON, len(ps))
			for i, p := range ps {
				out[i] = viewPartner(p)
			}
			return map[string]any{"object": "list", "data": out, "has_more": false}, err
		})
	case "key create":
		pid := fs.String("partner", "", "partner id (required)")
		envName := fs.String("environment", "", "test or live (required)")
		typ := fs.String("type", "secret", "secret or publishable")
		scopes := fs.String("scopes", "", "comma-separated scopes (default: admin:all for secret keys, read:balances for publishable)")
		name := fs.String("name", "", "a name to recognise the key by")
		origins := fs.String("allowed-origins", "", "comma-separated origins (scheme://host[:port]) a publishable key may be used from (required for live publishable keys)")
		limits := fs.String("limits", "", `money limits as JSON, e.g. '{"usdc": {"max_withdrawal_amount": 5000000000}}'`)
		ips := fs.String("allowed-ips", "", "comma-separated IPs or CIDRs the key may be used from (default any)")
		expires := fs.String("expires-at", "", "when the key stops working, RFC 3339 (default never; the partner's key policy may require it)")
		if err := parseFlags(fs, args[2:]); err != nil {
			return err
		}
		var expiresAt *time.Time
		if *expires != "" {
			e, err := time.Parse(time.RFC3339, *expires)
			if err != nil {
				return nexus.ParamError(nexus.CodeParameterInvalid, "expires_at", "--expires-at must be an RFC 3339 time")
			}
			expiresAt = &e
		}
		e := nexus.Environment(*envName)
		if !e.Valid() {
			return nexus.ParamError(nexus.CodeParameterInvalid, "environment", "--environment must be test or live")
		}
		if *typ != string(apikey.Secret) && *typ != string(apikey.Publishable) {
			return nexus.ParamError(nexus.CodeParameterInvalid, "type", "--type must be secret or publishable")
		}
		return ofPartner(*pid, func(db *store.DB) (any, error) {
			return apikey.NewService(db).Create(ctx, nexus.Tenant{PartnerID: *pid, Environment: e},
				apikey.CreateParams{Type: apikey.Type(*typ), Name: *name, Scopes: splitList(*scopes), AllowedOrigins: splitList(*origins),
					AllowedIPs: splitList(*ips), ExpiresAt: expiresAt, Limits: json.RawMessage(*limits)})
		})
	case "member create":
		pid := fs.String("partner", "", "partner id (required)")
		email := fs.String("email", "", "the member's email, used to log in (required)")
		role := fs.String("role", "owner", "owner, admin, developer or viewer")
		if err := parseFlags(fs, args[2:]); err != nil {
			return err
		}
		if r := oauth.Role(*role); !r.Valid() {
			return nexus.ParamError(nexus.CodeParameterInvalid, "role", "--role must be owner, admin, developer or viewer")
		}
		// The password comes on stdin, never as a flag (flags show in ps).
		pw, err := readPassword(stdin)
		if err != nil {
			return err
		}
		return ofPartner(*pid, func(db *store.DB) (any, error) {
			return oauth.NewService(db).CreateMemberWithRole(ctx, *pid, *email, pw, oauth.Role(*role))
		})
	case "service create":
		name := fs.String("name", "", "service name, shown in the audit log (required)")
		keyFile := fs.String("public-key", "", "PEM file with the service's public key: Ed25519, P-256 or RSA >= 2048 (required)")
		perms := fs.String("permissions", "", "comma-separated: internal:funding,internal:requests (required)")
		if err := parseFlags(fs, args[2:]); err != nil {
			return err
		}
		if *keyFile == "" {
			return nexus.ParamError(nexus.CodeParameterMissing, "public-key", "--public-key is required")
		}
		pemText, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		return withDB(func(db *store.DB) (any, error) {
			return servicetoken.NewService(db, nil).CreatePlatform(ctx, *name, string(pemText), splitList(*perms))
		})
	case "service list", "service revoke":
		return adminService(ctx, args[1], fs, args[2:], withDB)
	}
	return usageError{msg: fmt.Sprintf("unknown command \"admin %s %s\"\n%s", args[0], args[1], adminUsage)}
}
