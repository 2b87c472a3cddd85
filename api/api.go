// Package api holds token-service's contract as an OpenAPI 3.1 document, served at
// GET /openapi.yaml and checked against the router and every handler test's traffic.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
