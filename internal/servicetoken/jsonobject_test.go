package servicetoken

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"testing"
	"unicode/utf8"
)

type member struct{ name, value string }

// referenceObject reads data with encoding/json's token decoder: the
// members of one UTF-8 JSON object, or false when it is anything else or
// names a member twice.
func referenceObject(data []byte) ([]member, bool) {
	if !utf8.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil || seen[name] {
			return nil, false
		}
		seen[name] = true
		out = append(out, member{name, string(v)})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return out, true
}

// FuzzReadObject holds readObject's walk to encoding/json's answers: the
// same objects accepted, the same names in the same order, the same raw
// values; and readStrings to json.Unmarshal on every array value.
func FuzzReadObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"exp":1700000000.5,"iat":-0,"n":1e9}`,
		`{"s":"x\"y\\z","t":"\u00e9\ud83d\ude00","u":"/\/"}`, "{\n\t\"a\" : [ 1 , { \"b\" : [ ] } , \"]\" ] ,\r\"c\":null}",
		`{"a":true,"b":false,"c":null,"d":[],"e":{}}`, `{"a":["x","y"],"b":["x",1],"c":[]}`, `[]`, `"x"`, `{"a":1}{}`,
		`{"a":1,}`, `{"a"}`, "{\"a\":\"\xff\"}", `{"a":"}"}`, `{"a":{"a":1,"a":2}}`, `{"aud":["a","b"],"aud2":"c"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []member
		err := readObject(data, nil, func(name string, v []byte) error {
			got = append(got, member{name, string(v)})
			return nil
		})
		want, ok := referenceObject(data)
		if (err == nil) != ok {
			t.Fatalf("readObject(%q): err %v; encoding/json accepts: %v", data, err, ok)
		}
		if !ok {
			return
		}
		if !slices.Equal(got, want) {
			t.Fatalf("readObject(%q) = %q, encoding/json %q", data, got, want)
		}
		for _, m := range got {
			var ref []any // null unmarshals too: only an array is one
			refOK := m.value[0] == '[' && json.Unmarshal([]byte(m.value), &ref) == nil
			for _, x := range ref {
				if _, isString := x.(string); !isString {
					refOK = false
				}
			}
			var strs []string
			if got := readStrings([]byte(m.value), func(s string) { strs = append(strs, s) }); got != refOK {
				t.Fatalf("readStrings(%q): %v, encoding/json: %v", m.value, got, refOK)
			}
			for i := range strs {
				if strs[i] != ref[i] {
					t.Fatalf("readStrings(%q)[%d] = %q, encoding/json %q", m.value, i, strs[i], ref[i])
				}
			}
		}
	})
}
