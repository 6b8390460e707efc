package nexus

import (
	"strings"

	"golang.org/x/oauth2"
)

// OAuthConfig returns the golang.org/x/oauth2 configuration of a third-party
// app (an OAuth client registered with c.OAuthClients.Create) for the Nexus
// server at baseURL: authorization at /oauth/authorize, tokens at
// /oauth/token. A confidential client authenticates with HTTP Basic
// (client_secret_basic); a public client (empty clientSecret) sends its
// client_id only and must use PKCE.
//
// The code flow, with PKCE (S256):
//
//	conf := nexus.OAuthConfig(base, clientID, secret, redirectURL, "read:balances")
//	verifier, challenge := nexus.PKCE()
//	// keep verifier and state in the user's session, then redirect to:
//	authURL := conf.AuthCodeURL(state, challenge)
//	// on the callback, check state (and that iss equals the issuer, RFC 9207):
//	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
//	client := nexus.NewClientWithTokenSource(conf.TokenSource(ctx, tok), nexus.WithBaseURL(base))
//
// Nexus rotates refresh tokens on every use and treats a reused one as
// stolen: persist the newest token (the source's Token()) and never refresh
// the same token from two places.
func OAuthConfig(baseURL, clientID, clientSecret, redirectURL string, scopes ...string) *oauth2.Config {
	base := strings.TrimRight(baseURL, "/")
	style := oauth2.AuthStyleInHeader
	if clientSecret == "" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		RedirectURL:  redirectURL,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   base + "/oauth/authorize",
			TokenURL:  base + "/oauth/token",
			AuthStyle: style,
		},
	}
}

// PKCE returns a fresh PKCE code verifier (RFC 7636) and the option that
// sends its S256 challenge with oauth2.Config.AuthCodeURL. Keep the verifier
// until the callback and pass oauth2.VerifierOption(verifier) (or
// PKCEVerifier(verifier)) to oauth2.Config.Exchange.
func PKCE() (verifier string, challenge oauth2.AuthCodeOption) {
	verifier = oauth2.GenerateVerifier()
	return verifier, oauth2.S256ChallengeOption(verifier)
}

// PKCEVerifier is the option that sends verifier with
// oauth2.Config.Exchange; it is oauth2.VerifierOption.
func PKCEVerifier(verifier string) oauth2.AuthCodeOption {
	return oauth2.VerifierOption(verifier)
}
