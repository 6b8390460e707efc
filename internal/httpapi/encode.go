package httpapi

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"
)

// GET /v1/partner is the request partners poll most; its answer is written
// by hand instead of through encoding/json's reflection, byte for byte as
// json.Marshal writes it (encode_test.go holds the two side by side).

// sendPartner answers v as JSON; the caller has checked that v.CreatedAt
// can be written (see jsonTimeOK).
func sendPartner(c *fiber.Ctx, v *partnerView) error {
	var buf [512]byte
	c.Response().SetBody(v.appendJSON(buf[:0]))
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

func (v *partnerView) appendJSON(b []byte) []byte {
	b = append(b, `{"object":`...)
	b = appendJSONString(b, v.Object)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, v.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, v.Name)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(v.Status))
	b = append(b, `,"environment":`...)
	b = appendJSONString(b, string(v.Environment))
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, v.CreatedAt)
	b = append(b, `,"credential":{"id":`...)
	b = appendJSONString(b, v.Credential.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, string(v.Credential.Type))
	b = append(b, `,"scopes":[`...)
	for i, s := range v.Credential.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, "]}}"...)
}

// appendJSONString appends s quoted. Strings of plain printable ASCII (ids,
// enums, most names) are copied; anything encoding/json would escape (HTML
// characters included) goes through encoding/json so the output stays
// identical.
func appendJSONString(b []byte, s string) []byte {
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
