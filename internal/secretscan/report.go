package secretscan

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// MaxFindings bounds one report, as every JSON array Nexus reads.
const MaxFindings = 1000

// Finding is one match a code host reports.
type Finding struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// Labels GitHub understands.
const (
	TruePositive  = "true_positive"
	FalsePositive = "false_positive"
)

// Label is the answer about one finding, in GitHub's feedback format: the
// token only as its SHA-256 digest, never echoed.
type Label struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// EventType is the audit event written, for the owning partner, for every
// reported token that is a real Nexus secret.
const EventType = "credential.leaked"

// Service turns reports into revocations.
type Service struct{ db *store.DB }

// New returns the service on db.
func New(db *store.DB) *Service { return &Service{db: db} }

// leak is a real secret found among the findings.
type leak struct {
	tenant  nexus.Tenant
	object  string // key_…, grt_…, cli_…, sc_…
	kind    string // secret_key, publishable_key, oauth_access_token, …
	revoked bool   // revoked (or deleted) by this report
	action  string // what Nexus did, for the event
}

// Report labels every finding and revokes, in one transaction, every real
// secret among them that still works:
//
//   - a secret key (sk) is revoked;
//   - an OAuth access or refresh token (at, rt) revokes its grant and every
//     token of it (RFC 7009 does the same);
//   - an OAuth client secret (cs) deletes its client (there is no other way
//     to take a client secret back), revoking every grant and token of it;
//   - a signing secret (ss) revokes its service credential.
//
// A publishable key (pk) is labelled true_positive but stays active:
// publishable keys are made to be public (in web pages), bound to origins
// and read-only; the partner sees the event and may rotate it.
//
// Every true positive writes credential.leaked (with the URL and source)
// for the owning partner, and every revocation its usual lifecycle event.
// Every instance drops the owners' cached verifications at commit.
// Strings that are not Nexus secrets (wrong shape or checksum) are
// false_positive without touching the database, unknown ones after one
// lookup per kind.
func (s *Service) Report(ctx context.Context, fs []Finding) ([]Label, error) {
	out := make([]Label, len(fs))
	byKind := map[credential.Kind][]string{}
	at := map[string][]int{} // digest -> finding indexes
	for i, f := range fs {
		d := credential.DigestHex(f.Token)
		out[i] = Label{TokenHash: d, TokenType: f.Type, Label: FalsePositive}
		c, err := credential.Parse(f.Token)
		if err != nil {
			continue
		}
		if _, seen := at[d]; !seen {
			byKind[c.Kind] = append(byKind[c.Kind], d)
		}
		at[d] = append(at[d], i)
	}
	if len(at) == 0 {
		return out, nil
	}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := store.Now()
		found := map[string]*leak{} // digest -> leak
		var events []*audit.Event
		event := func(t nexus.Tenant, typ, object string, data map[string]any) {
			events = append(events, newEvent(ctx, t, typ, object, data, now))
		}
		keys := append(byKind[credential.KindSecretKey], byKind[credential.KindPublishableKey]...)
		if err := revokeKeys(ctx, tx, keys, now, found, event); err != nil {
			return err
		}
		tokens := append(byKind[credential.KindAccessToken], byKind[credential.KindRefreshToken]...)
		if err := revokeTokens(ctx, tx, tokens, now, found, event); err != nil {
			return err
		}
		if err := deleteClients(ctx, tx, byKind[credential.KindClientSecret], now, found, event); err != nil {
			return err
		}
		if err := revokeServiceCredentials(ctx, tx, byKind[credential.KindSigningSecret], now, found, event); err != nil {
			return err
		}
		owners := map[string]bool{}
		for d, l := range found {
			for _, i := range at[d] {
				out[i].Label = TruePositive
				event(l.tenant, EventType, l.object, map[string]any{
					"url": fs[i].URL, "source": fs[i].Source, "reported_type": fs[i].Type,
					"kind": l.kind, "revoked": l.revoked, "action": l.action,
				})
			}
			if l.revoked {
				owners[l.tenant.PartnerID] = true
			}
		}
		if len(events) > 0 {
			if _, err := store.CrossTenant(tx, "secret scanning: one report's events, for the owners of every leaked secret").
				Insert(&events).Exec(ctx); err != nil {
				return err
			}
		}
		// A partner topic per owner rather than a topic per credential:
		// one notification each, however many secrets leaked.
		for id := range owners {
			if err := s.db.Publish(ctx, tx, store.TopicPartner(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type eventFunc func(t nexus.Tenant, typ, object string, data map[string]any)

func newEvent(ctx context.Context, t nexus.Tenant, typ, object string, data map[string]any, now time.Time) *audit.Event {
	o := audit.OriginFrom(ctx)
	ev := &audit.Event{ID: nexus.NewID("evt"), PartnerID: t.PartnerID, Environment: t.Environment, Type: typ, ObjectID: object,
		CredentialID: o.CredentialID, Actor: o.Actor, IP: o.IP, RequestID: o.RequestID, Data: "{}", CreatedAt: now}
	if len(data) > 0 {
		ev.Data = audit.MustJSON(data)
	}
	return ev
}

// The lookups below are cross-tenant by nature (a digest names its owner):
// this file is their one door. The revocations too: a report revokes what
// it found in one statement per kind whatever the owners (a credential at
// a time through store.Transition made a report of 100 live keys 8 times
// slower on PostgreSQL), with the same conditions and events as the
// one-credential revocations of apikey and servicetoken.

func revokeKeys(ctx context.Context, tx bun.Tx, digests []string, now time.Time, found map[string]*leak, event eventFunc) error {
	if len(digests) == 0 {
		return nil
	}
	var rows []apikey.Row
	if err := store.CrossTenant(tx, "secret scanning: api keys by reported digest").Select(&rows).
		Where("?TableAlias.key_hash IN (?)", bun.In(digests)).Scan(ctx); err != nil {
		return err
	}
	var ids []string
	for _, r := range rows {
		t := nexus.Tenant{PartnerID: r.PartnerID, Environment: r.Environment}
		l := &leak{tenant: t, object: r.ID, kind: "secret_key", action: "none: the key was already " + string(r.EffectiveStatus(now))}
		switch {
		case r.Type == apikey.Publishable:
			l.kind, l.action = "publishable_key", "none: publishable keys are public by design; rotate it if it should not be"
		case r.Status == apikey.Active && r.EffectiveStatus(now) == apikey.Active, r.Status == apikey.Suspended:
			l.revoked, l.action = true, "api_key_revoked"
			ids = append(ids, r.ID)
			event(t, "api_key.revoked", r.ID, map[string]any{"reason": "leaked"})
		}
		found[r.KeyHash] = l
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := store.MoveAll(ctx, store.CrossTenant(tx, "secret scanning: the leaked api keys of a report, whatever their owners").
		Update((*apikey.Row)(nil)).Where("?TableAlias.id IN (?)", bun.In(ids)),
		apikey.Revoked, []apikey.Status{apikey.Active, apikey.Suspended}, "", now)
	return err
}

func revokeTokens(ctx context.Context, tx bun.Tx, digests []string, now time.Time, found map[string]*leak, event eventFunc) error {
	if len(digests) == 0 {
		return nil
	}
	var rows []oauth.Token
	if err := store.CrossTenant(tx, "secret scanning: oauth tokens by reported digest").Select(&rows).
		Column("token_hash", "kind", "grant_id", "partner_id", "environment").
		Where("?TableAlias.token_hash IN (?)", bun.In(digests)).Scan(ctx); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	grantIDs := make([]string, 0, len(rows))
	for _, r := range rows {
		grantIDs = append(grantIDs, r.GrantID)
	}
	var active []oauth.Grant
	if err := store.CrossTenant(tx, "secret scanning: the grants of the reported tokens").Select(&active).
		Column("id", "client_id").Where("?TableAlias.id IN (?)", bun.In(grantIDs)).
		Where("?TableAlias.status = 'active'").Scan(ctx); err != nil {
		return err
	}
	live := map[string]bool{}
	var ids []string
	for _, g := range active {
		live[g.ID] = true
		ids = append(ids, g.ID)
	}
	revoked := map[string]bool{}
	for _, r := range rows {
		t := nexus.Tenant{PartnerID: r.PartnerID, Environment: r.Environment}
		kind := map[string]string{"at": "oauth_access_token", "rt": "oauth_refresh_token"}[r.Kind]
		l := &leak{tenant: t, object: r.GrantID, kind: kind, action: "none: the grant was already revoked"}
		if live[r.GrantID] {
			l.revoked, l.action = true, "oauth_grant_revoked"
			if !revoked[r.GrantID] {
				revoked[r.GrantID] = true
				event(t, "oauth_grant.revoked", r.GrantID, map[string]any{"reason": "leaked"})
			}
		}
		found[r.TokenHash] = l
	}
	if len(ids) == 0 {
		return nil
	}
	return oauth.RevokeGrantsOf(ctx, tx, "secret scanning: the grants of a report's leaked tokens, whatever their owners",
		oauth.GrantsByID, ids, now)
}

func deleteClients(ctx context.Context, tx bun.Tx, digests []string, now time.Time, found map[string]*leak, event eventFunc) error {
	if len(digests) == 0 {
		return nil
	}
	var rows []oauth.Client
	if err := store.CrossTenant(tx, "secret scanning: oauth clients by reported secret digest").Select(&rows).
		Column("id", "partner_id", "environment", "status", "secret_hash").
		Where("?TableAlias.secret_hash IN (?)", bun.In(digests)).Scan(ctx); err != nil {
		return err
	}
	var ids []string
	for _, r := range rows {
		t := nexus.Tenant{PartnerID: r.PartnerID, Environment: r.Environment}
		l := &leak{tenant: t, object: r.ID, kind: "oauth_client_secret", action: "none: the client was already deleted"}
		if r.Status != oauth.ClientDeleted {
			l.revoked, l.action = true, "oauth_client_deleted"
			ids = append(ids, r.ID)
			event(t, "oauth_client.deleted", r.ID, map[string]any{"reason": "leaked"})
		}
		found[*r.SecretHash] = l
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := store.MoveAll(ctx, store.CrossTenant(tx, "secret scanning: the leaked oauth clients of a report, whatever their owners").
		Update((*oauth.Client)(nil)).Where("?TableAlias.id IN (?)", bun.In(ids)),
		oauth.ClientDeleted, []string{oauth.ClientActive, oauth.ClientDisabled}, "deleted_at", now); err != nil {
		return err
	}
	return oauth.RevokeGrantsOf(ctx, tx, "secret scanning: the grants of a report's leaked clients, whatever their owners",
		oauth.GrantsOfClients, ids, now)
}

func revokeServiceCredentials(ctx context.Context, tx bun.Tx, digests []string, now time.Time, found map[string]*leak, event eventFunc) error {
	if len(digests) == 0 {
		return nil
	}
	var rows []servicetoken.Credential
	if err := store.CrossTenant(tx, "secret scanning: service credentials by reported signing-secret digest").Select(&rows).
		Column("id", "partner_id", "environment", "status", "secret_hash").
		Where("?TableAlias.secret_hash IN (?)", bun.In(digests)).Scan(ctx); err != nil {
		return err
	}
	var ids []string
	for _, r := range rows {
		t := nexus.Tenant{PartnerID: r.PartnerID, Environment: r.Environment}
		l := &leak{tenant: t, object: r.ID, kind: "service_signing_secret", action: "none: the credential was already revoked"}
		if r.Status == "active" {
			l.revoked, l.action = true, "service_credential_revoked"
			ids = append(ids, r.ID)
			event(t, "service_credential.revoked", r.ID, map[string]any{"reason": "leaked"})
		}
		found[*r.SecretHash] = l
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := store.MoveAll(ctx, store.CrossTenant(tx, "secret scanning: the leaked service credentials of a report, whatever their owners").
		Update((*servicetoken.Credential)(nil)).Where("?TableAlias.id IN (?)", bun.In(ids)),
		"revoked", []string{"active"}, "revoked_at", now)
	return err
}
