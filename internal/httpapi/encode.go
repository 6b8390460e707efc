package httpapi

import (
	"time"

	"github.com/nexus-fintech/nexus/internal/jsonenc"
)

// GET /v1/partner is the request partners poll most. Its answer is a
// function of the principal alone, so it is encoded once per principal and
// kept on it (nexus.Principal.View): a changed partner or credential comes
// with a new principal. It is written by hand, byte for byte as
// json.Marshal writes it (encode_test.go holds the two side by side).

func (v *partnerView) appendJSON(b []byte) []byte {
	b = append(b, `{"object":`...)
	b = jsonenc.AppendString(b, v.Object)
	b = append(b, `,"id":`...)
	b = jsonenc.AppendString(b, v.ID)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, v.Name)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, string(v.Status))
	b = append(b, `,"environment":`...)
	b = jsonenc.AppendString(b, string(v.Environment))
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, v.CreatedAt)
	b = append(b, `,"credential":{"id":`...)
	b = jsonenc.AppendString(b, v.Credential.ID)
	b = append(b, `,"type":`...)
	b = jsonenc.AppendString(b, string(v.Credential.Type))
	b = append(b, `,"scopes":[`...)
	for i, s := range v.Credential.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, s)
	}
	return append(b, "]}}"...)
}

// jsonTimeOK reports whether time.Time.MarshalJSON accepts t (years 0 to
// 9999); appendJSONTime writes only those.
func jsonTimeOK(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }

// appendJSONTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
