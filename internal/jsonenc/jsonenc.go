// Package jsonenc appends JSON values by hand for the few answers and log
// entries written on every request, where encoding/json's reflection cost
// more than the rest of the work. Output is byte for byte encoding/json's.
package jsonenc

import "encoding/json"

// AppendString appends s quoted. Plain printable ASCII (ids, enums, paths,
// most names) is copied; anything encoding/json would escape (control
// characters, quotes, HTML characters, non-ASCII, invalid UTF-8) goes
// through encoding/json, so the output stays identical.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
