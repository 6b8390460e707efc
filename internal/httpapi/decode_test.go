package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

type decodeInner struct {
	Label string `json:"label" validate:"required,max=10"`
}

type decodeEmbedded struct {
	Cursor string `json:"cursor" validate:"omitempty,max=8"`
}

// decodeParams exercises the rules the API's bodies use.
type decodeParams struct {
	decodeEmbedded
	Name       string            `json:"name" validate:"required,max=20"`
	Count      *int              `json:"count" validate:"omitempty,min=1,max=10"`
	Enabled    bool              `json:"enabled"`
	Kind       string            `json:"kind" validate:"omitempty,oneof=secret publishable"`
	AllowedIPs []string          `json:"allowed_ips" validate:"omitempty,max=3,dive,ip"`
	Tags       []string          `json:"tags" validate:"omitempty,dive,min=1,max=5"`
	When       *time.Time        `json:"when"`
	Meta       map[string]string `json:"meta" validate:"omitempty,max=2"`
	Inner      *decodeInner      `json:"inner"`
	Items      []decodeInner     `json:"items" validate:"omitempty,dive"`
	Ignored    string            `json:"-"`
}

type errEnvelope struct {
	Error struct {
		Type      string     `json:"type"`
		Code      nexus.Code `json:"code"`
		Message   string     `json:"message"`
		Param     string     `json:"param"`
		RequestID string     `json:"request_id"`
	} `json:"error"`
}

// decodeApp serves POST /body into decodeParams, POST /keys into
// apikey.CreateParams, POST /empty into struct{}, GET /keys into
// apikey.ListParams, each answering the decoded value as JSON.
func decodeApp() *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	app.Post("/body", func(c *fiber.Ctx) error {
		var in decodeParams
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		return c.JSON(in)
	})
	app.Post("/keys", func(c *fiber.Ctx) error {
		var in apikey.CreateParams
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		return c.JSON(in)
	})
	app.Post("/rotate", func(c *fiber.Ctx) error {
		var in apikey.RotateParams
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		return c.JSON(in)
	})
	app.Post("/empty", func(c *fiber.Ctx) error {
		var in struct{}
		if err := decodeBody(c, &in); err != nil {
			return err
		}
		return c.JSON(in)
	})
	app.Get("/keys", func(c *fiber.Ctx) error {
		var in apikey.ListParams
		if err := decodeQuery(c, &in); err != nil {
			return err
		}
		return c.JSON(in)
	})
	app.Get("/page", func(c *fiber.Ctx) error {
		var in store.Page
		if err := decodeQuery(c, &in); err != nil {
			return err
		}
		return c.JSON(in)
	})
	return app
}

type decodeCase struct {
	name        string
	method      string
	path        string
	contentType string // default application/json when there is a body
	body        string
	status      int
	code        nexus.Code
	param       string
	check       func(t *testing.T, body []byte)
	// bug, when set, names a known defect: a mismatch skips instead of
	// failing, and the case starts passing once the defect is fixed.
	bug string
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	app := decodeApp()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(method, tc.path, body)
			ct := tc.contentType
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			if ct != "-" && ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			want := tc.status
			if want == 0 {
				want = 200
			}
			if resp.StatusCode != want && tc.bug != "" {
				t.Fatalf("regression: %s (got status %d: %s)", tc.bug, resp.StatusCode, raw)
			}
			if resp.StatusCode != want {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, want, raw)
			}
			if tc.code != "" {
				var env errEnvelope
				if err := json.Unmarshal(raw, &env); err != nil {
					t.Fatalf("error body %s: %v", raw, err)
				}
				if (env.Error.Code != tc.code || env.Error.Param != tc.param) && tc.bug != "" {
					t.Fatalf("regression: %s (got %s param %q)", tc.bug, env.Error.Code, env.Error.Param)
				}
				if env.Error.Code != tc.code || env.Error.Param != tc.param {
					t.Fatalf("error = %s param %q (%q), want %s param %q", env.Error.Code, env.Error.Param, env.Error.Message, tc.code, tc.param)
				}
				if env.Error.Type != "invalid_request_error" || env.Error.Message == "" || !strings.HasPrefix(env.Error.RequestID, "req_") {
					t.Errorf("envelope = %+v", env.Error)
				}
				if strings.Contains(env.Error.Message, "json:") || strings.Contains(env.Error.Message, "reflect") || strings.Contains(env.Error.Message, "Key: '") {
					t.Errorf("message leaks internals: %q", env.Error.Message)
				}
			}
			if tc.check != nil {
				tc.check(t, raw)
			}
		})
	}
}

func TestDecodeBody(t *testing.T) {
	decoded := func(f func(t *testing.T, p decodeParams)) func(t *testing.T, body []byte) {
		return func(t *testing.T, body []byte) {
			var p decodeParams
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			f(t, p)
		}
	}
	runDecodeCases(t, []decodeCase{
		{name: "valid", path: "/body", body: `{"name":"a","count":3,"enabled":true,"kind":"secret","allowed_ips":["10.0.0.1"],"when":"2030-01-02T03:04:05Z","meta":{"k":"v"},"inner":{"label":"x"},"items":[{"label":"y"}],"cursor":"c1"}`,
			check: decoded(func(t *testing.T, p decodeParams) {
				if p.Name != "a" || p.Count == nil || *p.Count != 3 || !p.Enabled || p.Kind != "secret" || len(p.AllowedIPs) != 1 ||
					p.When == nil || p.When.Year() != 2030 || p.Meta["k"] != "v" || p.Inner == nil || p.Inner.Label != "x" || p.Cursor != "c1" {
					t.Errorf("decoded %+v", p)
				}
			})},
		{name: "charset parameter", path: "/body", contentType: "application/json; charset=utf-8", body: `{"name":"a"}`},
		{name: "content type case", path: "/body", contentType: "Application/JSON", body: `{"name":"a"}`},
		{name: "surrounding whitespace", path: "/body", body: "\n  {\"name\":\"a\"}  \n"},
		{name: "null optional field", path: "/body", body: `{"name":"a","count":null}`},

		{name: "unknown field", path: "/body", body: `{"name":"a","colour":"red"}`, status: 400, code: nexus.CodeParameterUnknown, param: "colour"},
		{name: "unknown field by go name", path: "/body", body: `{"name":"a","AllowedIPs":[]}`, status: 400, code: nexus.CodeParameterUnknown, param: "AllowedIPs"},
		{name: "field names are case sensitive", path: "/body", body: `{"Name":"a"}`, status: 400, code: nexus.CodeParameterUnknown, param: "Name"},
		{name: "json:\"-\" field is unknown", path: "/body", body: `{"name":"a","Ignored":"x"}`, status: 400, code: nexus.CodeParameterUnknown, param: "Ignored"},
		{name: "embedded struct name is unknown", path: "/body", body: `{"name":"a","decodeEmbedded":{}}`, status: 400, code: nexus.CodeParameterUnknown, param: "decodeEmbedded"},
		{name: "first unknown in sorted order", path: "/body", body: `{"zzz":1,"aaa":2,"name":"a"}`, status: 400, code: nexus.CodeParameterUnknown, param: "aaa"},

		{name: "string for integer", path: "/body", body: `{"name":"a","count":"3"}`, status: 400, code: nexus.CodeParameterInvalid, param: "count"},
		{name: "float for integer", path: "/body", body: `{"name":"a","count":1.5}`, status: 400, code: nexus.CodeParameterInvalid, param: "count"},
		{name: "number for string", path: "/body", body: `{"name":5}`, status: 400, code: nexus.CodeParameterInvalid, param: "name"},
		{name: "string for bool", path: "/body", body: `{"name":"a","enabled":"yes"}`, status: 400, code: nexus.CodeParameterInvalid, param: "enabled"},
		{name: "string for array", path: "/body", body: `{"name":"a","allowed_ips":"10.0.0.1"}`, status: 400, code: nexus.CodeParameterInvalid, param: "allowed_ips"},
		{name: "array of wrong type", path: "/body", body: `{"name":"a","allowed_ips":[1]}`, status: 400, code: nexus.CodeParameterInvalid, param: "allowed_ips"},
		{name: "bad time", path: "/body", body: `{"name":"a","when":"yesterday"}`, status: 400, code: nexus.CodeParameterInvalid, param: "when"},
		{name: "array for object", path: "/body", body: `{"name":"a","inner":[]}`, status: 400, code: nexus.CodeParameterInvalid, param: "inner"},
		{name: "embedded field wrong type", path: "/body", body: `{"name":"a","cursor":7}`, status: 400, code: nexus.CodeParameterInvalid, param: "cursor"},

		{name: "array body", path: "/body", body: `[{"name":"a"}]`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "string body", path: "/body", body: `"name"`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "number body", path: "/body", body: `42`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "truncated", path: "/body", body: `{"name":"a"`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "trailing garbage", path: "/body", body: `{"name":"a"} x`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "two objects", path: "/body", body: `{"name":"a"}{"name":"b"}`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "not json", path: "/body", body: `name=a`, status: 400, code: nexus.CodeBodyInvalidJSON},

		{name: "form content type", path: "/body", contentType: "application/x-www-form-urlencoded", body: `name=a`, status: 415, code: nexus.CodeUnsupportedMediaType},
		{name: "text content type", path: "/body", contentType: "text/plain", body: `{"name":"a"}`, status: 415, code: nexus.CodeUnsupportedMediaType},
		{name: "json suffix type", path: "/body", contentType: "application/merge-patch+json", body: `{"name":"a"}`, status: 415, code: nexus.CodeUnsupportedMediaType},
		{name: "no content type", path: "/body", contentType: "-", body: `{"name":"a"}`, status: 415, code: nexus.CodeUnsupportedMediaType},

		{name: "required missing", path: "/body", body: `{"count":2}`, status: 400, code: nexus.CodeParameterMissing, param: "name"},
		{name: "empty body still validates", path: "/body", status: 400, code: nexus.CodeParameterMissing, param: "name"},
		{name: "max length", path: "/body", body: `{"name":"abcdefghijklmnopqrstuvwxyz"}`, status: 400, code: nexus.CodeParameterInvalid, param: "name"},
		{name: "integer max", path: "/body", body: `{"name":"a","count":11}`, status: 400, code: nexus.CodeParameterInvalid, param: "count"},
		{name: "integer min", path: "/body", body: `{"name":"a","count":0}`, status: 400, code: nexus.CodeParameterInvalid, param: "count"},
		{name: "oneof", path: "/body", body: `{"name":"a","kind":"other"}`, status: 400, code: nexus.CodeParameterInvalid, param: "kind"},
		{name: "array too long", path: "/body", body: `{"name":"a","allowed_ips":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4"]}`, status: 400, code: nexus.CodeParameterInvalid, param: "allowed_ips"},
		{name: "dive element", path: "/body", body: `{"name":"a","allowed_ips":["10.0.0.1","nope"]}`, status: 400, code: nexus.CodeParameterInvalid, param: "allowed_ips[1]"},
		{name: "dive first element", path: "/body", body: `{"name":"a","tags":["","ok"]}`, status: 400, code: nexus.CodeParameterInvalid, param: "tags[0]"},
		{name: "map too big", path: "/body", body: `{"name":"a","meta":{"a":"1","b":"2","c":"3"}}`, status: 400, code: nexus.CodeParameterInvalid, param: "meta"},
		{name: "nested struct", path: "/body", body: `{"name":"a","inner":{"label":"abcdefghijklmnop"}}`, status: 400, code: nexus.CodeParameterInvalid, param: "inner.label"},
		{name: "nested required", path: "/body", body: `{"name":"a","inner":{}}`, status: 400, code: nexus.CodeParameterMissing, param: "inner.label"},
		{name: "dive into structs", path: "/body", body: `{"name":"a","items":[{"label":"ok"},{"label":""}]}`, status: 400, code: nexus.CodeParameterMissing, param: "items[1].label"},
		{name: "json-like text in strings", path: "/body", body: `{"name":"a:{[,\\\"}","meta":{"k":"]}"}}`, check: decoded(func(t *testing.T, p decodeParams) {
			if p.Name != `a:{[,\"}` || p.Meta["k"] != "]}" {
				t.Errorf("decoded %+v", p)
			}
		})},
		{name: "escaped backslash before u0000 is no NUL", path: "/body", body: `{"name":"a\\u0000"}`},
		{name: "embedded field validation", path: "/body", body: `{"name":"a","cursor":"123456789"}`, status: 400, code: nexus.CodeParameterInvalid, param: "cursor",
			bug: "decode.go validateStruct strips only a hard-coded \"Page.\" segment; any other embedded struct leaks its Go type name into param " +
				"(fix: tag name func returns \"\" for f.Anonymous, with validator.WithTagNameFuncBlankOmit())"},
	})
}

func TestDecodeBodyAPIParams(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "create key empty body", path: "/keys"},
		{name: "create key empty object", path: "/keys", body: `{}`},
		{name: "create key", path: "/keys", body: `{"type":"publishable","scopes":["read"],"allowed_origins":["https://a.example"]}`},
		{name: "create key bad type", path: "/keys", body: `{"type":"public"}`, status: 400, code: nexus.CodeParameterInvalid, param: "type"},
		{name: "create key empty scope", path: "/keys", body: `{"scopes":["read",""]}`, status: 400, code: nexus.CodeParameterInvalid, param: "scopes[1]"},
		{name: "create key too many ips", path: "/keys", body: `{"allowed_ips":[` + strings.Repeat(`"1.1.1.1",`, 100) + `"1.1.1.1"]}`, status: 400, code: nexus.CodeParameterInvalid, param: "allowed_ips"},
		{name: "create key expires_at not a time", path: "/keys", body: `{"expires_at":1700000000}`, status: 400, code: nexus.CodeParameterInvalid, param: "expires_at"},
		{name: "create key unknown", path: "/keys", body: `{"key":"nx_live_sk_x"}`, status: 400, code: nexus.CodeParameterUnknown, param: "key"},
		{name: "rotate grace too long", path: "/rotate", body: `{"grace_period_seconds":604801}`, status: 400, code: nexus.CodeParameterInvalid, param: "grace_period_seconds"},
		{name: "rotate grace negative", path: "/rotate", body: `{"grace_period_seconds":-1}`, status: 400, code: nexus.CodeParameterInvalid, param: "grace_period_seconds"},
		{name: "rotate grace zero", path: "/rotate", body: `{"grace_period_seconds":0}`},
		{name: "bodiless action empty", path: "/empty"},
		{name: "bodiless action empty object", path: "/empty", body: `{}`},
		{name: "bodiless action any field", path: "/empty", body: `{"force":true}`, status: 400, code: nexus.CodeParameterUnknown, param: "force"},
	})
}

// NUL characters cannot be stored by PostgreSQL and belong in no Nexus
// parameter: every string, at any depth, is refused with the top-level field
// that holds it (issue 11, item 10).
func TestDecodeBodyNUL(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "escaped in a value", path: "/body", body: `{"name":"a\u0000b"}`, status: 400, code: nexus.CodeParameterInvalid, param: "name"},
		{name: "raw in a value", path: "/body", body: "{\"name\":\"a\x00b\"}", status: 400, code: nexus.CodeParameterInvalid, param: "name"},
		{name: "in a nested value", path: "/body", body: `{"name":"a","meta":{"k":"v\u0000"}}`, status: 400, code: nexus.CodeParameterInvalid, param: "meta"},
		{name: "in a nested name", path: "/body", body: `{"name":"a","meta":{"k\u0000":"v"}}`, status: 400, code: nexus.CodeParameterInvalid, param: "meta"},
		{name: "in an array", path: "/body", body: `{"name":"a","tags":["x","\u0000"]}`, status: 400, code: nexus.CodeParameterInvalid, param: "tags"},
		{name: "in a field name", path: "/body", body: `{"name":"a","na\u0000me":"b"}`, status: 400, code: nexus.CodeParameterInvalid, param: `na\u0000me`},
		{name: "in a value after a field holding an object", path: "/body", body: `{"inner":{"label":"x"},"name":"\u0000"}`, status: 400, code: nexus.CodeParameterInvalid, param: "name"},
		{name: "in a body that is no object", path: "/body", body: `["\u0000"]`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "api params", path: "/keys", body: `{"name":"key\u0000"}`, status: 400, code: nexus.CodeParameterInvalid, param: "name"},
	})
}

// A body is refused, with a message saying why, when it holds more fields,
// deeper nesting or longer arrays than any Nexus request needs.
func TestDecodeBodyLimits(t *testing.T) {
	members := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":"v"`, i)
		}
		return b.String()
	}
	items := func(n int) string { return strings.TrimSuffix(strings.Repeat(`"x",`, n), ",") }
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	message := func(want string) func(t *testing.T, body []byte) {
		return func(t *testing.T, body []byte) {
			var env errEnvelope
			if err := json.Unmarshal(body, &env); err != nil || !strings.Contains(env.Error.Message, want) {
				t.Errorf("message %q, want it to contain %q", env.Error.Message, want)
			}
		}
	}
	runDecodeCases(t, []decodeCase{
		{name: "fields at the limit", path: "/body", body: `{"name":"a","meta":{` + members(maxBodyFields-2) + `}}`, status: 400, code: nexus.CodeParameterInvalid, param: "meta",
			check: message("at most 2")},
		{name: "fields over the limit", path: "/body", body: `{"name":"a","meta":{` + members(maxBodyFields-1) + `}}`, status: 400, code: nexus.CodeBodyInvalidJSON,
			check: message("more than 1000 fields")},
		{name: "top-level fields over the limit", path: "/empty", body: `{` + members(maxBodyFields+1) + `}`, status: 400, code: nexus.CodeBodyInvalidJSON},
		{name: "depth at the limit", path: "/body", body: `{"name":"a","tags":` + nested(maxBodyDepth-1) + `}`, status: 400, code: nexus.CodeParameterInvalid, param: "tags",
			check: message("expected an array")},
		{name: "depth over the limit", path: "/body", body: `{"name":"a","tags":` + nested(maxBodyDepth) + `}`, status: 400, code: nexus.CodeParameterInvalid, param: "tags",
			check: message("more than 16 deep")},
		{name: "body deeper than the limit", path: "/body", body: nested(maxBodyDepth + 1), status: 400, code: nexus.CodeBodyInvalidJSON, check: message("more than 16 deep")},
		{name: "array at the limit", path: "/body", body: `{"name":"a","tags":[` + items(maxArrayItems) + `]}`},
		{name: "array over the limit", path: "/body", body: `{"name":"a","tags":[` + items(maxArrayItems+1) + `]}`, status: 400, code: nexus.CodeParameterInvalid, param: "tags",
			check: message("more than 1000 items")},
		{name: "nested array over the limit", path: "/body", body: `{"name":"a","items":[{"label":"x","more":[` + items(maxArrayItems+1) + `]}]}`, status: 400, code: nexus.CodeParameterInvalid, param: "items"},
		{name: "query parameters at the limit", method: "GET", path: "/keys?" + strings.Repeat("limit=5&", maxQueryParams-1) + "limit=5"},
		{name: "query parameters over the limit", method: "GET", path: "/keys?" + strings.Repeat("limit=5&", maxQueryParams) + "limit=5", status: 400, code: nexus.CodeParameterInvalid,
			check: message("at most 100")},
	})
}

// A JSON null is not an object: CONTRACT §4 body_invalid_json.
func TestDecodeBodyNull(t *testing.T) {
	bug := "decode.go decodeBody accepts the body `null` as an empty object (json.Unmarshal of null into a map succeeds, leaving it nil); " +
		"it should be body_invalid_json like other non-object JSON (fix: `if err != nil || raw == nil`)"
	runDecodeCases(t, []decodeCase{
		{name: "null body", path: "/empty", body: `null`, status: 400, code: nexus.CodeBodyInvalidJSON, bug: bug},
		{name: "null body with required field", path: "/body", body: ` null `, status: 400, code: nexus.CodeBodyInvalidJSON, bug: bug},
	})
}

func TestDecodeQuery(t *testing.T) {
	listParams := func(f func(t *testing.T, p apikey.ListParams)) func(t *testing.T, body []byte) {
		return func(t *testing.T, body []byte) {
			var p apikey.ListParams
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			f(t, p)
		}
	}
	runDecodeCases(t, []decodeCase{
		{name: "none: default page size", method: "GET", path: "/keys", check: listParams(func(t *testing.T, p apikey.ListParams) {
			if p.Limit != store.DefaultLimit || p.StartingAfter != "" || p.Status != "" {
				t.Errorf("decoded %+v", p)
			}
		})},
		{name: "all", method: "GET", path: "/keys?limit=5&starting_after=key_1&status=active", check: listParams(func(t *testing.T, p apikey.ListParams) {
			if p.Limit != 5 || p.StartingAfter != "key_1" || p.Status != apikey.Active {
				t.Errorf("decoded %+v", p)
			}
		})},
		{name: "limit bounds", method: "GET", path: "/keys?limit=100", check: listParams(func(t *testing.T, p apikey.ListParams) {
			if p.Limit != 100 {
				t.Errorf("decoded %+v", p)
			}
		})},
		{name: "unknown", method: "GET", path: "/keys?limt=5", status: 400, code: nexus.CodeParameterUnknown, param: "limt"},
		{name: "unknown case", method: "GET", path: "/keys?Limit=5", status: 400, code: nexus.CodeParameterUnknown, param: "Limit"},
		{name: "empty name", method: "GET", path: "/keys?=5", status: 400, code: nexus.CodeParameterUnknown, param: ""},
		{name: "not an integer", method: "GET", path: "/keys?limit=ten", status: 400, code: nexus.CodeParameterInvalid, param: "limit"},
		{name: "float", method: "GET", path: "/keys?limit=2.5", status: 400, code: nexus.CodeParameterInvalid, param: "limit"},
		{name: "empty integer", method: "GET", path: "/keys?limit=", status: 400, code: nexus.CodeParameterInvalid, param: "limit"},
		{name: "oneof", method: "GET", path: "/keys?status=deleted", status: 400, code: nexus.CodeParameterInvalid, param: "status"},
		// The limits of the embedded store.Page name the query parameter.
		{name: "limit max", method: "GET", path: "/keys?limit=101", status: 400, code: nexus.CodeParameterInvalid, param: "limit"},
		{name: "limit zero", method: "GET", path: "/keys?limit=0", status: 400, code: nexus.CodeParameterInvalid, param: "limit"},
		{name: "limit negative", method: "GET", path: "/keys?limit=-1", status: 400, code: nexus.CodeParameterInvalid, param: "limit"},
		{name: "cursor too long", method: "GET", path: "/keys?starting_after=" + strings.Repeat("k", 65), status: 400, code: nexus.CodeParameterInvalid, param: "starting_after"},
		{name: "bare page limit max", method: "GET", path: "/page?limit=101", status: 400, code: nexus.CodeParameterInvalid, param: "limit"},
		{name: "bare page default", method: "GET", path: "/page", check: func(t *testing.T, body []byte) {
			var p store.Page
			if err := json.Unmarshal(body, &p); err != nil || p.Limit != store.DefaultLimit {
				t.Errorf("decoded %s: %v", body, err)
			}
		}},
	})
}

// fieldIndex is cached per type; two distinct types must never share an entry.
func TestFieldIndexDistinctTypesSameName(t *testing.T) {
	a := func() reflect.Type {
		type params struct {
			Alpha string `json:"alpha"`
		}
		return reflect.TypeOf(params{})
	}()
	b := func() reflect.Type {
		type params struct {
			Beta string `json:"beta"`
		}
		return reflect.TypeOf(params{})
	}()
	if a == b {
		t.Fatal("test setup: the types are identical")
	}
	ia := fieldIndex(a, "json")
	ib := fieldIndex(b, "json")
	if _, ok := ia["alpha"]; !ok {
		t.Fatalf("index of first type = %v", ia)
	}
	if _, ok := ib["beta"]; !ok {
		t.Fatalf("regression: decode.go fieldIndex caches by t.String()+tag (%q for both types), so two distinct types with the same "+
			"printed name share one index: second type got %v. Key the cache by reflect.Type.", a.String(), ib)
	}
}

func TestTypeName(t *testing.T) {
	var n *int
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"", "a string"},
		{0, "an integer"},
		{int64(0), "an integer"},
		{n, "an integer"},
		{false, "a boolean"},
		{[]string{}, "an array"},
		{map[string]int{}, "an object"},
		{time.Time{}, "an RFC 3339 time"},
		{&time.Time{}, "an RFC 3339 time"},
		{decodeInner{}, "an object"},
		{struct{ X int }{}, "an object"},
	} {
		if got := typeName(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("typeName(%T) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// distinctKeys is a JSON object of about size bytes whose members all have
// different names: {"k0000000":0,"k0000001":0,...}.
func distinctKeys(size int) []byte {
	b := append(make([]byte, 0, size+32), '{')
	for i := 0; len(b) < size-16; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"k`...)
		b = append(b, fmt.Sprintf("%07d", i)...)
		b = append(b, `":0`...)
	}
	return append(b, '}')
}

// longKeys is a JSON object of n members whose names are each about size/n
// bytes long and differ only at their end.
func longKeys(size, n int) []byte {
	pad := strings.Repeat("x", size/n-16)
	b := append(make([]byte, 0, size+32), '{')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, pad...)
		b = append(b, fmt.Sprintf("%07d", n-i)...)
		b = append(b, `":0`...)
	}
	return append(b, '}')
}

// BenchmarkDecodeBody decodes request bodies at the 1 MiB limit built to be
// expensive, and a typical body beside them. Issue 11: with names sorted by
// insertion sort, 60,000 distinct names cost 6.8 s of CPU in one request.
func BenchmarkDecodeBody(b *testing.B) {
	for _, bc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"distinct_keys_1MiB", distinctKeys(1 << 20), 400},
		{"long_keys_1MiB", longKeys(1<<20, 1000), 400},
		{"create_key", []byte(`{"type":"publishable","name":"checkout","scopes":["read"],"allowed_origins":["https://a.example"]}`), 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := decodeApp().Handler()
			var req fasthttp.Request
			req.Header.SetMethod("POST")
			req.SetRequestURI("/keys")
			req.Header.SetContentType("application/json")
			req.SetBody(bc.body)
			ctx := new(fasthttp.RequestCtx)
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				h(ctx)
				if st := ctx.Response.StatusCode(); st != bc.status {
					b.Fatalf("status %d, want %d: %.300s", st, bc.status, ctx.Response.Body())
				}
			}
		})
	}
}
