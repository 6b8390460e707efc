package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled(), validator.WithTagNameFuncBlankOmit())
	// Report fields by the names callers use; embedded structs (a list's
	// Page) add no name of their own.
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		if f.Anonymous {
			return ""
		}
		for _, tag := range []string{"json", "query"} {
			if n, _, _ := strings.Cut(f.Tag.Get(tag), ","); n != "" && n != "-" {
				return n
			}
		}
		return f.Name
	})
	return v
}()

// fieldIndex maps the json (or query) names of a struct's fields, embedded
// structs included, to their index paths. Cached per type.
var fieldIndexes sync.Map // fieldIndexKey -> map[string][]int

type fieldIndexKey struct {
	t   reflect.Type
	tag string
}

func fieldIndex(t reflect.Type, tag string) map[string][]int {
	key := fieldIndexKey{t, tag}
	if m, ok := fieldIndexes.Load(key); ok {
		return m.(map[string][]int)
	}
	m := make(map[string][]int)
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			idx := append(append([]int(nil), prefix...), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			n, _, _ := strings.Cut(f.Tag.Get(tag), ",")
			if n != "" && n != "-" {
				m[n] = idx
			}
		}
	}
	walk(t, nil)
	fieldIndexes.Store(key, m)
	return m
}

// Limits of one request. Nexus bodies are small flat objects (the largest
// has a few dozen members); the limits leave ample room, and they bound
// what a hostile request can make the decoder and the validator do.
const (
	maxBodyFields  = 1000 // object members in a body, at any depth
	maxBodyDepth   = 16   // objects and arrays inside one another
	maxArrayItems  = 1000 // items of one array
	maxQueryParams = 100
)

// decodeBody reads a strict JSON object into dst (a pointer to a struct):
// unknown fields are parameter_unknown and a field of the wrong type is
// parameter_invalid, each naming the field, then dst is validated. Fields
// are decoded one by one so every failure knows its parameter without
// reading the decoder's message text. Its cost is linear in the body's
// size.
func decodeBody(c *fiber.Ctx, dst any) error {
	body := bytes.TrimSpace(c.Body())
	if len(body) == 0 {
		return validateStruct(dst, nil)
	}
	if !isJSON(c) {
		return nexus.Errorf(nexus.CodeUnsupportedMediaType, "request bodies must be sent as Content-Type: application/json")
	}
	if err := checkBody(body); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nexus.Errorf(nexus.CodeBodyInvalidJSON, "the request body is not a JSON object")
	}
	v := reflect.ValueOf(dst).Elem()
	idx := fieldIndex(v.Type(), "json")
	// The first bad field in byte order is reported, so the answer is the
	// same every time. Unknown names are found in one pass (sorting them
	// all would cost more than the rest); only the known ones, no more
	// than dst has fields, are sorted.
	var unknown string
	hasUnknown := false
	known := make([]string, 0, min(len(raw), len(idx)))
	for name := range raw {
		if _, ok := idx[name]; ok {
			known = append(known, name)
		} else if !hasUnknown || name < unknown {
			unknown, hasUnknown = name, true
		}
	}
	slices.Sort(known)
	for _, name := range known {
		if hasUnknown && unknown < name {
			break
		}
		f := v.FieldByIndex(idx[name])
		if err := json.Unmarshal(raw[name], f.Addr().Interface()); err != nil {
			return nexus.ParamError(nexus.CodeParameterInvalid, name, "invalid value for %s: expected %s", name, typeName(f.Type()))
		}
	}
	if hasUnknown {
		return unknownParam(unknown)
	}
	return validateStruct(dst, raw)
}

// checkBody walks a JSON body once, before it is decoded, and refuses what
// no Nexus request holds: more members, deeper nesting or longer arrays
// than the limits, and NUL characters in strings (PostgreSQL cannot store
// them in text). The grammar is left to json.Unmarshal.
func checkBody(body []byte) error {
	var (
		depth, fields int
		// commas counts the commas of the array open at each depth (its
		// items less one); -1 marks an object.
		commas [maxBodyDepth + 1]int
		// field is the name, as written, of the top-level member being
		// read; inValue says its name has been read.
		field   []byte
		inValue bool
	)
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			start, nul := i+1, false
			for i++; i < len(body) && body[i] != '"'; i++ {
				switch body[i] {
				case '\\':
					nul = nul || bytes.HasPrefix(body[i+1:], []byte("u0000"))
					i++
				case 0:
					nul = true
				}
			}
			if depth == 1 && commas[1] < 0 && !inValue {
				field = body[start:min(i, len(body))]
			}
			if nul {
				return bodyError(field, "must not contain NUL characters (\\u0000)")
			}
		case '{', '[':
			if depth++; depth > maxBodyDepth {
				return bodyError(field, fmt.Sprintf("nests objects and arrays more than %d deep", maxBodyDepth))
			}
			commas[depth] = -1
			if body[i] == '[' {
				commas[depth] = 0
			}
			if depth == 1 {
				inValue = false
			}
		case '}', ']':
			depth = max(depth-1, 0)
		case ':':
			if fields++; fields > maxBodyFields {
				return nexus.Errorf(nexus.CodeBodyInvalidJSON, "the request body has more than %d fields; no Nexus request needs that many", maxBodyFields)
			}
			if depth == 1 {
				inValue = true
			}
		case ',':
			if depth == 1 && commas[1] < 0 {
				inValue = false
			} else if depth > 0 && commas[depth] >= 0 {
				if commas[depth]++; commas[depth] >= maxArrayItems {
					return bodyError(field, fmt.Sprintf("has an array of more than %d items", maxArrayItems))
				}
			}
		}
	}
	return nil
}

// bodyError says what is wrong with a top-level field of the body (its
// name as written), or with the body itself when there is no field.
func bodyError(field []byte, what string) error {
	if len(field) == 0 {
		return nexus.Errorf(nexus.CodeBodyInvalidJSON, "the request body %s", what)
	}
	name := string(field)
	return nexus.ParamError(nexus.CodeParameterInvalid, name, "%s %s", name, what)
}

func isJSON(c *fiber.Ctx) bool {
	ct := strings.ToLower(string(c.Request().Header.ContentType()))
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt) == fiber.MIMEApplicationJSON
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		if t.String() == "time.Time" {
			return "an RFC 3339 time"
		}
		return "a string"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "an array"
	case reflect.Map:
		return "an object"
	case reflect.Struct:
		if t.String() == "time.Time" {
			return "an RFC 3339 time"
		}
		return "an object"
	}
	return t.String()
}

// decodeQuery reads the query string into dst by `query` tags; unknown
// parameters are refused like unknown body fields.
func decodeQuery(c *fiber.Ctx, dst any) error {
	if d, ok := dst.(interface{ SetDefaults() }); ok {
		d.SetDefaults()
	}
	args := c.Context().QueryArgs()
	if n := args.Len(); n > maxQueryParams {
		return nexus.Errorf(nexus.CodeParameterInvalid, "the query string has %d parameters; at most %d are accepted", n, maxQueryParams)
	}
	v := reflect.ValueOf(dst).Elem()
	idx := fieldIndex(v.Type(), "query")
	var err error
	args.VisitAll(func(k, val []byte) {
		if err != nil {
			return
		}
		name := string(k)
		path, ok := idx[name]
		if !ok {
			err = unknownParam(name)
			return
		}
		f := v.FieldByIndex(path)
		s := string(val)
		switch f.Kind() {
		case reflect.String:
			f.SetString(s)
		case reflect.Int, reflect.Int64:
			n, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil {
				err = nexus.ParamError(nexus.CodeParameterInvalid, name, "%s must be an integer", name)
				return
			}
			f.SetInt(n)
		default:
			target := f
			if f.Kind() == reflect.Pointer {
				target = reflect.New(f.Type().Elem()).Elem()
			}
			if u, ok := target.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
				if u.UnmarshalText(val) != nil {
					err = nexus.ParamError(nexus.CodeParameterInvalid, name, "invalid value for %s", name)
					return
				}
				if f.Kind() == reflect.Pointer {
					f.Set(target.Addr())
				}
				return
			}
			if u, ok := f.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
				if u.UnmarshalText(val) != nil {
					err = nexus.ParamError(nexus.CodeParameterInvalid, name, "invalid value for %s", name)
				}
				return
			}
			err = fmt.Errorf("query field %s has unsupported kind %s", name, f.Kind())
		}
	})
	if err != nil {
		return err
	}
	return validateStruct(dst, nil)
}

// unknownParam refuses a parameter no field has. An empty name (a body's
// "" member, a query's "=x") is said in words: the answer's param, empty,
// is left out.
func unknownParam(name string) error {
	if name == "" {
		return nexus.Errorf(nexus.CodeParameterUnknown, `unknown parameter: "" (a parameter with an empty name)`)
	}
	return nexus.ParamError(nexus.CodeParameterUnknown, name, "unknown parameter: %s", name)
}

// validateStruct runs the validator and reports its first failure with the
// parameter's path as the caller wrote it (e.g. "allowed_ips[2]").
func validateStruct(dst any, present map[string]json.RawMessage) error {
	err := validate.Struct(dst)
	if err == nil {
		return nil
	}
	verrs, ok := err.(validator.ValidationErrors)
	if !ok || len(verrs) == 0 {
		return err
	}
	fe := verrs[0]
	ns := fe.Namespace()
	if _, rest, ok := strings.Cut(ns, "."); ok {
		ns = rest
	}
	code := nexus.CodeParameterInvalid
	if fe.Tag() == "required" {
		if _, sent := present[ns]; !sent {
			code = nexus.CodeParameterMissing
		} else {
			// Sent but zero or empty ("amount": 0): invalid, not missing.
			return nexus.ParamError(code, ns, "%s must not be zero or empty", ns)
		}
	}
	return nexus.ParamError(code, ns, "%s", ruleMessage(ns, fe))
}

func ruleMessage(name string, fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return name + " is required"
	case "oneof":
		return fmt.Sprintf("%s must be one of: %s", name, strings.ReplaceAll(fe.Param(), " ", ", "))
	case "min":
		if fe.Kind() == reflect.String || fe.Kind() == reflect.Slice {
			return fmt.Sprintf("%s must have at least %s items or characters", name, fe.Param())
		}
		return fmt.Sprintf("%s must be at least %s", name, fe.Param())
	case "max":
		if fe.Kind() == reflect.String || fe.Kind() == reflect.Slice || fe.Kind() == reflect.Map {
			return fmt.Sprintf("%s must have at most %s items or characters", name, fe.Param())
		}
		return fmt.Sprintf("%s must be at most %s", name, fe.Param())
	}
	return fmt.Sprintf("%s is invalid (%s)", name, fe.Tag())
}
