package servicetoken

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The header and the claims set are read by walking JSON that
// encoding/json has already found valid: encoding/json alone cannot see
// duplicate names (it keeps the last) and matches names in any case, and
// its token decoder cost an uncached verification 107 allocations more
// than this walk (FuzzReadObject holds the two to the same answers).

// readObject calls member for each member of the single JSON object in
// data, in order, with the member's raw value. It refuses anything else:
// text that is not UTF-8 (RFC 8259 §8.1; a decoder would quietly replace
// it) or not one JSON object, a name used twice (RFC 7515 §4, RFC 7519 §4),
// and a name that differs from one of known only by case.
func readObject(data []byte, known []string, member func(name string, v []byte) error) error {
	if !utf8.Valid(data) || !json.Valid(data) {
		return invalid("the header and claims must be UTF-8 JSON")
	}
	// From here on data is valid JSON: the walk needs no error handling.
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return invalid("the header and claims must be JSON objects")
	}
	seen := make(map[string]struct{}, 8)
	for i = skipSpace(data, i+1); data[i] != '}'; {
		end := stringEnd(data, i)
		name := unquote(data[i:end])
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		vEnd := valueEnd(data, i)
		if _, dup := seen[name]; dup {
			return invalid("a header parameter or claim appears twice")
		}
		seen[name] = struct{}{}
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				return invalid("names are case-sensitive: only " + k + " is " + k)
			}
		}
		if err := member(name, data[i:vEnd]); err != nil {
			return err
		}
		if i = skipSpace(data, vEnd); data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return nil
}

// readStrings calls each for every element of the JSON array v, refusing
// an element that is not a string. v must be valid JSON.
func readStrings(v []byte, each func(s string)) bool {
	if len(v) == 0 || v[0] != '[' {
		return false
	}
	for i := skipSpace(v, 1); v[i] != ']'; {
		if v[i] != '"' {
			return false
		}
		end := stringEnd(v, i)
		each(unquote(v[i:end]))
		if i = skipSpace(v, end); v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at i.
func stringEnd(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++ // the escaped byte; \uXXXX continues with plain hex digits
		}
	}
	return i + 1
}

// valueEnd returns the index just past the JSON value starting at i.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	// A number, true, false or null runs to the next delimiter.
	for i < len(data) && !strings.ContainsRune(",}] \t\n\r", rune(data[i])) {
		i++
	}
	return i
}

// unquote returns the JSON string literal q's value; only one with escapes
// needs the decoder.
func unquote(q []byte) string {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1])
	}
	var s string
	_ = json.Unmarshal(q, &s) // q is a valid string literal
	return s
}
