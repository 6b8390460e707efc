// Package openapi embeds the contract as OpenAPI 3.1, served at
// /openapi.yaml (and /openapi.json), and the documentation UI at /docs.
package openapi

import (
	"embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Document is openapi.yaml.
//
//go:embed openapi.yaml
var Document []byte

// Docs holds the documentation UI: docs/index.html and docs/init.js around
// the vendored Redoc bundle (docs/redoc, see its VENDORED.md), served from
// the binary so that /docs works offline and needs no CDN.
//
//go:embed docs
var Docs embed.FS

// JSON returns the document as JSON, for the documentation UI and clients
// that prefer it.
func JSON() ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(Document, &v); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return json.Marshal(v)
}
