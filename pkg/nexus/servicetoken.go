// Service tokens: the short-lived JWTs a partner's microservices (and the
// platform's internal services) authenticate with.

package nexus

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ServiceTokenParams describe a partner service token.
type ServiceTokenParams struct {
	// CredentialID is the service credential's id (sc_…): kid and iss.
	CredentialID string
	// Secret is the HS256 signing secret (nx_<env>_ss_…) for HS256
	// credentials. Set either Secret or PrivateKey.
	Secret string
	// PrivateKey signs ES256 (*ecdsa.PrivateKey, P-256) or EdDSA
	// (ed25519.PrivateKey) credentials.
	PrivateKey crypto.Signer
	// Audience. Optional. Default: "nexus-api".
	Audience string
	// Service names the calling service in the audit log. Optional.
	Service string
	// Permissions narrow the credential's scopes. Optional.
	Permissions []string
	// Lifetime. Optional. Default: 5 minutes. At most 1 hour.
	Lifetime time.Duration
}

// MintServiceToken signs a partner service token.
func MintServiceToken(p ServiceTokenParams) (string, error) {
	if p.CredentialID == "" {
		return "", errors.New("nexus: CredentialID is required")
	}
	if p.Audience == "" {
		p.Audience = "nexus-api"
	}
	claims := baseClaims(p.CredentialID, p.Audience, p.Lifetime)
	if p.Service != "" {
		claims["service"] = p.Service
	}
	if len(p.Permissions) > 0 {
		claims["permissions"] = p.Permissions
	}
	if p.Secret != "" {
		return sign(jwt.SigningMethodHS256, p.CredentialID, claims, []byte(p.Secret))
	}
	return signWith(p.PrivateKey, p.CredentialID, claims)
}

// PlatformTokenParams describe a platform (internal) service token.
type PlatformTokenParams struct {
	ServiceID   string        // svc_…: kid and iss
	PrivateKey  crypto.Signer // Ed25519, P-256 or RSA
	Partner     string        // sub: the partner acted for (ptr_…)
	Environment string        // env: live or test
	Audience    string        // Optional. Default: "nexus-internal".
	Permissions []string      // Optional: narrows the service's permissions.
	Lifetime    time.Duration // Optional. Default: 5 minutes. At most 15 minutes.
}

// MintPlatformToken signs a token for /internal/v1/*.
func MintPlatformToken(p PlatformTokenParams) (string, error) {
	if p.ServiceID == "" || p.Partner == "" || p.Environment == "" {
		return "", errors.New("nexus: ServiceID, Partner and Environment are required")
	}
	if p.Audience == "" {
		p.Audience = "nexus-internal"
	}
	claims := baseClaims(p.ServiceID, p.Audience, p.Lifetime)
	claims["sub"] = p.Partner
	claims["env"] = p.Environment
	if len(p.Permissions) > 0 {
		claims["permissions"] = p.Permissions
	}
	return signWith(p.PrivateKey, p.ServiceID, claims)
}

func baseClaims(id, aud string, life time.Duration) jwt.MapClaims {
	if life <= 0 {
		life = 5 * time.Minute
	}
	now := time.Now()
	return jwt.MapClaims{
		"iss": id, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(life).Unix(),
	}
}

func signWith(key crypto.Signer, kid string, claims jwt.MapClaims) (string, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return sign(jwt.SigningMethodEdDSA, kid, claims, k)
	case *ecdsa.PrivateKey:
		return sign(jwt.SigningMethodES256, kid, claims, k)
	case *rsa.PrivateKey:
		return sign(jwt.SigningMethodRS256, kid, claims, k)
	case nil:
		return "", errors.New("nexus: set Secret (HS256) or PrivateKey (ES256, EdDSA)")
	}
	return "", errors.New("nexus: unsupported private key type")
}

func sign(m jwt.SigningMethod, kid string, claims jwt.MapClaims, key any) (string, error) {
	t := jwt.NewWithClaims(m, claims)
	t.Header["kid"] = kid
	return t.SignedString(key)
}
