package nexus

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is an error answered by the Nexus API: the contract's error envelope
// ({"error": {...}}) together with the HTTP status. Every method of a Client
// returns a *Error for an answer that is not 2xx; use errors.As or IsCode to
// inspect it.
type Error struct {
	// Status is the HTTP status code of the answer.
	Status int `json:"-"`
	// Type is the error type (see the ErrorType constants).
	Type string `json:"type"`
	// Code is the contract's error code (see the Code constants).
	Code string `json:"code"`
	// Message is a human-readable explanation, safe to log.
	Message string `json:"message"`
	// Param names the parameter at fault, when exactly one is.
	Param string `json:"param,omitempty"`
	// RequestID is the request id (req_…) to quote to Nexus support.
	RequestID string `json:"request_id"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nexus: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Param != "" {
		b.WriteString(" (param " + e.Param + ")")
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// IsCode reports whether err is (or wraps) a *Error with the given contract
// code, for example IsCode(err, CodeInsufficientFunds).
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Error types (CONTRACT §4).
const (
	ErrorTypeInvalidRequest = "invalid_request_error"
	ErrorTypeAuthentication = "authentication_error"
	ErrorTypePermission     = "permission_error"
	ErrorTypeRateLimit      = "rate_limit_error"
	ErrorTypeAPI            = "api_error"
)

// Error codes of the public contract (CONTRACT §4). Compare them with IsCode.
const (
	// 400 invalid_request_error
	CodeParameterMissing     = "parameter_missing"
	CodeParameterInvalid     = "parameter_invalid"
	CodeParameterUnknown     = "parameter_unknown"
	CodeBodyInvalidJSON      = "body_invalid_json"
	CodeAmbiguousCredentials = "ambiguous_credentials"
	CodeInvalidScopes        = "invalid_scopes"
	CodePolicyViolation      = "policy_violation"

	// 401 authentication_error
	CodeMissingCredentials   = "missing_credentials"
	CodeMalformedCredentials = "malformed_credentials"
	CodeInvalidAPIKey        = "invalid_api_key"
	CodeAPIKeySuspended      = "api_key_suspended"
	CodeAPIKeyRevoked        = "api_key_revoked"
	CodeAPIKeyExpired        = "api_key_expired"
	CodeInvalidToken         = "invalid_token"
	CodeTokenExpired         = "token_expired"
	CodeTokenRevoked         = "token_revoked"

	// 403 permission_error
	CodePartnerNotApproved   = "partner_not_approved"
	CodeInsufficientScope    = "insufficient_scope"
	CodeIPNotAllowed         = "ip_not_allowed"
	CodeOriginNotAllowed     = "origin_not_allowed"
	CodeEnvironmentNotServed = "environment_not_served"
	CodeTestModeOnly         = "test_mode_only"

	// 404 invalid_request_error
	CodeResourceMissing = "resource_missing"
	CodeRouteNotFound   = "route_not_found"

	// 409 invalid_request_error
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	CodeIdempotencyKeyInUse  = "idempotency_key_in_use"
	CodeAddressExists        = "address_exists"
	CodeInvalidState         = "invalid_state"

	// 413 / 415 invalid_request_error
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"

	// 422 invalid_request_error
	CodeInsufficientFunds = "insufficient_funds"
	CodeAddressNotUsable  = "address_not_usable"
	CodeLimitExceeded     = "limit_exceeded"

	// 429 rate_limit_error
	CodeRateLimited           = "rate_limited"
	CodeTooManyFailedAttempts = "too_many_failed_attempts"

	// 500 / 503 api_error
	CodeInternalError      = "internal_error"
	CodeServiceUnavailable = "service_unavailable"
)

// decodeError builds the *Error of a non-2xx answer. A body that is not the
// contract's envelope (a proxy's HTML page, say) still gives a *Error with
// the status, a type guessed from it and the request id header.
func decodeError(status int, header http.Header, body []byte) *Error {
	var env struct {
		Error *Error `json:"error"`
	}
	e := &Error{}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		e = env.Error
	}
	e.Status = status
	if e.RequestID == "" {
		e.RequestID = header.Get("X-Request-Id")
	}
	if e.Type == "" {
		e.Type = typeForStatus(status)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

func typeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return ErrorTypeAuthentication
	case status == http.StatusForbidden:
		return ErrorTypePermission
	case status == http.StatusTooManyRequests:
		return ErrorTypeRateLimit
	case status >= 500:
		return ErrorTypeAPI
	}
	return ErrorTypeInvalidRequest
}
