package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// A compressed request body is refused unread: Fiber would inflate it
// without a bound (1 MiB of gzip is a gigabyte of zeros).
func TestCompressedBodyRefused(t *testing.T) {
	e := newTestEnv(t)
	key := e.testKey(t)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte(`{"name":"compressed"}`))
	_ = w.Close()
	post := func(path, contentType, encoding string, body []byte) (int, []byte) {
		t.Helper()
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", contentType)
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		res, err := e.srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}

	for _, enc := range []string{"gzip", "deflate", "br", "GZIP"} {
		status, body := post("/v1/api_keys", "application/json", enc, gz.Bytes())
		var env errEnvelope
		if err := json.Unmarshal(body, &env); err != nil || status != 415 || env.Error.Code != nexus.CodeUnsupportedMediaType {
			t.Errorf("Content-Encoding %s: %d %s, want 415 unsupported_media_type", enc, status, body)
		}
	}
	status, body := post("/oauth/token", "application/x-www-form-urlencoded", "gzip", gz.Bytes())
	if status != 400 || !bytes.Contains(body, []byte(`"error":"invalid_request"`)) {
		t.Errorf("POST /oauth/token gzip: %d %s, want 400 invalid_request", status, body)
	}
	if status, body := post("/v1/api_keys", "application/json", "identity", []byte(`{"name":"plain"}`)); status != 201 {
		t.Errorf("Content-Encoding identity: %d %s, want 201", status, body)
	}
	req := httptest.NewRequest("GET", "/v1/api_keys", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := e.srv.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var keys struct {
		Data []struct{ Name string } `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&keys); err != nil || len(keys.Data) != 2 || keys.Data[0].Name != "plain" {
		t.Errorf("keys %+v (%v), want the plain one and the test key only", keys.Data, err)
	}
}
