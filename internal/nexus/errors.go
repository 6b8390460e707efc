package nexus

import (
	"errors"
	"fmt"
	"strings"
)

// Code is an error code of the public contract (CONTRACT §4). The HTTP layer
// maps each code to its status and type in one table.
type Code string

const (
	CodeParameterMissing     Code = "parameter_missing"
	CodeParameterInvalid     Code = "parameter_invalid"
	CodeParameterUnknown     Code = "parameter_unknown"
	CodeBodyInvalidJSON      Code = "body_invalid_json"
	CodeAmbiguousCredentials Code = "ambiguous_credentials"
	CodeInvalidScopes        Code = "invalid_scopes"
	CodePolicyViolation      Code = "policy_violation"

	CodeMissingCredentials   Code = "missing_credentials"
	CodeMalformedCredentials Code = "malformed_credentials"
	CodeInvalidAPIKey        Code = "invalid_api_key"
	CodeAPIKeySuspended      Code = "api_key_suspended"
	CodeAPIKeyRevoked        Code = "api_key_revoked"
	CodeAPIKeyExpired        Code = "api_key_expired"
	CodeInvalidToken         Code = "invalid_token"
	CodeTokenExpired         Code = "token_expired"
	CodeTokenRevoked         Code = "token_revoked"
	CodeInvalidSignature     Code = "invalid_signature"

	CodePartnerNotApproved   Code = "partner_not_approved"
	CodeInsufficientScope    Code = "insufficient_scope"
	CodeIPNotAllowed         Code = "ip_not_allowed"
	CodeOriginNotAllowed     Code = "origin_not_allowed"
	CodeEnvironmentNotServed Code = "environment_not_served"
	CodeTestModeOnly         Code = "test_mode_only"

	CodeResourceMissing Code = "resource_missing"
	CodeRouteNotFound   Code = "route_not_found"

	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	CodeIdempotencyKeyInUse  Code = "idempotency_key_in_use"
	CodeAddressExists        Code = "address_exists"
	CodeInvalidState         Code = "invalid_state"

	CodeBodyTooLarge         Code = "body_too_large"
	CodeUnsupportedMediaType Code = "unsupported_media_type"

	CodeInsufficientFunds Code = "insufficient_funds"
	CodeAddressNotUsable  Code = "address_not_usable"
	CodeLimitExceeded     Code = "limit_exceeded"

	CodeRateLimited           Code = "rate_limited"
	CodeTooManyFailedAttempts Code = "too_many_failed_attempts"
	CodeInternalError         Code = "internal_error"
	CodeServiceUnavailable    Code = "service_unavailable"
)

// Error is an error the contract knows: a code, a message safe to show the
// caller, and the parameter at fault where there is exactly one.
type Error struct {
	Code    Code
	Message string
	Param   string
	// Scope is the missing scope of an insufficient_scope error, for the
	// WWW-Authenticate header.
	Scope string
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s: %s (param %s)", e.Code, e.Message, e.Param)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is lets errors.Is match on the code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Param == ""
}

// Errorf builds a contract error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ParamError builds a contract error about one parameter.
func ParamError(code Code, param, format string, args ...any) *Error {
	return &Error{Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is the one answer for anything the caller may not see,
// whether it does not exist or belongs to someone else.
var ErrNotFound = &Error{Code: CodeResourceMissing, Message: "no such object"}

// NotFound names the kind of object in the message without revealing more.
func NotFound(kind, id string) *Error {
	return &Error{Code: CodeResourceMissing, Message: fmt.Sprintf("no such %s: '%s'", kind, id)}
}

// InvalidState is a transition the object's status does not allow.
func InvalidState(kind, status, action string) *Error {
	kind = strings.ReplaceAll(kind, "_", " ") // "api_key" reads as "api key"
	article := "a"
	if strings.ContainsAny(kind[:1], "aeiou") {
		article = "an"
	}
	return &Error{Code: CodeInvalidState, Message: fmt.Sprintf("%s %s with status %s cannot be %s", article, kind, status, action)}
}

// CodeOf returns the contract code of err, or internal_error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternalError
}
