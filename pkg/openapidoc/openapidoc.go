// Package openapidoc loads an API's OpenAPI 3 document (kept as YAML in the
// service for review) and serves it as JSON: one loader for every service.
package openapidoc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// Load parses and validates the document.
func Load(yaml []byte) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(yaml)
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validating the OpenAPI document: %w", err)
	}
	return doc, nil
}

// JSON is the document as served at /openapi.json.
func JSON(yaml []byte) ([]byte, error) {
	doc, err := Load(yaml)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding the OpenAPI document: %w", err)
	}
	return b, nil
}
