// Package nexus is the Go client of the Nexus partner API: balances,
// deposits, payout addresses and withdrawal requests, and the credentials
// that reach them (API keys, service credentials, OAuth apps and grants).
//
// # Creating a client
//
// A Client needs the base URL of the Nexus it talks to and a credential:
//
//	c := nexus.NewClient(os.Getenv("NEXUS_API_KEY"),
//		nexus.WithBaseURL("https://nexus.example.com"))
//
// There is no default base URL: a client without WithBaseURL fails every
// call with ErrBaseURL and sends nothing, so a credential never goes to a
// server nobody chose. The credential is an API key (nx_live_sk_…,
// nx_test_sk_…), an OAuth access token or a service JWT; for tokens that
// expire, use NewClientWithTokenSource (OAuthConfig makes the
// golang.org/x/oauth2 configuration of an app, MintServiceToken signs
// service JWTs).
//
// # Calls
//
// The Client's fields group the endpoints by resource, each call taking a
// context and a params struct:
//
//	b, err := c.Balances.List(ctx)
//	req, err := c.Requests.Create(ctx, &nexus.RequestCreateParams{…})
//	for r, err := range c.Requests.All(ctx, nil) { … } // every page
//
// # Timeouts, retries and idempotency
//
// Each attempt of a call is bounded by DefaultTimeout (30 s; WithTimeout
// changes it) and the whole call by its context. A call is retried (3
// times by default, WithMaxRetries) on 429, 500, 502, 503, 504 and network
// errors, with exponential backoff and full jitter, honouring Retry-After.
// Retrying is safe: every POST carries an Idempotency-Key, generated once
// per call and sent again on its retries (WithIdempotencyKey sets your own,
// to make a later retry of the same operation safe too).
//
// # Errors
//
// An answer that is not 2xx is an *Error with the HTTP status, the error
// type and code of the API (CodeInsufficientFunds, …), a message and the
// request id to quote to support; IsCode tests the code:
//
//	if nexus.IsCode(err, nexus.CodeInsufficientFunds) { … }
package nexus
