package oauth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/pkg/credential"
)

// Client types.
const (
	Confidential = "confidential"
	Public       = "public"
)

// Client statuses. A disabled client (by an operator) takes part in no flow
// and its tokens are refused, like one whose owner is not approved; it can
// be enabled again. A deleted one is gone, its grants revoked.
const (
	ClientActive   = "active"
	ClientDisabled = "disabled"
	ClientDeleted  = "deleted"
)

// Client is a registered third-party app.
type Client struct {
	bun.BaseModel `bun:"table:oauth_clients"`

	ID           string            `bun:"id,pk"`
	PartnerID    string            `bun:"partner_id"`
	Environment  nexus.Environment `bun:"environment"`
	Name         string            `bun:"name"`
	Type         string            `bun:"type"`
	SecretHash   *string           `bun:"secret_hash"`
	RedirectURIs string            `bun:"redirect_uris"`
	Scopes       string            `bun:"scopes"`
	Status       string            `bun:"status"`
	CreatedAt    time.Time         `bun:"created_at"`
	UpdatedAt    time.Time         `bun:"updated_at"`
	DeletedAt    *time.Time        `bun:"deleted_at"`

	// OwnerStatus is the status of the partner that registered the client,
	// read with it by clientState.
	OwnerStatus nexus.PartnerStatus `bun:"owner_status,scanonly"`
}

// URIs returns the registered redirect URIs.
func (c *Client) URIs() []string {
	var l []string
	_ = json.Unmarshal([]byte(c.RedirectURIs), &l)
	return l
}

// ScopeSet is the most the client may ask for.
func (c *Client) ScopeSet() nexus.ScopeSet {
	s, _ := nexus.ParseScopeString(c.Scopes)
	return s
}

// ClientView is the API's oauth_client object.
type ClientView struct {
	Object       string            `json:"object"`
	ID           string            `json:"id"`
	ClientID     string            `json:"client_id"`
	Environment  nexus.Environment `json:"environment"`
	Name         string            `json:"name"`
	Type         string            `json:"type"`
	RedirectURIs []string          `json:"redirect_uris"`
	Scopes       []string          `json:"scopes"`
	Status       string            `json:"status"`
	CreatedAt    time.Time         `json:"created_at"`
	DeletedAt    *time.Time        `json:"deleted_at"`
	ClientSecret string            `json:"client_secret,omitempty"`
}

func (c *Client) view() *ClientView {
	return &ClientView{Object: "oauth_client", ID: c.ID, ClientID: c.ID, Environment: c.Environment, Name: c.Name,
		Type: c.Type, RedirectURIs: c.URIs(), Scopes: c.ScopeSet().Names(), Status: c.Status,
		CreatedAt: c.CreatedAt, DeletedAt: c.DeletedAt}
}

// CreateClientParams is the body of POST /v1/oauth_clients.
type CreateClientParams struct {
	Name         string   `json:"name" validate:"required,max=100"`
	Type         string   `json:"type" validate:"required,oneof=confidential public"`
	RedirectURIs []string `json:"redirect_uris" validate:"required,min=1,max=10,dive,required,max=2000"`
	Scopes       []string `json:"scopes" validate:"required,min=1,max=20,dive,min=1,max=64"`
}

// CreateClient registers an app for tenant t (its environment becomes the
// client's). A confidential client's secret is returned once.
func (s *Service) CreateClient(ctx context.Context, t nexus.Tenant, p CreateClientParams) (*ClientView, error) {
	if p.Type != Confidential && p.Type != Public {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "type", "type must be confidential or public")
	}
	for i, u := range p.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, nexus.ParamError(nexus.CodeParameterInvalid, fmt.Sprintf("redirect_uris[%d]", i), "%v", err)
		}
	}
	scopes, bad, ok := nexus.ParseScopes(p.Scopes)
	if !ok {
		return nil, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "scopes", Message: fmt.Sprintf("unknown scope: %q", bad)}
	}
	if scopes&^nexus.PartnerScopes != 0 || scopes&nexus.ScopeSet(nexus.ScopeAdminAll) != 0 {
		// Third-party apps never manage a partner's credentials.
		return nil, &nexus.Error{Code: nexus.CodeInvalidScopes, Param: "scopes", Message: "OAuth clients may ask for read:* and write:* scopes only"}
	}
	now := store.Now()
	uris, _ := json.Marshal(p.RedirectURIs)
	c := &Client{ID: nexus.NewID("cli"), PartnerID: t.PartnerID, Environment: t.Environment, Name: p.Name, Type: p.Type,
		RedirectURIs: string(uris), Scopes: scopes.String(), Status: "active", CreatedAt: now, UpdatedAt: now}
	var secret string
	if p.Type == Confidential {
		var err error
		if secret, err = credential.New(string(t.Environment), credential.KindClientSecret); err != nil {
			return nil, err
		}
		h := credential.DigestHex(secret)
		c.SecretHash = &h
	}
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := store.For(tx, t).Insert(c).Exec(ctx); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t, "oauth_client.created", c.ID, map[string]any{"type": c.Type})
	})
	if err != nil {
		return nil, err
	}
	v := c.view()
	v.ClientSecret = secret
	return v, nil
}

// checkRedirectURI: https, or http on localhost / 127.0.0.1 only; no
// fragment (RFC 6749 §3.1.2).
func checkRedirectURI(raw string) error {
	if strings.Contains(raw, "#") {
		return errors.New("redirect URIs may not have a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("redirect URIs must be absolute URLs")
	}
	if u.Fragment != "" || u.User != nil {
		return errors.New("redirect URIs may not have a fragment or user info")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || h == "127.0.0.1" {
			return nil
		}
	}
	return errors.New("redirect URIs must use https (http only on localhost or 127.0.0.1)")
}

// GetClient returns one of the tenant's clients.
func (s *Service) GetClient(ctx context.Context, t nexus.Tenant, id string) (*ClientView, error) {
	c, err := store.Get[Client](ctx, s.db.For(t), "oauth_client", id)
	if err != nil {
		return nil, err
	}
	return c.view(), nil
}

// ListClients returns one page of the tenant's clients.
func (s *Service) ListClients(ctx context.Context, t nexus.Tenant, p store.Page) ([]*ClientView, bool, error) {
	rows, more, err := store.List[Client](ctx, s.db.For(t), p, s.db.NewSelect())
	out := make([]*ClientView, len(rows))
	for i := range rows {
		out[i] = rows[i].view()
	}
	return out, more, err
}

// DeleteClient deletes a client and revokes every token issued to it.
func (s *Service) DeleteClient(ctx context.Context, t nexus.Tenant, id string) (*ClientView, error) {
	return s.changeClient(ctx, t, id, []string{ClientActive, ClientDisabled}, ClientDeleted, "oauth_client.deleted",
		func(ctx context.Context, tx bun.Tx, now time.Time) error {
			// The grants are the consenting partners', not the client
			// owner's: they cross tenants.
			return RevokeGrantsOf(ctx, tx, "a deleted client's grants and tokens, of every partner that consented",
				GrantsOfClients, []string{id}, now)
		})
}

// Which grants RevokeGrantsOf revokes: those with these ids, or those given
// to these clients.
const (
	GrantsByID      = "id"
	GrantsOfClients = "client_id"
)

// RevokeGrantsOf revokes, inside tx and whoever gave them, the active
// grants selected by (GrantsByID or GrantsOfClients) ids, and every token
// of theirs not yet revoked: one statement each however many there are.
// why says which cross-tenant work this is (store.CrossTenant). The caller
// records the events and announces the change.
func RevokeGrantsOf(ctx context.Context, tx bun.IDB, why, by string, ids []string, now time.Time) error {
	cross := store.CrossTenant(tx, why)
	if _, err := store.MoveAll(ctx, cross.Update((*Grant)(nil)).Where("?TableAlias.? IN (?)", bun.Ident(by), bun.In(ids)),
		GrantRevoked, []string{GrantActive}, "revoked_at", now); err != nil {
		return err
	}
	tokenColumn := "grant_id" // GrantsByID
	if by == GrantsOfClients {
		tokenColumn = "client_id"
	}
	_, err := cross.Update((*Token)(nil)).Set("revoked_at = ?", now).
		Where("?TableAlias.? IN (?)", bun.Ident(tokenColumn), bun.In(ids)).Where("?TableAlias.revoked_at IS NULL").Exec(ctx)
	return err
}

// DisableClient stops a client without touching its grants: it takes part
// in no flow and its tokens are refused on every instance, until
// EnableClient.
func (s *Service) DisableClient(ctx context.Context, t nexus.Tenant, id string) (*ClientView, error) {
	return s.changeClient(ctx, t, id, []string{ClientActive}, ClientDisabled, "oauth_client.disabled", nil)
}

// EnableClient undoes DisableClient: the grants that were not revoked work
// again.
func (s *Service) EnableClient(ctx context.Context, t nexus.Tenant, id string) (*ClientView, error) {
	return s.changeClient(ctx, t, id, []string{ClientDisabled}, ClientActive, "oauth_client.enabled", nil)
}

// changeClient moves one of the tenant's clients from one of the statuses
// from to status to (store.Transition: it records event and tells every
// instance to drop the client's cached tokens), and runs also in the same
// transaction.
func (s *Service) changeClient(ctx context.Context, t nexus.Tenant, id string, from []string, to, event string,
	also func(ctx context.Context, tx bun.Tx, now time.Time) error) (*ClientView, error) {
	var c *Client
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := store.Now()
		var set map[string]any
		if to == ClientDeleted {
			set = map[string]any{"deleted_at": now}
		}
		var err error
		c, err = store.Transition[Client](ctx, store.For(tx, t), store.Change{
			Kind: "oauth_client", ID: id, From: from, To: to, Verb: to, Set: set,
			Event: event, Record: recordEvent, Topic: store.TopicKey(id), Publisher: s.db,
		})
		if err != nil || also == nil {
			return err
		}
		return also(ctx, tx, now)
	})
	if err != nil {
		return nil, err
	}
	return c.view(), nil
}

// recordEvent is audit.Record without data, for store.Change.
func recordEvent(ctx context.Context, idb bun.IDB, t nexus.Tenant, event, id string) error {
	return audit.Record(ctx, idb, t, event, id, nil)
}

// ClientTenant returns the tenant that owns client id, whatever its
// partner: the operator's one door to a client (nexus admin client).
func (s *Service) ClientTenant(ctx context.Context, id string) (nexus.Tenant, error) {
	c, err := s.clientState(ctx, id)
	if err != nil {
		return nexus.Tenant{}, err
	}
	if c == nil {
		return nexus.Tenant{}, nexus.NotFound("oauth_client", id)
	}
	return nexus.Tenant{PartnerID: c.PartnerID, Environment: c.Environment}, nil
}

// OperatorClient is a client as an operator sees it: the API's object and
// the partner that registered it.
type OperatorClient struct {
	*ClientView
	PartnerID string `json:"partner_id"`
}

// AllClients lists every client of every partner (of partnerID alone when
// it is not empty), newest first: what an operator sees.
func (s *Service) AllClients(ctx context.Context, partnerID string) ([]OperatorClient, error) {
	var rows []Client
	q := store.CrossTenant(s.db.DB, "an operator's list of every partner's clients").Select(&rows).Order("id DESC")
	if partnerID != "" {
		q = q.Where("partner_id = ?", partnerID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, err
	}
	out := make([]OperatorClient, len(rows))
	for i := range rows {
		out[i] = OperatorClient{ClientView: rows[i].view(), PartnerID: rows[i].PartnerID}
	}
	return out, nil
}

// clientByID finds a client that is not deleted (the flows' lookup), with
// its owner's status; nil when there is none. It reads through the
// verifier's cache when the service has one (see NewVerifier). The row is
// shared: callers do not change it.
func (s *Service) clientByID(ctx context.Context, id string) (*Client, error) {
	var c *Client
	var err error
	if v := s.cache.Load(); v != nil {
		c, err = v.client(ctx, id)
	} else {
		c, err = s.clientState(ctx, id)
	}
	if c == nil || c.Status == ClientDeleted {
		return nil, err
	}
	return c, err
}

// clientState reads client id in any status with its owner's status; nil
// when there is none.
func (s *Service) clientState(ctx context.Context, id string) (*Client, error) {
	if !nexus.IsID("cli", id) {
		// Not one we issued; and a NUL byte or invalid UTF-8 is a database
		// error, not an unknown client (found by FuzzValidateAuthorize).
		return nil, nil
	}
	c := new(Client)
	err := store.CrossTenant(s.db.DB, "client id: the flows and tokens know the client before its tenant").
		Select(c).ColumnExpr("?TableAlias.*").
		ColumnExpr("(SELECT p.status FROM partners AS p WHERE p.id = ?TableAlias.partner_id) AS owner_status").
		Where("?TableAlias.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// blocked says why client c may take no part in a flow now.
type blocked int

const (
	notBlocked       blocked = iota
	clientOff                // disabled (or deleted)
	ownerNotApproved         // its owner may not use the client's environment
	envNotServed             // this deployment does not serve that environment
)

// block checks c: an operator disabled it, the partner that registered it
// may no longer use its environment (inactive, rejected, or pending for a
// live client), or this deployment does not serve that environment. Nothing
// is revoked for it: once the cause goes, the grants that were not revoked
// work again.
func (s *Service) block(c *Client) blocked {
	switch {
	case c.Status != ClientActive:
		return clientOff
	case !c.OwnerStatus.Allows(c.Environment):
		return ownerNotApproved
	case !s.served[c.Environment]:
		return envNotServed
	}
	return notBlocked
}

// clientError is the token endpoint's answer for a blocked client: the
// client no longer authenticates (RFC 6749 §5.2 invalid_client).
func clientError(b blocked, env nexus.Environment) *Error {
	switch b {
	case clientOff:
		return oerr("invalid_client", "the client is disabled")
	case ownerNotApproved:
		return oerr("invalid_client", "the client's owner is not approved for the "+string(env)+" environment")
	case envNotServed:
		return oerr("invalid_client", "this deployment does not serve the "+string(env)+" environment")
	}
	return nil
}

// clientPage is what the authorization page tells the member about a
// blocked client, instead of redirecting to it.
func clientPage(b blocked, env nexus.Environment) *FatalError {
	switch b {
	case clientOff:
		return &FatalError{"The application has been disabled."}
	case ownerNotApproved:
		return &FatalError{"The application is not available: the organisation that registered it may not use the " + string(env) + " environment."}
	case envNotServed:
		return &FatalError{"This Nexus deployment does not serve the " + string(env) + " environment, for which the application is registered."}
	}
	return nil
}

// Grant statuses.
const (
	GrantActive  = "active"
	GrantRevoked = "revoked"
)

// Grant is a partner's consent to a client.
type Grant struct {
	bun.BaseModel `bun:"table:oauth_grants"`

	ID          string            `bun:"id,pk"`
	PartnerID   string            `bun:"partner_id"`
	Environment nexus.Environment `bun:"environment"`
	ClientID    string            `bun:"client_id"`
	MemberID    string            `bun:"member_id"`
	Scopes      string            `bun:"scopes"`
	Status      string            `bun:"status"`
	CreatedAt   time.Time         `bun:"created_at"`
	UpdatedAt   time.Time         `bun:"updated_at"`
	RevokedAt   *time.Time        `bun:"revoked_at"`
}

// tenant is the partner that consented, in the client's environment.
func (g *Grant) tenant() nexus.Tenant {
	return nexus.Tenant{PartnerID: g.PartnerID, Environment: g.Environment}
}

// GrantView is the API's oauth_grant object.
type GrantView struct {
	Object      string            `json:"object"`
	ID          string            `json:"id"`
	ClientID    string            `json:"client_id"`
	ClientName  string            `json:"client_name"`
	Environment nexus.Environment `json:"environment"`
	Scopes      []string          `json:"scopes"`
	Status      string            `json:"status"`
	CreatedAt   time.Time         `json:"created_at"`
	RevokedAt   *time.Time        `json:"revoked_at"`
}

func (s *Service) grantViews(ctx context.Context, gs []Grant) ([]*GrantView, error) {
	ids := make([]string, 0, len(gs))
	for _, g := range gs {
		ids = append(ids, g.ClientID)
	}
	names := map[string]string{}
	if len(ids) > 0 {
		var cs []Client
		// The apps were registered by other partners than the one that
		// authorised them.
		if err := store.CrossTenant(s.db.DB, "names of the clients a partner's grants were given to").
			Select(&cs).Column("id", "name").Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
			return nil, err
		}
		for _, c := range cs {
			names[c.ID] = c.Name
		}
	}
	out := make([]*GrantView, len(gs))
	for i, g := range gs {
		sc, _ := nexus.ParseScopeString(g.Scopes)
		out[i] = &GrantView{Object: "oauth_grant", ID: g.ID, ClientID: g.ClientID, ClientName: names[g.ClientID],
			Environment: g.Environment, Scopes: sc.Names(), Status: g.Status, CreatedAt: g.CreatedAt, RevokedAt: g.RevokedAt}
	}
	return out, nil
}

// ListGrants lists the apps the tenant's partner authorised in its environment.
func (s *Service) ListGrants(ctx context.Context, t nexus.Tenant, p store.Page) ([]*GrantView, bool, error) {
	rows, more, err := store.List[Grant](ctx, s.db.For(t), p, s.db.NewSelect())
	if err != nil {
		return nil, false, err
	}
	out, err := s.grantViews(ctx, rows)
	return out, more, err
}

// RevokeGrant withdraws consent: every token of the grant stops working on
// every instance at once.
func (s *Service) RevokeGrant(ctx context.Context, t nexus.Tenant, id string) (*GrantView, error) {
	var g *Grant
	err := s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		sc := store.For(tx, t)
		now := store.Now()
		var err error
		g, err = store.Transition[Grant](ctx, sc, store.Change{
			Kind: "oauth_grant", ID: id, From: []string{GrantActive}, To: GrantRevoked, Verb: "revoked",
			Set: map[string]any{"revoked_at": now}, Topic: store.TopicKey(id), Publisher: s.db,
		})
		if err != nil {
			return err
		}
		if err := revokeGrantTokens(ctx, sc, id, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t, "oauth_grant.revoked", id, map[string]any{"client_id": g.ClientID})
	})
	if err != nil {
		return nil, err
	}
	vs, err := s.grantViews(ctx, []Grant{*g})
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// revokeGrant revokes grant id of tenant t, if it is active, and its tokens
// inside tx, and announces it: the flows' answer to a replayed code or
// refresh token, and RFC 7009 revocation.
func (s *Service) revokeGrant(ctx context.Context, tx bun.Tx, t nexus.Tenant, id string) error {
	sc := store.For(tx, t)
	now := store.Now()
	if _, err := store.MoveAll(ctx, sc.Update((*Grant)(nil)).Where("?TableAlias.id = ?", id),
		GrantRevoked, []string{GrantActive}, "revoked_at", now); err != nil {
		return err
	}
	if err := revokeGrantTokens(ctx, sc, id, now); err != nil {
		return err
	}
	return s.db.Publish(ctx, tx, store.TopicKey(id))
}

// revokeGrantTokens revokes the tokens of grant id not revoked yet.
func revokeGrantTokens(ctx context.Context, sc store.Scope, id string, now time.Time) error {
	_, err := sc.Update((*Token)(nil)).Set("revoked_at = ?", now).
		Where("?TableAlias.grant_id = ?", id).Where("?TableAlias.revoked_at IS NULL").Exec(ctx)
	return err
}

// RevokeGrantsIn revokes, inside idb (the caller's transaction), every
// active grant tenant t's partner gave in t's environment, with every token
// of theirs not yet expired, and returns both counts. The caller announces
// the change.
func RevokeGrantsIn(ctx context.Context, idb bun.IDB, t nexus.Tenant, now time.Time) (grants, tokens int, err error) {
	sc := store.For(idb, t)
	g, err := store.MoveAll(ctx, sc.Update((*Grant)(nil)), GrantRevoked, []string{GrantActive}, "revoked_at", now)
	if err != nil {
		return 0, 0, err
	}
	// Through the grants: oauth_tokens is indexed by grant, not by tenant.
	grantIDs := sc.Select((*Grant)(nil)).Column("id")
	res, err := sc.Update((*Token)(nil)).Set("revoked_at = ?", now).
		// Unqualified: with a query as its argument, bun reads ?TableAlias
		// from that query (the grants' alias), not from this one.
		Where("grant_id IN (?)", grantIDs).Where("?TableAlias.revoked_at IS NULL").
		Where("?TableAlias.expires_at > ?", now).Exec(ctx)
	if err != nil {
		return 0, 0, err
	}
	n, _ := res.RowsAffected()
	return int(g), int(n), nil
}
