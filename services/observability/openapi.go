package observability

import (
	_ "embed"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/eventstream/eventstream/pkg/openapidoc"
)

// openAPIYAML is the API's OpenAPI 3 document, kept as YAML for review (and
// linted with Redocly by make test) and served as JSON at /openapi.json.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPI returns the parsed, validated OpenAPI document.
func OpenAPI() (*openapi3.T, error) { return openapidoc.Load(openAPIYAML) }

func openAPIJSON() ([]byte, error) { return openapidoc.JSON(openAPIYAML) }
