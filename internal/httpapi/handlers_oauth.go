package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/ratelimit"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

const (
	sessionCookie = oauth.SessionCookie
	// csrfCookie holds a browser's pre-session id: the login form's CSRF
	// token is bound to it until there is a session.
	csrfCookie = "nexus_csrf"
)

// Purposes of CSRF tokens: a token is good for one form only.
const (
	csrfLogin   = "login"   // bound to the pre-session cookie
	csrfConsent = "consent" // bound to the session
	csrfLogout  = "logout"  // bound to the session
)

// scopeWords names each scope in plain words on the consent page.
var scopeWords = map[string]string{
	"read:balances":   "See your balances",
	"read:funding":    "See your deposits",
	"read:addresses":  "See your payout addresses",
	"write:addresses": "Add and archive payout addresses",
	"read:requests":   "See your withdrawal requests",
	"write:requests":  "Create and cancel withdrawal requests",
	"read:usage":      "See how many API requests you make",
}

type pageData struct {
	Title, Error, CSRF, ReturnTo, Email string
	ClientName, Environment             string
	Scopes                              []string
	Params                              map[string]string
	// PartnerName is the signed-in member's organisation, and LogoutCSRF
	// the token of the consent page's "Not you? Sign out" form.
	PartnerName, LogoutCSRF string
	// Next tells a person what to do after an error; Retry, when set, is
	// where to start again (an authorization request).
	Next, Retry string
}

// render writes an HTML page with the headers every page carries.
func (s *Server) render(c *fiber.Ctx, status int, name string, d pageData) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		return err
	}
	htmlHeaders(c)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).Send(buf.Bytes())
}

func htmlHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	c.Set("X-Frame-Options", "DENY")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderCacheControl, "no-store")
}

func (s *Server) secureCookies() bool { return strings.HasPrefix(s.cfg.Issuer, "https://") }

// csrfToken returns the login form's CSRF token, bound to the browser's
// pre-session cookie (set when new).
func (s *Server) csrfToken(c *fiber.Ctx) string {
	pre := c.Cookies(csrfCookie)
	if len(pre) < 32 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		pre = base64.RawURLEncoding.EncodeToString(b)
		c.Cookie(&fiber.Cookie{Name: csrfCookie, Value: pre, Path: "/", HTTPOnly: true, SameSite: "Lax", Secure: s.secureCookies()})
	}
	return s.csrfMAC(csrfLogin, pre)
}

// csrfMAC is the CSRF token of a form of purpose for a browser known by
// binding (see csrf.Signer.Token).
func (s *Server) csrfMAC(purpose, binding string) string { return s.csrf.Token(purpose, binding) }

// csrfOK checks a form's token in constant time against the one its
// purpose binds to: the pre-session cookie for login, the session for the
// others. A form without its cookie fails.
func (s *Server) csrfOK(c *fiber.Ctx, purpose string) bool {
	binding := c.Cookies(sessionCookie)
	if purpose == csrfLogin {
		binding = c.Cookies(csrfCookie)
	}
	return s.csrf.Valid(purpose, binding, c.FormValue("csrf_token"))
}

func (s *Server) session(c *fiber.Ctx) (*oauth.Session, error) {
	return s.cfg.OAuth.Session(c.UserContext(), c.Cookies(sessionCookie))
}

func queryValues(c *fiber.Ctx) url.Values {
	v, _ := url.ParseQuery(string(c.Context().QueryArgs().QueryString()))
	return v
}

func formValues(c *fiber.Ctx) url.Values {
	v, _ := url.ParseQuery(string(c.Body()))
	return v
}

// safeReturn keeps login's return_to on our own authorization endpoint or
// dashboard, so it cannot become an open redirect.
func safeReturn(r string) string {
	if strings.ContainsAny(r, "\\\r\n") {
		return ""
	}
	if strings.HasPrefix(r, "/oauth/authorize?") {
		return r
	}
	if (r == "/dashboard" || strings.HasPrefix(r, "/dashboard/") || strings.HasPrefix(r, "/dashboard?")) && !strings.Contains(r, "//") {
		return r
	}
	return ""
}

// askingApp names the app whose authorization request a sign-in returns
// to, for the login page to say who is asking ("" when ret is none or not
// a valid request).
func (s *Server) askingApp(c *fiber.Ctx, ret string) string {
	_, query, ok := strings.Cut(ret, "?")
	if !ok {
		return ""
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return ""
	}
	req, err := s.cfg.OAuth.ValidateAuthorize(c.UserContext(), q)
	if err != nil || req == nil {
		return ""
	}
	return req.Client.Name
}

// loginData is the login form's page data for a sign-in that returns to ret.
func (s *Server) loginData(c *fiber.Ctx, ret, errMsg, email string) pageData {
	return pageData{Title: "Sign in", CSRF: s.csrfToken(c), ReturnTo: ret, ClientName: s.askingApp(c, ret), Error: errMsg, Email: email}
}

func (s *Server) loginPage(c *fiber.Ctx) error {
	return s.render(c, 200, "login.html", s.loginData(c, safeReturn(c.Query("return_to")), "", ""))
}

func (s *Server) loginPost(c *fiber.Ctx) error {
	ret := safeReturn(c.FormValue("return_to"))
	if !s.csrfOK(c, csrfLogin) {
		return s.render(c, 403, "login.html", s.loginData(c, ret, "This form was open too long, or cookies are blocked for this site. Sign in again below.", ""))
	}
	email := c.FormValue("email")
	ip := s.cfg.Auth.ClientIP(&auth.Request{RemoteIP: remoteIP(c), XForwardedFor: forwardedFor(&c.Request().Header)}).String()
	ctx := c.UserContext()
	now := meta(c).Start
	// A slot of the address and one of the account are reserved before the
	// password is checked, so that concurrent guesses cannot outrun the
	// count. Both refusals read the same whether or not the email is a
	// member's: the account lockout counts unknown emails alike.
	lockedOut := func(reset time.Duration) error {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfter(ratelimit.Result{Reset: reset})))
		return s.render(c, 429, "login.html", s.loginData(c, ret, "Too many failed attempts. Wait a while, then try again.", email))
	}
	byIP, err := s.cfg.Lockout.Reserve(ctx, "fail:"+ip, s.cfg.FailedAuthLimit, time.Minute, now)
	var ref *ratelimit.Refusal
	if errors.As(err, &ref) {
		return lockedOut(ref.Reset)
	}
	byAccount, err := s.cfg.Lockout.Reserve(ctx, accountKey(email), s.cfg.AccountLimit, s.cfg.AccountWindow, now)
	if errors.As(err, &ref) {
		byIP.Done(ctx, false)
		return lockedOut(ref.Reset)
	}
	tok, err := s.cfg.OAuth.Login(ctx, email, c.FormValue("password"))
	if !errors.Is(err, oauth.ErrBusy) {
		s.metrics.passwords.Inc()
	}
	failed := errors.Is(err, oauth.ErrLoginFailed)
	byIP.Done(context.WithoutCancel(ctx), failed)
	byAccount.Done(context.WithoutCancel(ctx), failed)
	if errors.Is(err, oauth.ErrBusy) {
		// Every password-check slot is taken: not the caller's fault, and
		// not a failed attempt.
		c.Set(fiber.HeaderRetryAfter, "1")
		return s.render(c, 503, "login.html", s.loginData(c, ret, "Too many people are signing in right now. Try again in a moment.", email))
	}
	if failed {
		return s.render(c, 401, "login.html", s.loginData(c, ret, "The email or password is wrong. Check both and try again; if you forgot your password, ask your organisation's Nexus administrator.", email))
	}
	if err != nil {
		return err
	}
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: tok, Path: "/", HTTPOnly: true, SameSite: "Lax",
		Secure: s.secureCookies(), MaxAge: int(oauth.SessionTTL.Seconds())})
	if ret == "" {
		return s.render(c, 200, "done.html", pageData{Title: "Signed in", Error: "You are signed in. You can close this page.",
			CSRF: s.csrfMAC(csrfLogout, tok)})
	}
	return c.Redirect(ret, fiber.StatusSeeOther)
}

// logout ends the session and goes to return_to (the authorization request
// of the consent page's "Not you?", which then asks to sign in again) or to
// the sign-in page.
func (s *Server) logout(c *fiber.Ctx) error {
	next := safeReturn(c.FormValue("return_to"))
	if next == "" {
		next = "/login"
	}
	if c.Cookies(sessionCookie) == "" {
		return c.Redirect(next, fiber.StatusSeeOther) // nothing to end
	}
	if !s.csrfOK(c, csrfLogout) {
		return s.render(c, 403, "error.html", pageData{Title: "Sign out", Error: "You are still signed in: the sign-out could not be verified.",
			Next: "The page was probably open too long. Reload it and choose Sign out again."})
	}
	if err := s.cfg.OAuth.Logout(c.UserContext(), c.Cookies(sessionCookie)); err != nil {
		return err
	}
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: "", Path: "/", HTTPOnly: true, SameSite: "Lax", Secure: s.secureCookies(), MaxAge: -1})
	return c.Redirect(next, fiber.StatusSeeOther)
}

func (s *Server) authorizeGet(c *fiber.Ctx) error { return s.authorize(c, queryValues(c), false) }

func (s *Server) authorizePost(c *fiber.Ctx) error { return s.authorize(c, formValues(c), true) }

// authorize implements rfc6749#section-4.1.1 with login and consent.
func (s *Server) authorize(c *fiber.Ctx, q url.Values, post bool) error {
	ctx := c.UserContext()
	req, err := s.cfg.OAuth.ValidateAuthorize(ctx, q)
	var fatal *oauth.FatalError
	var oe *oauth.Error
	switch {
	case errors.As(err, &fatal):
		return s.render(c, 400, "error.html", pageData{Title: "Authorization failed", Error: fatal.Description,
			Next: "Nothing was shared. Go back to the application and start again; if this page comes back, tell the application's developer what it says."})
	case errors.As(err, &oe):
		return s.redirectBack(c, req, url.Values{"error": {oe.Code}, "error_description": {oe.Description}})
	case err != nil:
		return err
	}
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	params := map[string]string{}
	back := url.Values{}
	for k := range q {
		if k != "csrf_token" && k != "decision" {
			params[k] = q.Get(k)
			back.Set(k, q.Get(k))
		}
	}
	// self is this authorization request, to come back to after signing in.
	self := "/oauth/authorize?" + back.Encode()
	if sess == nil {
		return s.render(c, 200, "login.html", pageData{Title: "Sign in", CSRF: s.csrfToken(c), ReturnTo: self, ClientName: req.Client.Name})
	}
	if !post {
		p, err := s.cfg.Partners.Get(ctx, sess.PartnerID)
		if err != nil {
			return err
		}
		words := make([]string, 0, 6)
		for _, n := range req.Scopes.Names() {
			words = append(words, scopeWords[n])
		}
		tok := c.Cookies(sessionCookie)
		return s.render(c, 200, "consent.html", pageData{Title: "Authorize " + req.Client.Name, CSRF: s.csrfMAC(csrfConsent, tok),
			ClientName: req.Client.Name, Environment: string(req.Client.Environment), Scopes: words, Params: params,
			Email: sess.Email, PartnerName: p.Name, LogoutCSRF: s.csrfMAC(csrfLogout, tok), ReturnTo: self})
	}
	if !s.csrfOK(c, csrfConsent) {
		return s.render(c, 403, "error.html", pageData{Title: "Authorization failed", Error: "Your answer could not be verified, so nothing was shared.",
			Next: "The page was open too long, or you signed in again in another tab. Review the request again below.", Retry: self})
	}
	if c.FormValue("decision") != "approve" {
		return s.redirectBack(c, req, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
	}
	p, err := s.cfg.Partners.Get(ctx, sess.PartnerID)
	if err != nil {
		return err
	}
	code, err := s.cfg.OAuth.Approve(ctx, sess, req, p.Status)
	if errors.As(err, &oe) {
		return s.redirectBack(c, req, url.Values{"error": {oe.Code}, "error_description": {oe.Description}})
	}
	if err != nil {
		return err
	}
	return s.redirectBack(c, req, url.Values{"code": {code}})
}

// redirectBack sends the user agent to the verified redirect URI with
// state and the issuer (RFC 9207).
func (s *Server) redirectBack(c *fiber.Ctx, req *oauth.AuthorizeRequest, v url.Values) error {
	u, err := url.Parse(req.RedirectURI)
	if err != nil {
		return err
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	status := fiber.StatusFound
	if c.Method() == fiber.MethodPost {
		status = fiber.StatusSeeOther
	}
	htmlHeaders(c)
	return c.Redirect(u.String(), status)
}

// oauthError answers in the RFC 6749 §5.2 form.
func oauthError(c *fiber.Ctx, e *oauth.Error, basic bool) error {
	if e.Code == "invalid_client" && basic {
		c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="nexus"`)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("Pragma", "no-cache")
	return c.Status(e.Status).JSON(fiber.Map{"error": e.Code, "error_description": e.Description})
}

// clientAuth reads client credentials (rfc6749#section-2.3.1): HTTP Basic
// or the form, never both.
func clientAuth(c *fiber.Ctx, form url.Values) (oauth.ClientAuth, *oauth.Error) {
	var a oauth.ClientAuth
	if h := c.Get(fiber.HeaderAuthorization); strings.HasPrefix(strings.ToLower(h), "basic ") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
		id, secret, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			return a, &oauth.Error{Code: "invalid_client", Description: "malformed Basic credentials", Status: 401}
		}
		a.ID, _ = url.QueryUnescape(id)
		a.Secret, _ = url.QueryUnescape(secret)
		a.Basic = true
		if form.Get("client_secret") != "" {
			return a, &oauth.Error{Code: "invalid_request", Description: "use one client authentication method", Status: 400}
		}
		return a, nil
	}
	a.ID, a.Secret = form.Get("client_id"), form.Get("client_secret")
	return a, nil
}

func isForm(c *fiber.Ctx) bool {
	mt, _, _ := strings.Cut(strings.ToLower(string(c.Request().Header.ContentType())), ";")
	return strings.TrimSpace(mt) == fiber.MIMEApplicationForm
}

// token implements rfc6749#section-3.2.
func (s *Server) token(c *fiber.Ctx) error {
	if !isForm(c) {
		return oauthError(c, &oauth.Error{Code: "invalid_request", Description: "send application/x-www-form-urlencoded", Status: 400}, false)
	}
	form := formValues(c)
	a, oe := clientAuth(c, form)
	if oe != nil {
		return oauthError(c, oe, a.Basic)
	}
	ctx := c.UserContext()
	client, err := s.cfg.OAuth.AuthenticateClient(ctx, a)
	if errors.As(err, &oe) {
		return oauthError(c, oe, a.Basic)
	}
	if err != nil {
		return err
	}
	var resp *oauth.TokenResponse
	switch form.Get("grant_type") {
	case "authorization_code":
		resp, err = s.cfg.OAuth.ExchangeCode(ctx, client, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"))
	case "refresh_token":
		resp, err = s.cfg.OAuth.Refresh(ctx, client, form.Get("refresh_token"), form.Get("scope"))
	case "":
		err = &oauth.Error{Code: "invalid_request", Description: "grant_type is required", Status: 400}
	default:
		err = &oauth.Error{Code: "unsupported_grant_type", Description: "use authorization_code or refresh_token", Status: 400}
	}
	if errors.As(err, &oe) {
		return oauthError(c, oe, a.Basic)
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("Pragma", "no-cache")
	return c.JSON(resp)
}

// revoke implements rfc7009#section-2.
func (s *Server) revoke(c *fiber.Ctx) error {
	if !isForm(c) {
		return oauthError(c, &oauth.Error{Code: "invalid_request", Description: "send application/x-www-form-urlencoded", Status: 400}, false)
	}
	form := formValues(c)
	a, oe := clientAuth(c, form)
	if oe != nil {
		return oauthError(c, oe, a.Basic)
	}
	client, err := s.cfg.OAuth.AuthenticateClient(c.UserContext(), a)
	if errors.As(err, &oe) {
		return oauthError(c, oe, a.Basic)
	}
	if err != nil {
		return err
	}
	if form.Get("token") == "" {
		return oauthError(c, &oauth.Error{Code: "invalid_request", Description: "token is required", Status: 400}, false)
	}
	if err := s.cfg.OAuth.Revoke(c.UserContext(), client, form.Get("token")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusOK)
}

// introspect implements rfc7662#section-2 for the owning client (client
// authentication) or a platform service (Bearer service token).
func (s *Server) introspect(c *fiber.Ctx) error {
	if !isForm(c) {
		return oauthError(c, &oauth.Error{Code: "invalid_request", Description: "send application/x-www-form-urlencoded", Status: 400}, false)
	}
	form := formValues(c)
	ctx := c.UserContext()
	owner := ""
	if h := c.Get(fiber.HeaderAuthorization); strings.HasPrefix(strings.ToLower(h), "bearer ") {
		p, err := s.cfg.Auth.Authenticate(ctx, &auth.Request{Authorization: h, RemoteIP: remoteIP(c)})
		if err != nil || p.CredentialType != nexus.CredentialInternalService {
			return oauthError(c, &oauth.Error{Code: "invalid_client", Description: "introspection needs the owning client's credentials or a platform service token", Status: 401}, false)
		}
	} else {
		a, oe := clientAuth(c, form)
		if oe != nil {
			return oauthError(c, oe, a.Basic)
		}
		client, err := s.cfg.OAuth.AuthenticateClient(ctx, a)
		if errors.As(err, &oe) {
			return oauthError(c, oe, a.Basic)
		}
		if err != nil {
			return err
		}
		owner = client.ID
	}
	res, err := s.cfg.OAuth.Introspect(ctx, form.Get("token"), owner)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(res)
}

// metadata implements rfc8414#section-2.
func (s *Server) metadata(c *fiber.Ctx) error {
	iss := s.cfg.Issuer
	return c.JSON(fiber.Map{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/oauth/authorize",
		"token_endpoint":                                 iss + "/oauth/token",
		"revocation_endpoint":                            iss + "/oauth/revoke",
		"introspection_endpoint":                         iss + "/oauth/introspect",
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":     []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                               (nexus.ReadScopes | nexus.WriteScopes).Names(),
		"authorization_response_iss_parameter_supported": true,
		"service_documentation":                          iss + "/openapi.yaml",
	})
}
