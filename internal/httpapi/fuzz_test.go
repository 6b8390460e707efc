package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
)

// fuzzApp only lends contexts: the decoders are called directly.
var fuzzApp = fiber.New()

// withCtx runs fn with a context of a request whose URI and body are given.
func withCtx(uri string, body []byte, contentType string, fn func(c *fiber.Ctx)) {
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI(uri)
	if contentType != "" {
		rc.Request.Header.SetContentType(contentType)
	}
	rc.Request.SetBody(body)
	c := fuzzApp.AcquireCtx(&rc)
	defer fuzzApp.ReleaseCtx(c)
	fn(c)
}

// checkDecodeError fails unless err is one of the contract's answers to a
// bad request: a *nexus.Error of an expected code, naming the parameter
// at fault when there is one.
func checkDecodeError(t *testing.T, err error, codes ...nexus.Code) *nexus.Error {
	t.Helper()
	var ne *nexus.Error
	if !errors.As(err, &ne) {
		t.Fatalf("error %v (%T) is not a contract error: it would answer 500", err, err)
	}
	if !slices.Contains(codes, ne.Code) {
		t.Fatalf("code %s (%q), want one of %v", ne.Code, ne.Message, codes)
	}
	switch ne.Code {
	case nexus.CodeParameterUnknown, nexus.CodeParameterMissing:
		if ne.Param == "" && !strings.Contains(ne.Message, "an empty name") {
			t.Fatalf("%s without a param: %q", ne.Code, ne.Message)
		}
	case nexus.CodeBodyInvalidJSON, nexus.CodeUnsupportedMediaType:
		if ne.Param != "" {
			t.Fatalf("%s names param %q", ne.Code, ne.Param)
		}
	}
	if ne.Message == "" || strings.Contains(ne.Message, "json:") || strings.Contains(ne.Message, "reflect") {
		t.Fatalf("message %q is empty or leaks internals", ne.Message)
	}
	return ne
}

// sameOutcome fails unless two decodings answered alike.
func sameOutcome(t *testing.T, what string, err1, err2 error, v1, v2 any) {
	t.Helper()
	var e1, e2 *nexus.Error
	errors.As(err1, &e1)
	errors.As(err2, &e2)
	switch {
	case (err1 == nil) != (err2 == nil):
		t.Fatalf("%s: %v, then %v", what, err1, err2)
	case e1 != nil && e2 != nil && (e1.Code != e2.Code || e1.Param != e2.Param || e1.Message != e2.Message):
		t.Fatalf("%s: %+v, then %+v", what, e1, e2)
	case err1 == nil:
		if a, b := mustJSON(t, v1), mustJSON(t, v2); !bytes.Equal(a, b) {
			t.Fatalf("%s: decoded %s, then %s", what, a, b)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("decoded value does not encode: %v", err)
	}
	return b
}

var bodyCodes = []nexus.Code{
	nexus.CodeBodyInvalidJSON, nexus.CodeParameterUnknown, nexus.CodeParameterInvalid,
	nexus.CodeParameterMissing, nexus.CodeUnsupportedMediaType,
}

// FuzzDecodeBody: whatever the body, decodeBody answers a contract error
// or a value, the same one every time (the first bad field in byte order
// is reported, although fields are read from a map), holding no NUL; and
// a decoded value, encoded again, decodes to itself.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","count":3,"enabled":true,"kind":"secret","allowed_ips":["10.0.0.1"],"when":"2030-01-02T03:04:05Z","meta":{"k":"v"},"inner":{"label":"x"},"items":[{"label":"y"}],"cursor":"c1"}`,
		`{"name":"a","zzz":1,"aaa":2}`, `{"name":1}`, `{"count":0,"name":"x"}`, `{"name":""}`, `{}`, `[]`, `null`, `"x"`,
		`{"name":"a\u0000"}`, `{"name":"a","name":"b"}`, `{"name":"a","items":[{"label":""}]}`,
		`{"name":"a","allowed_ips":["x"]}`, `{"":1}`, `{"name":"\xff"}`, `{"a":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}`,
		`{"type":"publishable","name":"k","scopes":["read:balances"],"expires_at":"2030-01-01T00:00:00+02:00","limits":{"btc":{"per_request":"1"}}}`,
		`{"limits":null}`, `{"scopes":[""]}`, ` {"name":"a"} `, `{"name":"a"`,
	} {
		f.Add([]byte(s), true)
	}
	f.Add([]byte(`{"name":"a"}`), false)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		ct := "application/json"
		if !isJSON {
			ct = "text/plain"
		}
		fuzzBody(t, body, ct, func() any { return new(decodeParams) })
		fuzzBody(t, body, ct, func() any { return new(apikey.CreateParams) })
	})
}

func fuzzBody(t *testing.T, body []byte, ct string, fresh func() any) {
	t.Helper()
	decode := func(body []byte, ct string) (any, error) {
		v := fresh()
		var err error
		withCtx("/body", body, ct, func(c *fiber.Ctx) { err = decodeBody(c, v) })
		return v, err
	}
	v1, err1 := decode(body, ct)
	v2, err2 := decode(body, ct)
	sameOutcome(t, "decoded twice", err1, err2, v1, v2)
	if err1 != nil {
		checkDecodeError(t, err1, bodyCodes...)
		return
	}
	out := mustJSON(t, v1)
	if bytes.Contains(out, []byte(`\u0000`)) {
		t.Fatalf("decoded value %s holds a NUL", out)
	}
	v3, err3 := decode(out, "application/json")
	if err3 != nil {
		t.Fatalf("decoded %s, encoded again it is refused: %v", out, err3)
	}
	if again := mustJSON(t, v3); !bytes.Equal(again, out) {
		t.Fatalf("round trip: %s, then %s", out, again)
	}
}

var queryCodes = []nexus.Code{nexus.CodeParameterUnknown, nexus.CodeParameterInvalid, nexus.CodeParameterMissing}

// FuzzDecodeQuery: whatever the query string, decodeQuery answers a
// contract error naming the parameter, or a value, the same every time;
// and the value, written as a query again, decodes to itself.
func FuzzDecodeQuery(f *testing.F) {
	for _, s := range []string{
		"limit=10&starting_after=key_1&status=active", "limit=0", "limit=101", "limit=x", "limit=9223372036854775808",
		"status=bogus", "unknown=1", "=1", "&&limit=5&", "policy_violations=true&expiring_within=P7D",
		"type=api_key.created&created_after=2026-01-01T00:00:00Z&created_before=2027-01-01T00:00:00%2B02:00",
		"created_after=yesterday", "starting_after=%ff", "type=caf%C3%A9", "limit=1&limit=2", "limit", "a%zz=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		fuzzQuery(t, q, func() any { return new(apikey.ListParams) })
		fuzzQuery(t, q, func() any { return new(audit.ListParams) })
	})
}

func fuzzQuery(t *testing.T, q string, fresh func() any) {
	t.Helper()
	decode := func(q string) (any, error) {
		v := fresh()
		var err error
		withCtx("/list?"+q, nil, "", func(c *fiber.Ctx) { err = decodeQuery(c, v) })
		return v, err
	}
	v1, err1 := decode(q)
	v2, err2 := decode(q)
	sameOutcome(t, "decoded twice", err1, err2, v1, v2)
	if err1 != nil {
		ne := checkDecodeError(t, err1, queryCodes...)
		if ne.Param == "" && !strings.HasPrefix(ne.Message, "the query string has") && !strings.Contains(ne.Message, "an empty name") {
			t.Fatalf("%s without a param: %q", ne.Code, ne.Message)
		}
		return
	}
	args := encodeQuery(t, v1)
	v3, err3 := decode(args)
	if err3 != nil {
		t.Fatalf("decoded %s; written as %q it is refused: %v", mustJSON(t, v1), args, err3)
	}
	if a, b := mustJSON(t, v1), mustJSON(t, v3); !bytes.Equal(a, b) {
		t.Fatalf("round trip through %q: %s, then %s", args, a, b)
	}
}

// encodeQuery writes v's query fields as a query string.
func encodeQuery(t *testing.T, v any) string {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	var args fasthttp.Args
	for name, idx := range fieldIndex(rv.Type(), "query") {
		f := rv.FieldByIndex(idx)
		switch {
		case f.Kind() == reflect.String:
			if f.String() != "" {
				args.Add(name, f.String())
			}
		case f.Kind() == reflect.Int:
			args.Add(name, strconv.FormatInt(f.Int(), 10))
		case f.Kind() == reflect.Pointer && f.IsNil():
		default:
			m, ok := f.Interface().(interface{ MarshalText() ([]byte, error) })
			if !ok {
				t.Fatalf("query field %s of kind %s cannot be written", name, f.Kind())
			}
			b, err := m.MarshalText()
			if err != nil {
				t.Fatalf("query field %s: %v", name, err)
			}
			args.AddBytesV(name, b)
		}
	}
	return args.String()
}
