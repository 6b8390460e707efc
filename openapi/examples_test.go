package openapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// load reads openapi.yaml as a kin-openapi document, resolved and valid.
func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(Document)
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	return doc
}

// examplesOf returns a media type's or a parameter's examples by name.
func examplesOf(example any, examples openapi3.Examples) map[string]any {
	out := map[string]any{}
	if example != nil {
		out["example"] = example
	}
	for name, ex := range examples {
		if ex != nil && ex.Value != nil {
			out[name] = ex.Value.Value
		}
	}
	return out
}

// check validates each example against schema, as a request or as a
// response would be.
func check(t *testing.T, where string, schema *openapi3.SchemaRef, examples map[string]any, asRequest bool) {
	t.Helper()
	if schema == nil || schema.Value == nil {
		t.Errorf("%s: no schema", where)
		return
	}
	mode := openapi3.VisitAsResponse()
	if asRequest {
		mode = openapi3.VisitAsRequest()
	}
	for _, name := range sortedKeys(examples) {
		if err := schema.Value.VisitJSON(examples[name], openapi3.EnableJSONSchema2020(), openapi3.EnableFormatValidation(), mode, openapi3.MultiErrors()); err != nil {
			t.Errorf("%s: example %q does not match its schema: %v", where, name, err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// isJSON tells the media types whose examples are data (not HTML pages or
// the YAML document itself).
func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "application/x-www-form-urlencoded"
}

// Every operation documents a request and a response by example: each
// parameter and each request body has an example, each answer with a body
// has a schema, each JSON answer an example; and every example matches its
// schema (validated with JSON Schema 2020-12, as OpenAPI 3.1 means it).
func TestExamples(t *testing.T) {
	doc := load(t)
	ops := 0
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			ops++
			where := fmt.Sprintf("%s %s (%s)", method, path, op.OperationID)
			params := append(openapi3.Parameters{}, item.Parameters...)
			params = append(params, op.Parameters...)
			for _, p := range params {
				pv := p.Value
				ex := examplesOf(pv.Example, pv.Examples)
				if len(ex) == 0 && pv.Schema != nil && pv.Schema.Value != nil {
					if pv.Schema.Value.Example != nil {
						ex["schema example"] = pv.Schema.Value.Example
					}
					for i, e := range pv.Schema.Value.Examples {
						ex[fmt.Sprintf("schema examples[%d]", i)] = e
					}
					if c := pv.Schema.Value.Const; c != nil {
						ex["const"] = c
					}
					if len(pv.Schema.Value.Enum) > 0 {
						ex["enum"] = pv.Schema.Value.Enum[0]
					}
				}
				if len(ex) == 0 {
					t.Errorf("%s: parameter %s has no example", where, pv.Name)
				}
				check(t, where+" parameter "+pv.Name, pv.Schema, ex, true)
			}
			if rb := op.RequestBody; rb != nil {
				for mt, media := range rb.Value.Content {
					ex := examplesOf(media.Example, media.Examples)
					if len(ex) == 0 {
						t.Errorf("%s: the %s request body has no example", where, mt)
					}
					check(t, where+" request "+mt, media.Schema, ex, true)
				}
			}
			for _, status := range sortedKeys(op.Responses.Map()) {
				resp := op.Responses.Value(status).Value
				for mt, media := range resp.Content {
					rw := fmt.Sprintf("%s answer %s %s", where, status, mt)
					ex := examplesOf(media.Example, media.Examples)
					if isJSON(mt) && len(ex) == 0 {
						t.Errorf("%s: no example", rw)
					}
					check(t, rw, media.Schema, ex, false)
				}
			}
		}
	}
	if ops < 50 {
		t.Fatalf("only %d operations found: is the document loaded whole?", ops)
	}
}

// The description speaks of the API alone: no file of the repository or
// outside it is named as an authority.
func TestDescriptionSelfContained(t *testing.T) {
	for _, banned := range []string{"CONTRACT", ".md", "_test.go", ".go`", "internal/httpapi", "DESIGN"} {
		if strings.Contains(string(Document), banned) {
			t.Errorf("openapi.yaml mentions %q: the document must stand on its own", banned)
		}
	}
}
