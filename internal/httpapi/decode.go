package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
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

// decodeBody reads a strict JSON object into dst (a pointer to a struct):
// unknown fields are parameter_unknown and a field of the wrong type is
// parameter_invalid, each naming the field, then dst is validated. Fields
// are decoded one by one so every failure knows its parameter without
// reading the decoder's message text.
func decodeBody(c *fiber.Ctx, dst any) error {
	body := bytes.TrimSpace(c.Body())
	if len(body) == 0 {
		return validateStruct(dst, nil)
	}
	if !isJSON(c) {
		return nexus.Errorf(nexus.CodeUnsupportedMediaType, "request bodies must be sent as Content-Type: application/json")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nexus.Errorf(nexus.CodeBodyInvalidJSON, "the request body is not a JSON object")
	}
	v := reflect.ValueOf(dst).Elem()
	idx := fieldIndex(v.Type(), "json")
	for _, name := range sortedKeys(raw) {
		path, ok := idx[name]
		if !ok {
			return nexus.ParamError(nexus.CodeParameterUnknown, name, "unknown parameter: %s", name)
		}
		f := v.FieldByIndex(path)
		if err := json.Unmarshal(raw[name], f.Addr().Interface()); err != nil {
			return nexus.ParamError(nexus.CodeParameterInvalid, name, "invalid value for %s: expected %s", name, typeName(f.Type()))
		}
	}
	return validateStruct(dst, raw)
}

func isJSON(c *fiber.Ctx) bool {
	ct := strings.ToLower(string(c.Request().Header.ContentType()))
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt) == fiber.MIMEApplicationJSON
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Deterministic: the first bad field reported is the same every time.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
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
	v := reflect.ValueOf(dst).Elem()
	idx := fieldIndex(v.Type(), "query")
	var err error
	c.Context().QueryArgs().VisitAll(func(k, val []byte) {
		if err != nil {
			return
		}
		name := string(k)
		path, ok := idx[name]
		if !ok {
			err = nexus.ParamError(nexus.CodeParameterUnknown, name, "unknown parameter: %s", name)
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
