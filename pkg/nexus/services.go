package nexus

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
)

// errMissingID is returned, without a request, by calls given an empty id.
var errMissingID = errors.New("nexus: an id is required")

// send runs one call and decodes its answer into a new T.
func send[T any](ctx context.Context, c *Client, method, path string, body any, opts []RequestOption) (*T, error) {
	out := new(T)
	if err := c.do(ctx, call{method: method, path: path, body: body, out: out}, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// onID runs a call on the object named id (format has one %s).
func onID[T any](ctx context.Context, c *Client, method, format, id string, body any, opts []RequestOption) (*T, error) {
	if id == "" {
		return nil, errMissingID
	}
	return send[T](ctx, c, method, pathf(format, id), body, opts)
}

// query encodes list parameters, nil included.
func query[P any, PP interface {
	*P
	listQuery
}](p PP) url.Values {
	if p == nil {
		p = PP(new(P))
	}
	return p.values()
}

// PartnerService reads the calling partner.
type PartnerService struct{ c *Client }

// Get returns the partner, the environment and the calling credential
// (GET /v1/partner; any valid credential).
func (s *PartnerService) Get(ctx context.Context, opts ...RequestOption) (*Partner, error) {
	return send[Partner](ctx, s.c, http.MethodGet, "/v1/partner", nil, opts)
}

// BalanceService reads balances (read:balances).
type BalanceService struct{ c *Client }

// List returns the balance of every currency, zero ones included
// (GET /v1/balances). The list is never paginated.
func (s *BalanceService) List(ctx context.Context, opts ...RequestOption) ([]*Balance, error) {
	p, err := listPage[*Balance](ctx, s.c, "/v1/balances", nil, opts)
	if err != nil {
		return nil, err
	}
	return p.Data, nil
}

// Get returns the balance of one currency (GET /v1/balances/{currency}).
func (s *BalanceService) Get(ctx context.Context, currency Currency, opts ...RequestOption) (*Balance, error) {
	return onID[Balance](ctx, s.c, http.MethodGet, "/v1/balances/%s", string(currency), nil, opts)
}

// FundingService reads deposits (read:funding).
type FundingService struct{ c *Client }

// List returns one page of fundings, newest first (GET /v1/funding).
// params may be nil.
func (s *FundingService) List(ctx context.Context, params *FundingListParams, opts ...RequestOption) (*Page[*Funding], error) {
	return listPage[*Funding](ctx, s.c, "/v1/funding", query(params), opts)
}

// All iterates over every funding matching params, fetching pages as needed.
func (s *FundingService) All(ctx context.Context, params *FundingListParams, opts ...RequestOption) iter.Seq2[*Funding, error] {
	return listAll[*Funding](ctx, s.c, "/v1/funding", params, opts)
}

// Get returns one funding (GET /v1/funding/{id}).
func (s *FundingService) Get(ctx context.Context, id string, opts ...RequestOption) (*Funding, error) {
	return onID[Funding](ctx, s.c, http.MethodGet, "/v1/funding/%s", id, nil, opts)
}

// AddressService manages payout addresses (read:addresses, write:addresses).
type AddressService struct{ c *Client }

// Create registers a payout address (POST /v1/addresses). The same address
// twice is CodeAddressExists.
func (s *AddressService) Create(ctx context.Context, params *AddressCreateParams, opts ...RequestOption) (*Address, error) {
	if params == nil {
		params = new(AddressCreateParams)
	}
	return send[Address](ctx, s.c, http.MethodPost, "/v1/addresses", params, opts)
}

// List returns one page of addresses, newest first (GET /v1/addresses).
// params may be nil.
func (s *AddressService) List(ctx context.Context, params *AddressListParams, opts ...RequestOption) (*Page[*Address], error) {
	return listPage[*Address](ctx, s.c, "/v1/addresses", query(params), opts)
}

// All iterates over every address matching params, fetching pages as needed.
func (s *AddressService) All(ctx context.Context, params *AddressListParams, opts ...RequestOption) iter.Seq2[*Address, error] {
	return listAll[*Address](ctx, s.c, "/v1/addresses", params, opts)
}

// Get returns one address (GET /v1/addresses/{id}).
func (s *AddressService) Get(ctx context.Context, id string, opts ...RequestOption) (*Address, error) {
	return onID[Address](ctx, s.c, http.MethodGet, "/v1/addresses/%s", id, nil, opts)
}

// Archive archives an address and returns it (DELETE /v1/addresses/{id}).
func (s *AddressService) Archive(ctx context.Context, id string, opts ...RequestOption) (*Address, error) {
	return onID[Address](ctx, s.c, http.MethodDelete, "/v1/addresses/%s", id, nil, opts)
}

// RequestService manages withdrawal requests (read:requests,
// write:requests).
type RequestService struct{ c *Client }

// Create creates a withdrawal request, reserving its amount
// (POST /v1/requests). Without enough available funds it is
// CodeInsufficientFunds and changes nothing.
func (s *RequestService) Create(ctx context.Context, params *RequestCreateParams, opts ...RequestOption) (*Request, error) {
	var p RequestCreateParams
	if params != nil {
		p = *params
	}
	if p.Type == "" {
		p.Type = "withdrawal"
	}
	return send[Request](ctx, s.c, http.MethodPost, "/v1/requests", &p, opts)
}

// List returns one page of requests, newest first (GET /v1/requests).
// params may be nil.
func (s *RequestService) List(ctx context.Context, params *RequestListParams, opts ...RequestOption) (*Page[*Request], error) {
	return listPage[*Request](ctx, s.c, "/v1/requests", query(params), opts)
}

// All iterates over every request matching params, fetching pages as needed.
func (s *RequestService) All(ctx context.Context, params *RequestListParams, opts ...RequestOption) iter.Seq2[*Request, error] {
	return listAll[*Request](ctx, s.c, "/v1/requests", params, opts)
}

// Get returns one request (GET /v1/requests/{id}).
func (s *RequestService) Get(ctx context.Context, id string, opts ...RequestOption) (*Request, error) {
	return onID[Request](ctx, s.c, http.MethodGet, "/v1/requests/%s", id, nil, opts)
}

// Cancel cancels a pending request, releasing its amount
// (POST /v1/requests/{id}/cancel); otherwise CodeInvalidState.
func (s *RequestService) Cancel(ctx context.Context, id string, opts ...RequestOption) (*Request, error) {
	return onID[Request](ctx, s.c, http.MethodPost, "/v1/requests/%s/cancel", id, nil, opts)
}

// APIKeyService manages the API keys of the caller's environment
// (admin:all).
type APIKeyService struct{ c *Client }

// Create creates an API key (POST /v1/api_keys). The answer's Key is the
// only time the plain key is shown. params may be nil (a full-access
// secret key).
func (s *APIKeyService) Create(ctx context.Context, params *APIKeyCreateParams, opts ...RequestOption) (*APIKey, error) {
	if params == nil {
		params = new(APIKeyCreateParams)
	}
	return send[APIKey](ctx, s.c, http.MethodPost, "/v1/api_keys", params, opts)
}

// List returns one page of keys, newest first (GET /v1/api_keys). params
// may be nil.
func (s *APIKeyService) List(ctx context.Context, params *APIKeyListParams, opts ...RequestOption) (*Page[*APIKey], error) {
	return listPage[*APIKey](ctx, s.c, "/v1/api_keys", query(params), opts)
}

// All iterates over every key matching params, fetching pages as needed.
func (s *APIKeyService) All(ctx context.Context, params *APIKeyListParams, opts ...RequestOption) iter.Seq2[*APIKey, error] {
	return listAll[*APIKey](ctx, s.c, "/v1/api_keys", params, opts)
}

// Get returns one key (GET /v1/api_keys/{id}).
func (s *APIKeyService) Get(ctx context.Context, id string, opts ...RequestOption) (*APIKey, error) {
	return onID[APIKey](ctx, s.c, http.MethodGet, "/v1/api_keys/%s", id, nil, opts)
}

// Update changes a key's name or money limits (PATCH /v1/api_keys/{id}).
func (s *APIKeyService) Update(ctx context.Context, id string, params *APIKeyUpdateParams, opts ...RequestOption) (*APIKey, error) {
	if params == nil {
		params = new(APIKeyUpdateParams)
	}
	return onID[APIKey](ctx, s.c, http.MethodPatch, "/v1/api_keys/%s", id, params, opts)
}

// Suspend suspends an active key (POST /v1/api_keys/{id}/suspend).
func (s *APIKeyService) Suspend(ctx context.Context, id string, opts ...RequestOption) (*APIKey, error) {
	return onID[APIKey](ctx, s.c, http.MethodPost, "/v1/api_keys/%s/suspend", id, nil, opts)
}

// Reactivate reactivates a suspended key
// (POST /v1/api_keys/{id}/reactivate).
func (s *APIKeyService) Reactivate(ctx context.Context, id string, opts ...RequestOption) (*APIKey, error) {
	return onID[APIKey](ctx, s.c, http.MethodPost, "/v1/api_keys/%s/reactivate", id, nil, opts)
}

// Revoke revokes a key for good (POST /v1/api_keys/{id}/revoke).
func (s *APIKeyService) Revoke(ctx context.Context, id string, opts ...RequestOption) (*APIKey, error) {
	return onID[APIKey](ctx, s.c, http.MethodPost, "/v1/api_keys/%s/revoke", id, nil, opts)
}

// Rotate replaces a key (POST /v1/api_keys/{id}/rotate): the answer is the
// new key, with its Key shown this once; the old key keeps working for the
// grace period. params may be nil.
func (s *APIKeyService) Rotate(ctx context.Context, id string, params *APIKeyRotateParams, opts ...RequestOption) (*APIKey, error) {
	if params == nil {
		params = new(APIKeyRotateParams)
	}
	return onID[APIKey](ctx, s.c, http.MethodPost, "/v1/api_keys/%s/rotate", id, params, opts)
}

// Delete revokes a key, as Revoke does (DELETE /v1/api_keys/{id}).
func (s *APIKeyService) Delete(ctx context.Context, id string, opts ...RequestOption) (*APIKey, error) {
	return onID[APIKey](ctx, s.c, http.MethodDelete, "/v1/api_keys/%s", id, nil, opts)
}

// KeyPolicyService reads and sets the key policy of the caller's
// environment (admin:all).
type KeyPolicyService struct{ c *Client }

// Get returns the key policy (GET /v1/policy).
func (s *KeyPolicyService) Get(ctx context.Context, opts ...RequestOption) (*KeyPolicy, error) {
	return send[KeyPolicy](ctx, s.c, http.MethodGet, "/v1/policy", nil, opts)
}

// Put replaces the key policy (PUT /v1/policy). Creating or rotating a key
// that breaks it then fails with CodePolicyViolation; live keys that break
// it are listed with APIKeyListParams.PolicyViolations.
func (s *KeyPolicyService) Put(ctx context.Context, params *KeyPolicyParams, opts ...RequestOption) (*KeyPolicy, error) {
	if params == nil {
		params = new(KeyPolicyParams)
	}
	return send[KeyPolicy](ctx, s.c, http.MethodPut, "/v1/policy", params, opts)
}

// ServiceCredentialService manages service credentials (admin:all).
type ServiceCredentialService struct{ c *Client }

// Create creates a service credential (POST /v1/service_credentials). For
// HS256 the answer's Secret is the only time the signing secret is shown.
func (s *ServiceCredentialService) Create(ctx context.Context, params *ServiceCredentialCreateParams, opts ...RequestOption) (*ServiceCredential, error) {
	if params == nil {
		params = new(ServiceCredentialCreateParams)
	}
	return send[ServiceCredential](ctx, s.c, http.MethodPost, "/v1/service_credentials", params, opts)
}

// List returns one page of service credentials, newest first
// (GET /v1/service_credentials). params may be nil.
func (s *ServiceCredentialService) List(ctx context.Context, params *ListParams, opts ...RequestOption) (*Page[*ServiceCredential], error) {
	return listPage[*ServiceCredential](ctx, s.c, "/v1/service_credentials", query(params), opts)
}

// All iterates over every service credential, fetching pages as needed.
func (s *ServiceCredentialService) All(ctx context.Context, params *ListParams, opts ...RequestOption) iter.Seq2[*ServiceCredential, error] {
	return listAll[*ServiceCredential](ctx, s.c, "/v1/service_credentials", params, opts)
}

// Get returns one service credential (GET /v1/service_credentials/{id}).
func (s *ServiceCredentialService) Get(ctx context.Context, id string, opts ...RequestOption) (*ServiceCredential, error) {
	return onID[ServiceCredential](ctx, s.c, http.MethodGet, "/v1/service_credentials/%s", id, nil, opts)
}

// Update changes a service credential's name or money limits
// (PATCH /v1/service_credentials/{id}).
func (s *ServiceCredentialService) Update(ctx context.Context, id string, params *ServiceCredentialUpdateParams, opts ...RequestOption) (*ServiceCredential, error) {
	if params == nil {
		params = new(ServiceCredentialUpdateParams)
	}
	return onID[ServiceCredential](ctx, s.c, http.MethodPatch, "/v1/service_credentials/%s", id, params, opts)
}

// Revoke revokes a service credential: tokens it signed stop working
// (POST /v1/service_credentials/{id}/revoke).
func (s *ServiceCredentialService) Revoke(ctx context.Context, id string, opts ...RequestOption) (*ServiceCredential, error) {
	return onID[ServiceCredential](ctx, s.c, http.MethodPost, "/v1/service_credentials/%s/revoke", id, nil, opts)
}

// OAuthClientService manages the partner's OAuth clients (admin:all).
type OAuthClientService struct{ c *Client }

// Create registers an OAuth client (POST /v1/oauth_clients). For a
// confidential client the answer's ClientSecret is shown this once.
func (s *OAuthClientService) Create(ctx context.Context, params *OAuthClientCreateParams, opts ...RequestOption) (*OAuthClient, error) {
	if params == nil {
		params = new(OAuthClientCreateParams)
	}
	return send[OAuthClient](ctx, s.c, http.MethodPost, "/v1/oauth_clients", params, opts)
}

// List returns one page of OAuth clients, newest first
// (GET /v1/oauth_clients). params may be nil.
func (s *OAuthClientService) List(ctx context.Context, params *ListParams, opts ...RequestOption) (*Page[*OAuthClient], error) {
	return listPage[*OAuthClient](ctx, s.c, "/v1/oauth_clients", query(params), opts)
}

// All iterates over every OAuth client, fetching pages as needed.
func (s *OAuthClientService) All(ctx context.Context, params *ListParams, opts ...RequestOption) iter.Seq2[*OAuthClient, error] {
	return listAll[*OAuthClient](ctx, s.c, "/v1/oauth_clients", params, opts)
}

// Get returns one OAuth client (GET /v1/oauth_clients/{id}).
func (s *OAuthClientService) Get(ctx context.Context, id string, opts ...RequestOption) (*OAuthClient, error) {
	return onID[OAuthClient](ctx, s.c, http.MethodGet, "/v1/oauth_clients/%s", id, nil, opts)
}

// Delete deletes an OAuth client and revokes every token issued to it
// (DELETE /v1/oauth_clients/{id}).
func (s *OAuthClientService) Delete(ctx context.Context, id string, opts ...RequestOption) (*OAuthClient, error) {
	return onID[OAuthClient](ctx, s.c, http.MethodDelete, "/v1/oauth_clients/%s", id, nil, opts)
}

// OAuthGrantService manages the apps the partner authorised (admin:all).
type OAuthGrantService struct{ c *Client }

// List returns one page of grants, newest first (GET /v1/oauth_grants).
// params may be nil.
func (s *OAuthGrantService) List(ctx context.Context, params *ListParams, opts ...RequestOption) (*Page[*OAuthGrant], error) {
	return listPage[*OAuthGrant](ctx, s.c, "/v1/oauth_grants", query(params), opts)
}

// All iterates over every grant, fetching pages as needed.
func (s *OAuthGrantService) All(ctx context.Context, params *ListParams, opts ...RequestOption) iter.Seq2[*OAuthGrant, error] {
	return listAll[*OAuthGrant](ctx, s.c, "/v1/oauth_grants", params, opts)
}

// Revoke revokes a grant and, at once, every token issued under it
// (DELETE /v1/oauth_grants/{id}).
func (s *OAuthGrantService) Revoke(ctx context.Context, id string, opts ...RequestOption) (*OAuthGrant, error) {
	return onID[OAuthGrant](ctx, s.c, http.MethodDelete, "/v1/oauth_grants/%s", id, nil, opts)
}

// CredentialService acts on every credential of the environment at once
// (admin:all).
type CredentialService struct{ c *Client }

// RevokeAll is the kill switch (POST /v1/credentials/revoke_all): it
// revokes every API key (the calling one included: the client stops working
// after this call), service credential and OAuth grant of the calling
// credential's environment. params.Environment must be that environment and
// params.Confirm the partner id; anything else is a 400 parameter_invalid
// naming the parameter, and nothing changes.
func (s *CredentialService) RevokeAll(ctx context.Context, params *RevokeAllParams, opts ...RequestOption) (*CredentialRevocation, error) {
	if params == nil {
		params = new(RevokeAllParams)
	}
	return send[CredentialRevocation](ctx, s.c, http.MethodPost, "/v1/credentials/revoke_all", params, opts)
}

// AuditEventService reads the audit log (admin:all).
type AuditEventService struct{ c *Client }

// List returns one page of audit events, newest first
// (GET /v1/audit_events). params may be nil.
func (s *AuditEventService) List(ctx context.Context, params *AuditEventListParams, opts ...RequestOption) (*Page[*AuditEvent], error) {
	return listPage[*AuditEvent](ctx, s.c, "/v1/audit_events", query(params), opts)
}

// All iterates over every audit event matching params, fetching pages as
// needed.
func (s *AuditEventService) All(ctx context.Context, params *AuditEventListParams, opts ...RequestOption) iter.Seq2[*AuditEvent, error] {
	return listAll[*AuditEvent](ctx, s.c, "/v1/audit_events", params, opts)
}

// TestHelperService simulates, in the test environment, what the
// platform's internal services do in live (admin:all; a live credential
// gets CodeTestModeOnly).
type TestHelperService struct{ c *Client }

// CreateFunding simulates a deposit (POST /v1/test_helpers/funding).
func (s *TestHelperService) CreateFunding(ctx context.Context, params *FundingCreateParams, opts ...RequestOption) (*Funding, error) {
	if params == nil {
		params = new(FundingCreateParams)
	}
	return send[Funding](ctx, s.c, http.MethodPost, "/v1/test_helpers/funding", params, opts)
}

// CompleteFunding completes a pending deposit, crediting the balance
// (POST /v1/test_helpers/funding/{id}/complete).
func (s *TestHelperService) CompleteFunding(ctx context.Context, id string, opts ...RequestOption) (*Funding, error) {
	return onID[Funding](ctx, s.c, http.MethodPost, "/v1/test_helpers/funding/%s/complete", id, nil, opts)
}

// CompleteRequest completes a request, as a payout would
// (POST /v1/test_helpers/requests/{id}/complete).
func (s *TestHelperService) CompleteRequest(ctx context.Context, id string, opts ...RequestOption) (*Request, error) {
	return onID[Request](ctx, s.c, http.MethodPost, "/v1/test_helpers/requests/%s/complete", id, nil, opts)
}

// FailRequest fails a request, returning its amount to the available
// balance (POST /v1/test_helpers/requests/{id}/fail).
func (s *TestHelperService) FailRequest(ctx context.Context, id string, opts ...RequestOption) (*Request, error) {
	return onID[Request](ctx, s.c, http.MethodPost, "/v1/test_helpers/requests/%s/fail", id, nil, opts)
}
