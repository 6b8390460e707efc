package httpapi

// The contract test of the route table: every route has a protection
// decision, every route is in openapi/openapi.yaml with that decision as its
// x-nexus-scope (and every documented operation is a route), the document's
// error codes are exactly the codes the error renderer knows, and the server
// really enforces what the document says. Adding a route without documenting
// it fails here.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"go.yaml.in/yaml/v3"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/auth"
	"github.com/nexus-fintech/nexus/internal/idempotency"
	"github.com/nexus-fintech/nexus/internal/ledger"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/oauth"
	"github.com/nexus-fintech/nexus/internal/partner"
	"github.com/nexus-fintech/nexus/internal/ratelimit"
	"github.com/nexus-fintech/nexus/internal/servicetoken"
	"github.com/nexus-fintech/nexus/internal/store"
	"github.com/nexus-fintech/nexus/openapi"
)

// infraRoutes are served by New outside the route table; they need no
// credential and are documented with x-nexus-scope "public".
// testMetricsToken opens /metrics in newTestEnv's server.
const testMetricsToken = "unit-metrics-token-0123456789"

var infraRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml"}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type testEnv struct {
	srv      *Server
	db       *store.DB
	partners *partner.Service
	keys     *apikey.Service
}

func newTestEnv(t *testing.T, opts ...func(*Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/t.db")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return newTestEnvOn(t, db, opts...)
}

// newTestEnvOn is newTestEnv on db (migrated here).
func newTestEnvOn(t *testing.T, db *store.DB, opts ...func(*Config)) *testEnv {
	t.Helper()
	if _, err := db.MigrateUp(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	partners := partner.NewService(db)
	keys := apikey.NewService(db)
	cfg := Config{
		DB:            db,
		Auth:          auth.New(auth.Config{Keys: auth.NewKeyStore(keys, partners)}),
		Keys:          keys,
		Partners:      partners,
		Ledger:        ledger.NewService(db),
		Idempotency:   idempotency.New(db),
		ServiceTokens: servicetoken.NewService(db, nil),
		OAuth:         oauth.NewService(db),
		Issuer:        "http://nexus.test",
		Limiter:       ratelimit.New(ratelimit.Config{}),
		AccessLog:     audit.NewAccessLog(db, 100, slog.New(slog.NewTextHandler(io.Discard, nil))),
		Audit:         audit.NewReader(db),
		OpenAPI:       openapi.Document,
		MetricsToken:  testMetricsToken,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := New(cfg)
	return &testEnv{srv: srv, db: db, partners: partners, keys: keys}
}

// --- the document -----------------------------------------------------------

type oasDoc struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Security   []map[string][]string           `yaml:"security"`
	Components struct {
		Parameters      map[string]oasParam          `yaml:"parameters"`
		Responses       map[string]oasResponse       `yaml:"responses"`
		Schemas         map[string]*oasSchema        `yaml:"schemas"`
		SecuritySchemes map[string]oasSecurityScheme `yaml:"securitySchemes"`
	} `yaml:"components"`
}

// oasSecurityScheme is a security scheme: most are a few strings, the
// oauth2 one has its flows.
type oasSecurityScheme struct {
	Type  string `yaml:"type"`
	Flows map[string]struct {
		AuthorizationURL string            `yaml:"authorizationUrl"`
		TokenURL         string            `yaml:"tokenUrl"`
		Scopes           map[string]string `yaml:"scopes"`
	} `yaml:"flows"`
}

type oasOperation struct {
	OperationID string                 `yaml:"operationId"`
	Scope       string                 `yaml:"x-nexus-scope"`
	Security    *[]map[string][]string `yaml:"security"`
	Parameters  []oasParam             `yaml:"parameters"`
	Responses   map[string]oasResponse `yaml:"responses"`
}

type oasParam struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

type oasResponse struct {
	Ref     string         `yaml:"$ref"`
	Headers map[string]any `yaml:"headers"`
}

type oasSchema struct {
	Ref        string                `yaml:"$ref"`
	Enum       []string              `yaml:"enum"`
	Properties map[string]*oasSchema `yaml:"properties"`
}

// op is one documented operation.
type op struct {
	key        string // "GET /v1/api_keys/{id}"
	path       string
	operation  oasOperation
	pathParams []oasParam // parameters declared on the path item
}

func loadDoc(t *testing.T) (*oasDoc, map[string]op) {
	t.Helper()
	var doc oasDoc
	if err := yaml.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	ops := make(map[string]op)
	for path, item := range doc.Paths {
		var shared []oasParam
		if n, ok := item["parameters"]; ok {
			if err := n.Decode(&shared); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		for name, n := range item {
			if !slices.Contains(httpMethods, name) {
				continue
			}
			var o oasOperation
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s %s: %v", name, path, err)
			}
			key := strings.ToUpper(name) + " " + path
			ops[key] = op{key: key, path: path, operation: o, pathParams: shared}
		}
	}
	if len(ops) == 0 {
		t.Fatal("openapi.yaml documents no operation")
	}
	return &doc, ops
}

var fiberParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// oasPath turns a Fiber path into the document's form: /v1/x/:id -> /v1/x/{id},
// /v1/* -> /v1/{path}.
func oasPath(p string) string {
	return strings.Replace(fiberParam.ReplaceAllString(p, "{$1}"), "/*", "/{path}", 1)
}

// compareRoutes lists every disagreement between the route table (plus the
// infrastructure endpoints) and the documented operations.
func compareRoutes(routes []Route, ops map[string]op) []string {
	var problems []string
	want := make(map[string]string) // "METHOD /path" -> x-nexus-scope
	for _, r := range routes {
		want[r.Method+" "+oasPath(r.Path)] = r.Access.String()
	}
	for _, k := range infraRoutes {
		want[k] = Public.String()
	}
	for k, scope := range want {
		o, ok := ops[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is a route but is not documented in openapi/openapi.yaml", k))
		case o.operation.Scope != scope:
			problems = append(problems, fmt.Sprintf("%s: x-nexus-scope is %q, the route table says %q", k, o.operation.Scope, scope))
		}
	}
	for k := range ops {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("%s is documented in openapi/openapi.yaml but is not a route", k))
		}
	}
	sort.Strings(problems)
	return problems
}

// --- tests --------------------------------------------------------------------

func TestRouteTableDecided(t *testing.T) {
	env := newTestEnv(t)
	seen := make(map[string]bool)
	for _, r := range env.srv.Routes() {
		k := r.Method + " " + r.Path
		if a := r.Access.String(); a == "undecided" || a == "" {
			t.Errorf("%s: no access decision (use Public, Authenticated or Need(scope))", k)
		}
		if r.Handler == nil {
			t.Errorf("%s: nil handler", k)
		}
		if !slices.Contains(httpMethods, strings.ToLower(r.Method)) || r.Method != strings.ToUpper(r.Method) {
			t.Errorf("%s: method must be an upper-case HTTP method", k)
		}
		if !strings.HasPrefix(r.Path, "/") {
			t.Errorf("%s: path must start with /", k)
		}
		if seen[k] {
			t.Errorf("%s: listed twice", k)
		}
		seen[k] = true
	}
	if len(seen) == 0 {
		t.Fatal("empty route table")
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	env := newTestEnv(t)
	_, ops := loadDoc(t)
	for _, p := range compareRoutes(env.srv.Routes(), ops) {
		t.Error(p)
	}
}

// TestOpenAPICheckCatchesDrift proves the comparison fails for an
// undocumented route, a wrong scope and an operation without a route.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	env := newTestEnv(t)
	_, ops := loadDoc(t)
	routes := env.srv.Routes()
	noop := func(*fiber.Ctx) error { return nil }
	routes = append(routes, Route{Method: "POST", Path: "/v1/widgets/:id/frob", Access: Need(nexus.ScopeAdminAll), Handler: noop})
	for i := range routes {
		if routes[i].Method == "GET" && routes[i].Path == "/v1/partner" {
			routes[i].Access = Need(nexus.ScopeReadBalances)
		}
	}
	ops["DELETE /v1/ghosts/{id}"] = op{key: "DELETE /v1/ghosts/{id}", operation: oasOperation{Scope: "admin:all"}}
	got := strings.Join(compareRoutes(routes, ops), "\n")
	for _, want := range []string{
		"POST /v1/widgets/{id}/frob is a route but is not documented",
		`GET /v1/partner: x-nexus-scope is "authenticated", the route table says "read:balances"`,
		"DELETE /v1/ghosts/{id} is documented in openapi/openapi.yaml but is not a route",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("drift not reported: %q\ngot:\n%s", want, got)
		}
	}
}

// TestOpenAPIOperations checks what every operation must say: an
// operationId, its security (none for public ones), the 401/403 answers a
// guarded route can give, its path parameters, Idempotency-Key on
// authenticated POSTs, and X-Request-Id on every response.
func TestOpenAPIOperations(t *testing.T) {
	doc, ops := loadDoc(t)
	for _, scheme := range []string{"bearerAuth", "apiKeyHeader", "partnerApiKeyHeader", "apiKeyAuthorization"} {
		if _, ok := doc.Components.SecuritySchemes[scheme]; !ok {
			t.Errorf("security scheme %s missing", scheme)
		}
		if !slices.ContainsFunc(doc.Security, func(m map[string][]string) bool { _, ok := m[scheme]; return ok }) {
			t.Errorf("global security does not offer %s", scheme)
		}
	}
	// The oauth2 scheme offers apps exactly the scopes a grant can hold
	// (every read: and write: scope, never admin:all), at the endpoints the
	// route table serves.
	if o, ok := doc.Components.SecuritySchemes["oauth2"]; !ok || o.Type != "oauth2" {
		t.Errorf("security scheme oauth2 missing or of type %q", o.Type)
	} else if f, ok := o.Flows["authorizationCode"]; !ok {
		t.Error("security scheme oauth2 has no authorizationCode flow")
	} else {
		want := (nexus.ReadScopes | nexus.WriteScopes).Names()
		got := slices.Sorted(maps.Keys(f.Scopes))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("oauth2 scopes = %v, want %v", got, want)
		}
		if f.AuthorizationURL != "/oauth/authorize" || f.TokenURL != "/oauth/token" {
			t.Errorf("oauth2 endpoints = %s, %s; want /oauth/authorize, /oauth/token", f.AuthorizationURL, f.TokenURL)
		}
	}
	resolveParam := func(p oasParam) oasParam {
		if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
			rp, found := doc.Components.Parameters[name]
			if !found {
				t.Errorf("dangling $ref %s", p.Ref)
			}
			return rp
		}
		return p
	}
	ids := make(map[string]string)
	for _, k := range sortedOps(ops) {
		o := ops[k]
		oper := o.operation
		if oper.OperationID == "" {
			t.Errorf("%s: no operationId", k)
		} else if prev, dup := ids[oper.OperationID]; dup {
			t.Errorf("%s: operationId %s already used by %s", k, oper.OperationID, prev)
		}
		ids[oper.OperationID] = k
		public := oper.Scope == Public.String()
		if public && (oper.Security == nil || len(*oper.Security) != 0) {
			t.Errorf("%s: public operation must declare security: []", k)
		}
		if !public {
			if oper.Security != nil {
				t.Errorf("%s: guarded operation should use the global security", k)
			}
			if _, ok := oper.Responses["401"]; !ok {
				t.Errorf("%s: guarded operation does not document 401", k)
			}
			if _, ok := oper.Responses["403"]; !ok {
				t.Errorf("%s: guarded operation does not document 403", k)
			}
		}
		// Path parameters.
		declared := make(map[string]bool)
		var idem bool
		for _, p := range append(slices.Clone(o.pathParams), oper.Parameters...) {
			p = resolveParam(p)
			if p.In == "path" {
				declared[p.Name] = true
				if !p.Required {
					t.Errorf("%s: path parameter %s must be required", k, p.Name)
				}
			}
			if p.In == "header" && p.Name == "Idempotency-Key" {
				idem = true
			}
		}
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(o.path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %s is not declared", k, m[1])
			}
		}
		if strings.HasPrefix(k, "POST ") && !public && !idem {
			t.Errorf("%s: POST does not document the Idempotency-Key header", k)
		}
		// Every response carries X-Request-Id.
		if len(oper.Responses) == 0 {
			t.Errorf("%s: no responses", k)
		}
		for status, r := range oper.Responses {
			if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
				rr, found := doc.Components.Responses[name]
				if !found {
					t.Errorf("%s %s: dangling $ref %s", k, status, r.Ref)
				}
				r = rr
			}
			if _, ok := r.Headers["X-Request-Id"]; !ok {
				t.Errorf("%s %s: response does not document X-Request-Id", k, status)
			}
			if status == "401" {
				if _, ok := r.Headers["WWW-Authenticate"]; !ok {
					t.Errorf("%s 401: response does not document WWW-Authenticate", k)
				}
			}
		}
	}
}

// TestOpenAPIErrorCodes checks that the Error schema's code enum is exactly
// the set of codes the renderer maps to statuses, and its type enum exactly
// the types those statuses give.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc, _ := loadDoc(t)
	resolve := func(s *oasSchema) *oasSchema {
		for s != nil && s.Ref != "" {
			name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
			if !ok {
				t.Fatalf("unsupported $ref %s", s.Ref)
			}
			s = doc.Components.Schemas[name]
		}
		return s
	}
	field := func(path ...string) *oasSchema {
		s := resolve(doc.Components.Schemas["Error"])
		for _, p := range path {
			if s == nil {
				break
			}
			s = resolve(s.Properties[p])
		}
		if s == nil {
			t.Fatalf("components.schemas.Error.properties.%s is missing", strings.Join(path, ".properties."))
		}
		return s
	}

	var want, wantTypes []string
	for c, status := range codeStatus {
		want = append(want, string(c))
		if ty := errorType(status); !slices.Contains(wantTypes, ty) {
			wantTypes = append(wantTypes, ty)
		}
	}
	sameSet(t, "Error.error.code enum", field("error", "code").Enum, want)
	sameSet(t, "Error.error.type enum", field("error", "type").Enum, wantTypes)
}

func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := make(map[string]bool), make(map[string]bool)
	for _, s := range got {
		if g[s] {
			t.Errorf("%s: %q listed twice", what, s)
		}
		g[s] = true
	}
	for _, s := range want {
		w[s] = true
		if !g[s] {
			t.Errorf("%s: %q is missing from openapi.yaml", what, s)
		}
	}
	for s := range g {
		if !w[s] {
			t.Errorf("%s: %q is documented but the server does not know it", what, s)
		}
	}
}

// TestRoutesEnforceDocumentedAccess calls every route: without a credential
// every guarded route answers 401 missing_credentials, and with a
// credential lacking the documented scope 403 insufficient_scope; the
// public endpoints answer without a credential. Every answer carries
// X-Request-Id.
func TestRoutesEnforceDocumentedAccess(t *testing.T) {
	env := newTestEnv(t)
	_, ops := loadDoc(t)
	ctx := context.Background()
	p, err := env.partners.Create(ctx, partner.CreateParams{Name: "routes test", Status: nexus.PartnerApproved})
	if err != nil {
		t.Fatal(err)
	}
	tn := nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}
	// Two restricted keys: between them, each lacks every scope but one.
	newKey := func(scope string) string {
		k, err := env.keys.Create(ctx, tn, apikey.CreateParams{Scopes: []string{scope}})
		if err != nil {
			t.Fatal(err)
		}
		return k.Plain
	}
	keyA, keyB := newKey("read:funding"), newKey("read:balances")

	do := func(method, path, key string) *http.Response {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := env.srv.App().Test(req, 10000)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		t.Cleanup(func() { _ = res.Body.Close() })
		if res.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", method, path)
		}
		return res
	}
	code := func(res *http.Response) string {
		b, _ := io.ReadAll(res.Body)
		m := regexp.MustCompile(`"code":"([a-z_]+)"`).FindSubmatch(b)
		if m == nil {
			return ""
		}
		return string(m[1])
	}

	for _, r := range env.srv.Routes() {
		k := r.Method + " " + oasPath(r.Path)
		path := fiberParam.ReplaceAllString(r.Path, "x_routes_test")
		documented := ops[k].operation.Scope
		if r.Access.kind == public {
			// A public route takes no credential; the one signed instead
			// (secret scanning) refuses an unsigned request as such.
			if res := do(r.Method, path, ""); res.StatusCode == 401 && code(res) != string(nexus.CodeInvalidSignature) {
				t.Errorf("%s: public route answered 401", k)
			}
			continue
		}
		res := do(r.Method, path, "")
		if c := code(res); res.StatusCode != 401 || c != string(nexus.CodeMissingCredentials) {
			t.Errorf("%s without credential: %d %s, want 401 missing_credentials", k, res.StatusCode, c)
		}
		if got := res.Header.Get("WWW-Authenticate"); got != `Bearer realm="nexus"` {
			t.Errorf("%s without credential: WWW-Authenticate %q", k, got)
		}
		if r.Access.kind != scoped {
			continue
		}
		key := keyA
		if r.Access.scope == nexus.ScopeReadFunding {
			key = keyB
		}
		res = do(r.Method, path, key)
		if c := code(res); res.StatusCode != 403 || c != string(nexus.CodeInsufficientScope) {
			t.Errorf("%s (x-nexus-scope %s) with a key lacking it: %d %s, want 403 insufficient_scope", k, documented, res.StatusCode, c)
		}
		want := fmt.Sprintf(`Bearer realm="nexus", error="insufficient_scope", scope="%s"`, r.Access.String())
		if got := res.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", k, got, want)
		}
	}

	for _, k := range infraRoutes {
		method, path, _ := strings.Cut(k, " ")
		key := ""
		if path == "/metrics" {
			key = testMetricsToken // the operator's token, not a partner's credential
		}
		res := do(method, path, key)
		if res.StatusCode != 200 {
			t.Errorf("%s: %d, want 200 without a partner's credential", k, res.StatusCode)
		}
		if path == "/openapi.yaml" {
			b, _ := io.ReadAll(res.Body)
			if string(b) != string(openapi.Document) {
				t.Errorf("/openapi.yaml does not serve the embedded document")
			}
		}
	}
}

func sortedOps(ops map[string]op) []string {
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
