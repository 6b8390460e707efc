// Package openapi embeds the contract as OpenAPI 3.1, served at /openapi.yaml.
package openapi

import _ "embed"

// Document is openapi.yaml.
//
//go:embed openapi.yaml
var Document []byte
