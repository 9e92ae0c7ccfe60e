package ingest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/ingest"
)

var doc map[string]any

func init() {
	if err := json.Unmarshal(ingest.OpenAPI(), &doc); err != nil {
		panic("openapi.json is not JSON: " + err.Error())
	}
}

// checkAgainstDoc fails the test unless body conforms to the schema the
// OpenAPI document declares for (path, method, status). It understands the
// subset of JSON Schema the document uses.
func checkAgainstDoc(t testing.TB, path, method string, status int, body []byte) {
	t.Helper()
	op, _ := dig(doc, "paths", path, method).(map[string]any)
	if op == nil {
		t.Fatalf("openapi: no operation %s %s", method, path)
	}
	resp, _ := dig(op, "responses", strconv.Itoa(status)).(map[string]any)
	if resp == nil {
		t.Fatalf("openapi: %s %s does not document status %d (body %s)", method, path, status, body)
	}
	if ref, ok := resp["$ref"].(string); ok {
		resp = resolve(ref)
	}
	schema, _ := dig(resp, "content", "application/json", "schema").(map[string]any)
	if schema == nil {
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("openapi: %d body is not JSON: %s", status, body)
	}
	if err := conforms(v, schema, "$"); err != nil {
		t.Fatalf("openapi: %s %s %d body does not match the document: %v\nbody: %s", method, path, status, err, body)
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func resolve(ref string) map[string]any {
	parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	m, _ := dig(doc, parts...).(map[string]any)
	return m
}

func conforms(v any, s map[string]any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		return conforms(v, resolve(ref), at)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if err := conforms(v, sub.(map[string]any), at); err != nil {
				return err
			}
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		var errs []string
		matched := 0
		for _, sub := range one {
			if err := conforms(v, sub.(map[string]any), at); err != nil {
				errs = append(errs, err.Error())
			} else {
				matched++
			}
		}
		if matched != 1 {
			return fmt.Errorf("%s matches %d of the oneOf schemas: %s", at, matched, strings.Join(errs, "; "))
		}
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", at)
		}
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s lacks required %q", at, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, pv := range m {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s has undocumented property %q", at, k)
				}
				continue
			}
			if err := conforms(pv, ps, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s is not an array", at)
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range a {
				if err := conforms(e, items, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s is not a string", at)
		}
		if enum := asSlice(s["enum"]); enum != nil {
			found := false
			for _, e := range enum {
				found = found || e == str
			}
			if !found {
				return fmt.Errorf("%s = %q is not one of %v", at, str, enum)
			}
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s is not an integer", at)
		}
	}
	// Props of a schema without "type" (allOf extensions) still apply.
	if s["type"] == nil {
		if m, ok := v.(map[string]any); ok {
			props, _ := s["properties"].(map[string]any)
			for k, ps := range props {
				if pv, ok := m[k]; ok {
					if err := conforms(pv, ps.(map[string]any), at+"."+k); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestOpenAPIServedAndHealth(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	for path, want := range map[string]int{"/openapi.json": 200, "/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, b)
		}
		if path == "/openapi.json" && string(b) != string(ingest.OpenAPI()) {
			t.Fatal("/openapi.json does not serve the embedded document")
		}
	}
	if dig(doc, "paths", "/v1/events", "post", "responses", "202") == nil {
		t.Fatal("document lacks POST /v1/events 202")
	}
}
