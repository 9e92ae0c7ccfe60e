package configapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/webhook"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/httpapi"
)

const (
	seedAPIKey    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	seedAWSSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// seedSamples are the request samples of shared/seeds/configuration-api.txt,
// verbatim except where noted, with the response the API must give for each
// (the sample plus status, secrets redacted), compared byte for byte.
var seedSamples = []struct {
	name, request, response string
}{
	{
		name: "webhook",
		request: `{"id": "erp-netsuite-integration-002", "integration_type": "permanent", "starts_at": "2019-01-17T12:00:00.000Z",
			"callback_parameters": {"callback_url": "https://sap01.example.com/two/events", "api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"}}`,
		response: `{"id":"erp-netsuite-integration-002","status":"running","integration_type":"permanent","starts_at":"2019-01-17T12:00:00.000Z",` +
			`"callback_parameters":{"callback_url":"https://sap01.example.com/two/events","api_key":"****VCJ9"}}`,
	},
	{
		// The seed's "aws" sample is temporary but has neither starts_at nor
		// ends_at, which the contract requires of temporary integrations; the
		// window below (both in the past, from the seed's temporary response
		// sample) is the only change.
		name: "aws",
		request: `{"id": "s3-integration-01", "integration_type": "temporary",
			"starts_at": "2019-01-17T12:00:00.000Z", "ends_at": "2019-02-21T23:59:00.000Z",
			"s3_parameters": {"aws_access_key_id": "EXAMPLEACCESSKEYID1", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
				"aws_region": "us-west-2", "bucket": "company_bucket", "key_prefix": "mycompany-integration-1"}}`,
		response: `{"id":"s3-integration-01","status":"running","integration_type":"temporary","starts_at":"2019-01-17T12:00:00.000Z","ends_at":"2019-02-21T23:59:00.000Z",` +
			`"s3_parameters":{"aws_access_key_id":"EXAMPLEACCESSKEYID1","aws_secret_access_key":"****EKEY","aws_region":"us-west-2","bucket":"company_bucket","key_prefix":"mycompany-integration-1"}}`,
	},
	{
		name: "webhookEntityAndEventFilters",
		request: `{"id": "erp-netsuite-integration-002", "integration_type": "permanent", "starts_at": "2019-01-17T12:00:00.000Z",
			"callback_parameters": {"callback_url": "https://sap01.example.com/two/events", "api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"},
			"filter_conditions": {"event_filter": ["order.created", "refund_request.issued"], "entity_filter": ["fulfillment_request", "return"]}}`,
		response: `{"id":"erp-netsuite-integration-002","status":"running","integration_type":"permanent","starts_at":"2019-01-17T12:00:00.000Z",` +
			`"callback_parameters":{"callback_url":"https://sap01.example.com/two/events","api_key":"****VCJ9"},` +
			`"filter_conditions":{"event_filter":["order.created","refund_request.issued"],"entity_filter":["fulfillment_request","return"]}}`,
	},
	{
		name: "webhookEntityFilters",
		request: `{"id": "erp-netsuite-integration-002", "integration_type": "permanent", "starts_at": "2019-01-17T12:00:00.000Z",
			"callback_parameters": {"callback_url": "https://sap01.example.com/two/events", "api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"},
			"filter_conditions": {"entity_filter": ["fulfillment_request", "return"]}}`,
		response: `{"id":"erp-netsuite-integration-002","status":"running","integration_type":"permanent","starts_at":"2019-01-17T12:00:00.000Z",` +
			`"callback_parameters":{"callback_url":"https://sap01.example.com/two/events","api_key":"****VCJ9"},` +
			`"filter_conditions":{"entity_filter":["fulfillment_request","return"]}}`,
	},
	{
		name: "webhookEventFilters",
		request: `{"id": "erp-netsuite-integration-002", "integration_type": "permanent", "starts_at": "2019-01-17T12:00:00.000Z",
			"callback_parameters": {"callback_url": "https://sap01.example.com/two/events", "api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"},
			"filter_conditions": {"event_filter": ["order.created", "refund_request.issued"]}}`,
		response: `{"id":"erp-netsuite-integration-002","status":"running","integration_type":"permanent","starts_at":"2019-01-17T12:00:00.000Z",` +
			`"callback_parameters":{"callback_url":"https://sap01.example.com/two/events","api_key":"****VCJ9"},` +
			`"filter_conditions":{"event_filter":["order.created","refund_request.issued"]}}`,
	},
}

func compact(t testing.TB, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compacting %s: %v", b, err)
	}
	return buf.String()
}

func TestSeedSamplesRegisterAndRoundTrip(t *testing.T) {
	e := newAPI(t)
	e.secret(seedAPIKey)
	e.secret(seedAWSSecret)
	for i, s := range seedSamples {
		t.Run(s.name, func(t *testing.T) {
			// One tenant per sample: several samples share an id.
			tok := e.tenant(fmt.Sprintf("seed-%d", i))
			r := e.call(http.MethodPost, BasePath, tok, s.request)
			want(t, r, http.StatusOK)
			if got := compact(t, r.body); got != s.response {
				t.Errorf("register response\n got %s\nwant %s", got, s.response)
			}
			id := r.integration(t).ID
			r = e.call(http.MethodGet, BasePath+"/"+id, tok, nil)
			want(t, r, http.StatusOK)
			if got := compact(t, r.body); got != s.response {
				t.Errorf("GET response\n got %s\nwant %s", got, s.response)
			}
			r = e.call(http.MethodGet, BasePath, tok, nil)
			want(t, r, http.StatusOK)
			if got, w := compact(t, r.body), `{"integrations":[`+s.response+`]}`; got != w {
				t.Errorf("list response\n got %s\nwant %s", got, w)
			}
		})
	}
	// The secrets are stored, encrypted, and usable by the delivery side.
	in, err := e.store.GetIntegration(context.Background(), "seed-1", "s3-integration-01")
	if err != nil {
		t.Fatal(err)
	}
	if in.S3.SecretAccessKey != seedAWSSecret || in.Status != catalog.StatusRunning {
		t.Errorf("stored S3 target = %+v, status %s", in.S3, in.Status)
	}
}

// validWebhook is a valid registration the validation table breaks one rule of.
func validWebhook() map[string]any {
	return map[string]any{
		"id": "erp-1", "integration_type": "permanent", "starts_at": "2019-01-17T12:00:00.000Z",
		"callback_parameters": map[string]any{"callback_url": "https://erp.example.com/events", "api_key": "key-0123456789"},
		"filter_conditions":   map[string]any{"event_filter": []any{"order.created"}, "entity_filter": []any{"return"}},
	}
}

func validS3() map[string]any {
	return map[string]any{
		"id": "s3-1", "integration_type": "permanent",
		"s3_parameters": map[string]any{"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "secret/key+example",
			"aws_region": "eu-central-1", "bucket": "my-bucket", "key_prefix": "exports"},
	}
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestRegisterValidation(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name  string
		base  func() map[string]any
		edit  func(m map[string]any)
		field string // the message must name it
	}{
		{"id missing", validWebhook, func(m map[string]any) { delete(m, "id") }, "id"},
		{"id empty", validWebhook, func(m map[string]any) { m["id"] = "" }, "id"},
		{"id too long", validWebhook, func(m map[string]any) { m["id"] = strings.Repeat("a", 51) }, "id"},
		{"id uppercase", validWebhook, func(m map[string]any) { m["id"] = "ERP-1" }, "id"},
		{"id underscore", validWebhook, func(m map[string]any) { m["id"] = "erp_1" }, "id"},
		{"id wrong type", validWebhook, func(m map[string]any) { m["id"] = 7 }, "id"},
		{"type missing", validWebhook, func(m map[string]any) { delete(m, "integration_type") }, "integration_type"},
		{"type unknown", validWebhook, func(m map[string]any) { m["integration_type"] = "forever" }, "integration_type"},
		{"no target", validWebhook, func(m map[string]any) { delete(m, "callback_parameters") }, "s3_parameters"},
		{"both targets", validWebhook, func(m map[string]any) { m["s3_parameters"] = validS3()["s3_parameters"] }, "s3_parameters"},
		{"callback_url missing", validWebhook, func(m map[string]any) { delete(sub(m, "callback_parameters"), "callback_url") }, "callback_url"},
		{"callback_url relative", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["callback_url"] = "/events" }, "callback_url"},
		{"callback_url ftp", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["callback_url"] = "ftp://example.com/x" }, "callback_url"},
		{"callback_url no host", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["callback_url"] = "https:///events" }, "callback_url"},
		{"callback_url opaque", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["callback_url"] = "https:example.com" }, "callback_url"},
		{"callback_url credentials", validWebhook, func(m map[string]any) {
			sub(m, "callback_parameters")["callback_url"] = "https://u:p@example.com/"
		}, "callback_url"},
		{"callback_url control char", validWebhook, func(m map[string]any) {
			sub(m, "callback_parameters")["callback_url"] = "https://example.com/\nx"
		}, "callback_url"},
		{"api_key with space", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["api_key"] = "a b" }, "api_key"},
		{"api_key redacted", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["api_key"] = "****VCJ9" }, "api_key"},
		{"signing_secret short", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["signing_secret"] = "short" }, "signing_secret"},
		{"signing_secret bad whsec", validWebhook, func(m map[string]any) {
			sub(m, "callback_parameters")["signing_secret"] = "whsec_not*base64"
		}, "signing_secret"},
		{"callback unknown field", validWebhook, func(m map[string]any) { sub(m, "callback_parameters")["headers"] = "x" }, "headers"},
		{"access key missing", validS3, func(m map[string]any) { delete(sub(m, "s3_parameters"), "aws_access_key_id") }, "aws_access_key_id"},
		{"secret key missing", validS3, func(m map[string]any) { delete(sub(m, "s3_parameters"), "aws_secret_access_key") }, "aws_secret_access_key"},
		{"secret key redacted", validS3, func(m map[string]any) { sub(m, "s3_parameters")["aws_secret_access_key"] = "****EKEY" }, "aws_secret_access_key"},
		{"region missing", validS3, func(m map[string]any) { delete(sub(m, "s3_parameters"), "aws_region") }, "aws_region"},
		{"region malformed", validS3, func(m map[string]any) { sub(m, "s3_parameters")["aws_region"] = "Mars" }, "aws_region"},
		{"bucket missing", validS3, func(m map[string]any) { delete(sub(m, "s3_parameters"), "bucket") }, "bucket"},
		{"bucket too short", validS3, func(m map[string]any) { sub(m, "s3_parameters")["bucket"] = "ab" }, "bucket"},
		{"bucket uppercase", validS3, func(m map[string]any) { sub(m, "s3_parameters")["bucket"] = "MyBucket" }, "bucket"},
		{"bucket ip address", validS3, func(m map[string]any) { sub(m, "s3_parameters")["bucket"] = "192.168.1.10" }, "bucket"},
		{"key_prefix leading slash", validS3, func(m map[string]any) { sub(m, "s3_parameters")["key_prefix"] = "/exports" }, "key_prefix"},
		{"starts_at not RFC 3339", validWebhook, func(m map[string]any) { m["starts_at"] = "17.01.2019" }, "starts_at"},
		{"starts_at in the future", validWebhook, func(m map[string]any) { m["starts_at"] = future }, "starts_at"},
		{"permanent with ends_at", validWebhook, func(m map[string]any) { m["ends_at"] = "2019-02-21T23:59:00.000Z" }, "ends_at"},
		{"temporary without starts_at", validWebhook, func(m map[string]any) {
			m["integration_type"] = "temporary"
			delete(m, "starts_at")
			m["ends_at"] = "2019-02-21T23:59:00.000Z"
		}, "starts_at"},
		{"temporary without ends_at", validWebhook, func(m map[string]any) { m["integration_type"] = "temporary" }, "ends_at"},
		{"temporary ends before start", validWebhook, func(m map[string]any) {
			m["integration_type"] = "temporary"
			m["ends_at"] = "2019-01-01T00:00:00Z"
		}, "ends_at"},
		{"temporary ends at start", validWebhook, func(m map[string]any) {
			m["integration_type"] = "temporary"
			m["ends_at"] = "2019-01-17T12:00:00Z"
		}, "ends_at"},
		{"ends_at not RFC 3339", validWebhook, func(m map[string]any) {
			m["integration_type"] = "temporary"
			m["ends_at"] = "tomorrow"
		}, "ends_at"},
		{"ends_at past year 9999 in UTC", validWebhook, func(m map[string]any) {
			m["integration_type"] = "temporary"
			m["ends_at"] = "9999-12-31T23:00:00-02:00"
		}, "ends_at"},
		{"starts_at before 1970", validWebhook, func(m map[string]any) { m["starts_at"] = "1969-12-31T23:59:59Z" }, "starts_at"},
		{"unknown event name", validWebhook, func(m map[string]any) { sub(m, "filter_conditions")["event_filter"] = []any{"order.exploded"} }, "event_filter"},
		{"unknown entity type", validWebhook, func(m map[string]any) { sub(m, "filter_conditions")["entity_filter"] = []any{"planet"} }, "entity_filter"},
		{"empty event filter", validWebhook, func(m map[string]any) { sub(m, "filter_conditions")["event_filter"] = []any{} }, "event_filter"},
		{"filter unknown field", validWebhook, func(m map[string]any) { sub(m, "filter_conditions")["status_filter"] = []any{"x"} }, "status_filter"},
		{"unknown top-level field", validWebhook, func(m map[string]any) { m["colour"] = "blue" }, "colour"},
		{"status is not writable", validWebhook, func(m map[string]any) { m["status"] = "stopped" }, "status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The unedited base must pass, so each case shows one rule at work.
			m := c.base()
			c.edit(m)
			r := e.call(http.MethodPost, BasePath, tok, m)
			want(t, r, http.StatusBadRequest, c.field)
			if code := r.errBody(t).ErrorCode; code != "validation_failed" && code != "bad_request" {
				t.Errorf("error_code = %q", code)
			}
		})
	}
	t.Run("bases are valid", func(t *testing.T) {
		for _, m := range []map[string]any{validWebhook(), validS3()} {
			want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		want(t, e.call(http.MethodPost, BasePath, tok, `{"id": `), http.StatusBadRequest, "JSON")
	})
	t.Run("empty body", func(t *testing.T) {
		want(t, e.call(http.MethodPost, BasePath, tok, ""), http.StatusBadRequest, "body")
	})
}

func TestDuplicateIDConflicts(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	r := e.call(http.MethodPost, BasePath, tok, validWebhook())
	want(t, r, http.StatusConflict, `"erp-1"`)
	// The same id is free in another tenant.
	want(t, e.call(http.MethodPost, BasePath, e.tenant("other"), validWebhook()), http.StatusOK)
}

func TestEleventhIntegrationIsRefused(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	for i := range 10 {
		m := validWebhook()
		m["id"] = fmt.Sprintf("int-%d", i)
		if i%3 == 0 { // temporary ones count too
			m["integration_type"] = "temporary"
			m["ends_at"] = "2019-02-21T23:59:00.000Z"
		}
		want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
	}
	// ... and so do stopped ones.
	want(t, e.call(http.MethodPost, BasePath+"/int-1/_stop", tok, nil), http.StatusOK)
	m := validWebhook()
	m["id"] = "int-10"
	r := e.call(http.MethodPost, BasePath, tok, m)
	want(t, r, http.StatusBadRequest, "maximum number of integrations (10) reached")
	if code := r.errBody(t).ErrorCode; code != "limit_reached" {
		t.Errorf("error_code = %q", code)
	}
	// Deleting one frees a slot.
	want(t, e.call(http.MethodDelete, BasePath+"/int-1", tok, nil), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
}

func TestLimitIsConfigurable(t *testing.T) {
	e := newAPI(t, withConfig(func(c *Config) { c.MaxIntegrations = 1 }))
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath, tok, validS3()), http.StatusBadRequest, "maximum number of integrations (1) reached")
}

func TestPatch(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	const initialKey = "initial-api-key-0001"
	e.secret(initialKey)
	e.secret(seedAPIKey)
	m := validWebhook()
	sub(m, "callback_parameters")["api_key"] = initialKey
	sub(m, "callback_parameters")["signing_secret"] = "signing-secret-0123456789"
	e.secret("signing-secret-0123456789")
	want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
	path := BasePath + "/erp-1"
	// The seed's PATCH request sample.
	seedPatch := `{"callback_parameters": {"callback_url": "https://integrator-api.example.com/v0/events", "api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"}}`

	t.Run("running is refused", func(t *testing.T) {
		r := e.call(http.MethodPatch, path, tok, seedPatch)
		want(t, r, http.StatusBadRequest, "stop it first")
	})

	want(t, e.call(http.MethodPost, path+"/_stop", tok, nil), http.StatusOK)

	t.Run("stopped takes the seed sample", func(t *testing.T) {
		// The sample moves callback_url to another origin: the stored signing
		// secret must come again with it.
		want(t, e.call(http.MethodPatch, path, tok, seedPatch), http.StatusBadRequest, "callback_parameters.signing_secret", "origin")
		withSecret := strings.Replace(seedPatch, `"api_key"`, `"signing_secret": "signing-secret-0123456789", "api_key"`, 1)
		r := e.call(http.MethodPatch, path, tok, withSecret)
		want(t, r, http.StatusOK)
		got := e.call(http.MethodGet, path, tok, nil).integration(t)
		cp := got.CallbackParameters
		if cp == nil || cp.CallbackURL != "https://integrator-api.example.com/v0/events" || cp.APIKey != "****VCJ9" {
			t.Fatalf("GET after PATCH = %+v", cp)
		}
		if got.Status != catalog.StatusStopped || got.StartsAt != "2019-01-17T12:00:00.000Z" || got.FilterConditions == nil {
			t.Errorf("PATCH of callback_parameters changed other fields: %+v", got)
		}
		in, _ := e.store.GetIntegration(context.Background(), "acme", "erp-1")
		if in.Webhook.APIKey != seedAPIKey || in.Webhook.SigningSecret != "signing-secret-0123456789" {
			t.Errorf("stored webhook = %+v; want the new key and the kept signing secret", in.Webhook)
		}
	})

	t.Run("redacted key sent back keeps the stored key", func(t *testing.T) {
		get := e.call(http.MethodGet, path, tok, nil).integration(t)
		body := map[string]any{"callback_parameters": map[string]any{
			"callback_url": "https://INTEGRATOR-api.example.com:443/v2", "api_key": get.CallbackParameters.APIKey}}
		want(t, e.call(http.MethodPatch, path, tok, body), http.StatusOK)
		in, _ := e.store.GetIntegration(context.Background(), "acme", "erp-1")
		if in.Webhook.APIKey != seedAPIKey || in.Webhook.CallbackURL != "https://INTEGRATOR-api.example.com:443/v2" {
			t.Errorf("stored webhook = %+v", in.Webhook)
		}
	})

	t.Run("other redacted key is refused", func(t *testing.T) {
		body := map[string]any{"callback_parameters": map[string]any{"callback_url": "https://integrator-api.example.com/v2", "api_key": "****zzzz"}}
		want(t, e.call(http.MethodPatch, path, tok, body), http.StatusBadRequest, "api_key")
	})

	t.Run("signing secret removed with empty string, api key with omission", func(t *testing.T) {
		body := map[string]any{"callback_parameters": map[string]any{"callback_url": "https://integrator-api.example.com/v3", "signing_secret": ""}}
		r := e.call(http.MethodPatch, path, tok, body)
		want(t, r, http.StatusOK)
		if k := r.integration(t).CallbackParameters.APIKey; k != "" {
			t.Errorf("api_key after omission = %q", k)
		}
		in, _ := e.store.GetIntegration(context.Background(), "acme", "erp-1")
		if in.Webhook.SigningSecret != "" || in.Webhook.APIKey != "" {
			t.Errorf("stored webhook = %+v", in.Webhook)
		}
	})

	t.Run("filters replaced and cleared", func(t *testing.T) {
		body := `{"filter_conditions": {"entity_filter": ["order", "customer", "order"]}}`
		r := e.call(http.MethodPatch, path, tok, body)
		want(t, r, http.StatusOK)
		got := e.call(http.MethodGet, path, tok, nil)
		if !strings.Contains(compact(t, got.body), `"filter_conditions":{"entity_filter":["order","customer"]}`) {
			t.Errorf("GET after filter PATCH = %s", got.body)
		}
		want(t, e.call(http.MethodPatch, path, tok, `{"filter_conditions": {}}`), http.StatusOK)
		if f := e.call(http.MethodGet, path, tok, nil).integration(t).FilterConditions; f != nil {
			t.Errorf("filters after clearing = %+v", f)
		}
	})

	t.Run("wrong target kind", func(t *testing.T) {
		want(t, e.call(http.MethodPatch, path, tok, map[string]any{"s3_parameters": sub(validS3(), "s3_parameters")}),
			http.StatusBadRequest, "s3_parameters")
	})

	t.Run("nothing to update", func(t *testing.T) {
		want(t, e.call(http.MethodPatch, path, tok, `{}`), http.StatusBadRequest, "nothing to update")
	})

	t.Run("immutable fields are unknown", func(t *testing.T) {
		want(t, e.call(http.MethodPatch, path, tok, `{"starts_at": "2019-01-17T12:00:00Z"}`), http.StatusBadRequest, "starts_at")
	})

	t.Run("invalid block", func(t *testing.T) {
		want(t, e.call(http.MethodPatch, path, tok, `{"callback_parameters": {"callback_url": "nope"}}`), http.StatusBadRequest, "callback_url")
	})

	t.Run("s3 target", func(t *testing.T) {
		want(t, e.call(http.MethodPost, BasePath, tok, validS3()), http.StatusOK)
		want(t, e.call(http.MethodPost, BasePath+"/s3-1/_stop", tok, nil), http.StatusOK)
		s3 := sub(validS3(), "s3_parameters")
		s3["key_prefix"] = "exports-v2"
		s3["aws_secret_access_key"] = "****mple" // redacted form of "secret/key+example"
		r := e.call(http.MethodPatch, BasePath+"/s3-1", tok, map[string]any{"s3_parameters": s3})
		want(t, r, http.StatusOK)
		in, _ := e.store.GetIntegration(context.Background(), "acme", "s3-1")
		if in.S3.KeyPrefix != "exports-v2" || in.S3.SecretAccessKey != "secret/key+example" {
			t.Errorf("stored S3 = %+v", in.S3)
		}
		// A new bucket (or region) needs the secret key again.
		s3["bucket"] = "other-bucket"
		want(t, e.call(http.MethodPatch, BasePath+"/s3-1", tok, map[string]any{"s3_parameters": s3}),
			http.StatusBadRequest, "s3_parameters.aws_secret_access_key", "bucket")
		s3["bucket"], s3["aws_region"] = "my-bucket", "us-east-1"
		want(t, e.call(http.MethodPatch, BasePath+"/s3-1", tok, map[string]any{"s3_parameters": s3}),
			http.StatusBadRequest, "s3_parameters.aws_secret_access_key")
		s3["bucket"], s3["aws_secret_access_key"] = "other-bucket", "secret/key+example"
		want(t, e.call(http.MethodPatch, BasePath+"/s3-1", tok, map[string]any{"s3_parameters": s3}), http.StatusOK)
		in, _ = e.store.GetIntegration(context.Background(), "acme", "s3-1")
		if in.S3.Bucket != "other-bucket" || in.S3.Region != "us-east-1" || in.S3.SecretAccessKey != "secret/key+example" {
			t.Errorf("stored S3 = %+v", in.S3)
		}
	})

	t.Run("temporary is refused", func(t *testing.T) {
		tm := validWebhook()
		tm["id"], tm["integration_type"], tm["ends_at"] = "tmp-1", "temporary", "2019-02-21T23:59:00.000Z"
		want(t, e.call(http.MethodPost, BasePath, tok, tm), http.StatusOK)
		// Stopped, so only the temporary rule can refuse it.
		want(t, e.call(http.MethodPost, BasePath+"/tmp-1/_stop", tok, nil), http.StatusOK)
		want(t, e.call(http.MethodPatch, BasePath+"/tmp-1", tok, seedPatch), http.StatusBadRequest, "temporary")
	})
}

func TestOtherTenantsAndUnknownIDsAre404(t *testing.T) {
	e := newAPI(t)
	owner := e.tenant("owner")
	intruder := e.tenant("intruder")
	want(t, e.call(http.MethodPost, BasePath, owner, validWebhook()), http.StatusOK)
	ev := storeRejected(t, e, "owner", "erp-1", 1)[0]
	patch := `{"filter_conditions": {}}`
	for _, id := range []string{"erp-1", "no-such-id", "Bad_ID"} {
		for _, c := range []struct{ method, path, body string }{
			{http.MethodGet, "", ""},
			{http.MethodPatch, "", patch},
			{http.MethodDelete, "", ""},
			{http.MethodPost, "/_start", ""},
			{http.MethodPost, "/_stop", ""},
			{http.MethodGet, "/logs", ""},
			{http.MethodGet, "/rejected_events", ""},
			{http.MethodGet, "/rejected_events/" + ev.EventID, ""},
			{http.MethodDelete, "/rejected_events/" + ev.EventID, ""},
			{http.MethodPost, "/rejected_events/" + ev.EventID + "/_retry", ""},
		} {
			tok := intruder
			if id != "erp-1" {
				tok = owner
			}
			t.Run(id+" "+c.method+c.path, func(t *testing.T) {
				var body any
				if c.body != "" {
					body = c.body
				}
				want(t, e.call(c.method, BasePath+"/"+id+c.path, tok, body), http.StatusNotFound)
			})
		}
	}
	if list := e.call(http.MethodGet, BasePath, intruder, nil); compact(t, list.body) != `{"integrations":[]}` {
		t.Errorf("intruder's list = %s", list.body)
	}
	// Nothing the intruder did reached the owner's integration.
	got := e.call(http.MethodGet, BasePath+"/erp-1", owner, nil).integration(t)
	if got.Status != catalog.StatusRunning || got.FilterConditions == nil {
		t.Errorf("owner's integration changed: %+v", got)
	}
	if _, err := e.store.GetRejected(context.Background(), "owner", "erp-1", ev.EventID); err != nil {
		t.Errorf("owner's rejected event: %v", err)
	}
	t.Run("unknown rejected event", func(t *testing.T) {
		for _, p := range []string{"/rejected_events/00000000-0000-0000-0000-000000000000", "/rejected_events/not-a-uuid"} {
			want(t, e.call(http.MethodGet, BasePath+"/erp-1"+p, owner, nil), http.StatusNotFound)
			want(t, e.call(http.MethodDelete, BasePath+"/erp-1"+p, owner, nil), http.StatusNotFound)
		}
	})
}

func TestUnprovisionedTenantIs404(t *testing.T) {
	e := newAPI(t)
	tok := e.token("ghost", auth.ScopeIntegrationsRead, auth.ScopeIntegrationsWrite)
	want(t, e.call(http.MethodGet, BasePath, tok, nil), http.StatusNotFound, `tenant "ghost" is not provisioned`)
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusNotFound, "not provisioned")
}

func TestAuth(t *testing.T) {
	e := newAPI(t)
	full := e.tenant("acme")
	expired, _ := auth.Mint(testHS256Secret, "acme", auth.AllTenantScopes, -time.Hour)
	forged, _ := auth.Mint("another-secret-another-secret-0123456789", "acme", auth.AllTenantScopes, time.Hour)
	readOnly := e.token("acme", auth.ScopeIntegrationsRead)
	writeOnly := e.token("acme", auth.ScopeIntegrationsWrite)
	platform := e.token("", auth.ScopePlatform, auth.ScopeIntegrationsRead)
	want(t, e.call(http.MethodPost, BasePath, full, validWebhook()), http.StatusOK)
	cases := []struct {
		name, method, path, token string
		status                    int
	}{
		{"no token", http.MethodGet, BasePath, "", http.StatusUnauthorized},
		{"garbage", http.MethodGet, BasePath, "not-a-jwt", http.StatusUnauthorized},
		{"bad signature", http.MethodGet, BasePath, forged, http.StatusUnauthorized},
		{"expired", http.MethodGet, BasePath + "/erp-1", expired, http.StatusUnauthorized},
		{"no token on a write", http.MethodPost, BasePath + "/erp-1/_stop", "", http.StatusUnauthorized},
		{"read-only token writes", http.MethodPost, BasePath + "/erp-1/_stop", readOnly, http.StatusForbidden},
		{"read-only token deletes", http.MethodDelete, BasePath + "/erp-1", readOnly, http.StatusForbidden},
		{"read-only token registers", http.MethodPost, BasePath, readOnly, http.StatusForbidden},
		{"write-only token reads", http.MethodGet, BasePath + "/erp-1", writeOnly, http.StatusForbidden},
		{"token without tenant", http.MethodGet, BasePath, platform, http.StatusForbidden},
		{"read-only token reads", http.MethodGet, BasePath + "/erp-1/logs", readOnly, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.method == http.MethodPost && c.path == BasePath {
				body = validS3()
			}
			want(t, e.call(c.method, c.path, c.token, body), c.status)
		})
	}
	// Nothing a refused request asked for happened.
	if got := e.call(http.MethodGet, BasePath+"/erp-1", full, nil).integration(t); got.Status != catalog.StatusRunning {
		t.Errorf("status after refused _stop = %s", got.Status)
	}
	want(t, e.call(http.MethodGet, BasePath+"/s3-1", full, nil), http.StatusNotFound)
}

func TestStopStartLogs(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	r := e.call(http.MethodPost, BasePath+"/erp-1/_stop", tok, nil)
	want(t, r, http.StatusOK)
	if s := r.integration(t).Status; s != catalog.StatusStopped {
		t.Errorf("_stop returned status %s", s)
	}
	r = e.call(http.MethodPost, BasePath+"/erp-1/_start", tok, nil)
	want(t, r, http.StatusOK)
	if s := r.integration(t).Status; s != catalog.StatusRunning {
		t.Errorf("_start returned status %s", s)
	}
	var logs logsResponse
	r = e.call(http.MethodGet, BasePath+"/erp-1/logs", tok, nil)
	want(t, r, http.StatusOK)
	if err := json.Unmarshal(r.body, &logs); err != nil {
		t.Fatal(err)
	}
	if len(logs.Entries) != 3 {
		t.Fatalf("entries = %+v, want registration, stop and start", logs.Entries)
	}
	if got, w := logs.Entries[0], (logEntry{Action: catalog.ActionStarted, Reason: "Started via API."}); got.Action != w.Action || got.Reason != w.Reason {
		t.Errorf("newest entry = %+v, want %+v", got, w)
	}
	if got, w := logs.Entries[1], (logEntry{Action: catalog.ActionStopped, Reason: "Stopped via API."}); got.Action != w.Action || got.Reason != w.Reason {
		t.Errorf("second entry = %+v, want %+v", got, w)
	}
	if !(logs.Entries[0].CreatedAt >= logs.Entries[1].CreatedAt && logs.Entries[1].CreatedAt >= logs.Entries[2].CreatedAt) {
		t.Errorf("entries not newest first: %+v", logs.Entries)
	}
	// Repeating a _start changes nothing and logs nothing.
	want(t, e.call(http.MethodPost, BasePath+"/erp-1/_start", tok, nil), http.StatusOK)
	r = e.call(http.MethodGet, BasePath+"/erp-1/logs", tok, nil)
	_ = json.Unmarshal(r.body, &logs)
	if len(logs.Entries) != 3 {
		t.Errorf("repeated _start logged: %+v", logs.Entries)
	}
}

func TestLogsCapAtNewest50(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	for i := range 60 {
		if err := e.store.AddLog(context.Background(), "acme", "erp-1", catalog.ActionRetry, fmt.Sprintf("entry %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	r := e.call(http.MethodGet, BasePath+"/erp-1/logs", tok, nil)
	want(t, r, http.StatusOK)
	var logs logsResponse
	if err := json.Unmarshal(r.body, &logs); err != nil {
		t.Fatal(err)
	}
	if len(logs.Entries) != 50 {
		t.Fatalf("%d entries, want 50", len(logs.Entries))
	}
	for i, en := range logs.Entries {
		if w := fmt.Sprintf("entry %02d", 59-i); en.Reason != w || en.Action != catalog.ActionRetry {
			t.Fatalf("entry %d = %+v, want reason %q", i, en, w)
		}
	}
}

// storeRejected stores n rejected events for an integration, the way the
// webhook sender does, and returns them oldest first.
func storeRejected(t *testing.T, e *apiEnv, tenant, id string, n int) []catalog.RejectedEvent {
	t.Helper()
	var out []catalog.RejectedEvent
	for i := range n {
		key := fmt.Sprintf("key-%d", i)
		// Odd spacing and number formats: the API must return these bytes unchanged.
		body := fmt.Sprintf(`{"tenant":"%s","name":"order.items_cancelled","published_at":"2010-01-01T12:00:00.000Z","payload":{"id":"o-%d", "total": 1.50,"items":[]}}`, tenant, i)
		ev := catalog.RejectedEvent{Tenant: tenant, IntegrationID: id, EventID: events.EventID(tenant, "order.items_cancelled", key).String(),
			EventName: "order.items_cancelled", IdempotencyKey: key, DomainEntityID: fmt.Sprintf("o-%d", i),
			Body: []byte(body), ResponseCode: 400, ResponseBody: "bad payload"}
		if err := e.store.AddRejected(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestRejectedEvents(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	stored := storeRejected(t, e, "acme", "erp-1", 3)
	base := BasePath + "/erp-1/rejected_events"

	r := e.call(http.MethodGet, base, tok, nil)
	want(t, r, http.StatusOK)
	var list rejectedListResponse
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.RejectedEvents) != 3 {
		t.Fatalf("list = %s", r.body)
	}
	for i, got := range list.RejectedEvents {
		if w := stored[2-i].EventID; got.ID != w {
			t.Errorf("rejected_events[%d].id = %s, want %s (newest first)", i, got.ID, w)
		}
	}

	for _, ev := range stored {
		r := e.call(http.MethodGet, base+"/"+ev.EventID, tok, nil)
		want(t, r, http.StatusOK)
		if !bytes.Equal(r.body, ev.Body) {
			t.Errorf("GET rejected event = %s, want exactly %s", r.body, ev.Body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q", ct)
		}
	}

	want(t, e.call(http.MethodDelete, base+"/"+stored[0].EventID, tok, nil), http.StatusOK)
	want(t, e.call(http.MethodGet, base+"/"+stored[0].EventID, tok, nil), http.StatusNotFound)
	want(t, e.call(http.MethodDelete, base+"/"+stored[0].EventID, tok, nil), http.StatusNotFound)
	r = e.call(http.MethodGet, base, tok, nil)
	_ = json.Unmarshal(r.body, &list)
	if len(list.RejectedEvents) != 2 {
		t.Errorf("after delete: %s", r.body)
	}
	if compact(t, e.call(http.MethodGet, BasePath+"/erp-1/rejected_events", tok, nil).body) == `{"rejected_events":null}` {
		t.Error("null list")
	}
}

func TestDeleteIntegrationRemovesLogsAndRejected(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	storeRejected(t, e, "acme", "erp-1", 2)
	r := e.call(http.MethodDelete, BasePath+"/erp-1", tok, nil)
	want(t, r, http.StatusOK)
	want(t, e.call(http.MethodGet, BasePath+"/erp-1", tok, nil), http.StatusNotFound)
	want(t, e.call(http.MethodDelete, BasePath+"/erp-1", tok, nil), http.StatusNotFound)
	var logs, rejected int
	err := e.db.Pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM integration_logs WHERE tenant = 'acme'),
		(SELECT count(*) FROM rejected_events WHERE tenant = 'acme')`).Scan(&logs, &rejected)
	if err != nil {
		t.Fatal(err)
	}
	if logs != 0 || rejected != 0 {
		t.Errorf("after delete: %d log rows, %d rejected rows remain", logs, rejected)
	}
	// Re-registering the id starts with an empty history.
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	if got := e.call(http.MethodGet, BasePath+"/erp-1/rejected_events", tok, nil); compact(t, got.body) != `{"rejected_events":[]}` {
		t.Errorf("rejected after re-register = %s", got.body)
	}
}

// loopbackRetrier is the production retrier (the webhook sender) with the
// SSRF guard letting the loopback test receivers through.
func loopbackRetrier() webhook.Retrier {
	return webhook.Retrier{Sender: webhook.NewSender(webhook.Config{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})}
}

func TestRetryRejectedEvent(t *testing.T) {
	var status atomic.Int64
	var received atomic.Value
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		received.Store(b)
		w.WriteHeader(int(status.Load()))
	}))
	defer receiver.Close()

	e := newAPI(t, withRetrier(loopbackRetrier()))
	tok := e.tenant("acme")
	m := validWebhook()
	sub(m, "callback_parameters")["callback_url"] = receiver.URL + "/hook"
	want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
	evs := storeRejected(t, e, "acme", "erp-1", 2)
	retry := func(ev catalog.RejectedEvent) response {
		return e.call(http.MethodPost, BasePath+"/erp-1/rejected_events/"+ev.EventID+"/_retry", tok, nil)
	}

	status.Store(http.StatusInternalServerError)
	want(t, retry(evs[0]), http.StatusBadGateway, "500")
	want(t, e.call(http.MethodGet, BasePath+"/erp-1/rejected_events/"+evs[0].EventID, tok, nil), http.StatusOK)

	status.Store(http.StatusBadRequest)
	want(t, retry(evs[0]), http.StatusBadGateway, "400")

	status.Store(http.StatusOK)
	want(t, retry(evs[0]), http.StatusOK)
	if got, _ := received.Load().([]byte); !bytes.Equal(got, evs[0].Body) {
		t.Errorf("receiver got %s, want %s", got, evs[0].Body)
	}
	want(t, e.call(http.MethodGet, BasePath+"/erp-1/rejected_events/"+evs[0].EventID, tok, nil), http.StatusNotFound)
	want(t, retry(evs[0]), http.StatusNotFound)

	receiver.Close() // unreachable endpoint
	want(t, retry(evs[1]), http.StatusBadGateway, "could not be reached")
	want(t, e.call(http.MethodGet, BasePath+"/erp-1/rejected_events/"+evs[1].EventID, tok, nil), http.StatusOK)
}

func TestRetryWithoutSenderIs503(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	ev := storeRejected(t, e, "acme", "erp-1", 1)[0]
	want(t, e.call(http.MethodPost, BasePath+"/erp-1/rejected_events/"+ev.EventID+"/_retry", tok, nil),
		http.StatusServiceUnavailable, "retry unavailable")
}

func TestBodyLimitUnknownFieldsAndRequestID(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	big := validWebhook()
	big["id"] = strings.Repeat("x", 300<<10)
	t.Run("declared length over the limit", func(t *testing.T) {
		r := e.call(http.MethodPost, BasePath, tok, big)
		want(t, r, http.StatusRequestEntityTooLarge, "exceeds")
		if r.errBody(t).ErrorCode != "payload_too_large" {
			t.Errorf("error body = %s", r.body)
		}
	})
	t.Run("chunked body over the limit", func(t *testing.T) {
		b, _ := json.Marshal(big)
		// A reader of unknown length makes the client send it chunked.
		r := e.call(http.MethodPost, BasePath, tok, io.MultiReader(bytes.NewReader(b)))
		want(t, r, http.StatusRequestEntityTooLarge)
	})
	t.Run("unknown field", func(t *testing.T) {
		m := validWebhook()
		m["webhook"] = true
		want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusBadRequest, `unknown field "webhook"`)
	})
	t.Run("request id echoed", func(t *testing.T) {
		r := e.call(http.MethodGet, BasePath+"/nope", tok, nil, httpapi.HeaderRequestID, "req-12345")
		want(t, r, http.StatusNotFound)
		if r.header.Get(httpapi.HeaderRequestID) != "req-12345" || r.errBody(t).RequestID != "req-12345" {
			t.Errorf("request id not echoed: header %q body %s", r.header.Get(httpapi.HeaderRequestID), r.body)
		}
		r = e.call(http.MethodGet, BasePath, tok, nil, httpapi.HeaderRequestID, "req-67890")
		if r.header.Get(httpapi.HeaderRequestID) != "req-67890" {
			t.Errorf("request id not echoed on success")
		}
	})
	t.Run("generated when absent", func(t *testing.T) {
		a := e.call(http.MethodGet, BasePath, tok, nil).header.Get(httpapi.HeaderRequestID)
		b := e.call(http.MethodGet, BasePath, tok, nil).header.Get(httpapi.HeaderRequestID)
		if a == "" || a == b {
			t.Errorf("generated request ids %q, %q", a, b)
		}
	})
}

func TestOpenAPIAndHealth(t *testing.T) {
	e := newAPI(t)
	r := e.call(http.MethodGet, "/openapi.json", "", nil)
	want(t, r, http.StatusOK)
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("served document does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("served document is invalid: %v", err)
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s == nil || s.Value.Scheme != "bearer" {
		t.Error("no bearer security scheme")
	}
	paths := []string{BasePath, BasePath + "/{integration_id}", BasePath + "/{integration_id}/_start", BasePath + "/{integration_id}/_stop",
		BasePath + "/{integration_id}/logs", BasePath + "/{integration_id}/rejected_events",
		BasePath + "/{integration_id}/rejected_events/{event_id}", BasePath + "/{integration_id}/rejected_events/{event_id}/_retry"}
	for _, p := range paths {
		if doc.Paths.Find(p) == nil {
			t.Errorf("document lacks %s", p)
		}
	}
	// The document's enums are the registry's.
	enum := func(name string) []string {
		var out []string
		for _, v := range doc.Components.Schemas[name].Value.Enum {
			out = append(out, v.(string))
		}
		return out
	}
	if got, w := enum("EventName"), events.Names(); !equalSets(got, w) {
		t.Errorf("EventName enum = %v, want %v", got, w)
	}
	if got, w := enum("EntityType"), events.EntityTypes(); !equalSets(got, w) {
		t.Errorf("EntityType enum = %v, want %v", got, w)
	}
	want(t, e.call(http.MethodGet, "/healthz", "", nil), http.StatusOK)
	want(t, e.call(http.MethodGet, "/readyz", "", nil), http.StatusOK)
	e.db.Pool.Close() // the database is gone: not ready
	r = e.call(http.MethodGet, "/readyz", "", nil)
	want(t, r, http.StatusServiceUnavailable, "catalog database unreachable")
	if strings.Contains(string(r.body), e.db.URL) || strings.Contains(string(r.body), "127.0.0.1") {
		t.Errorf("readyz reveals connection details: %s", r.body)
	}
}

func equalSets(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}

func TestCompletedTemporaryCannotStartAgain(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	m := validWebhook()
	m["integration_type"], m["ends_at"] = "temporary", "2019-02-21T23:59:00.000Z"
	want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
	// The delivery side completes the replay like this.
	if _, err := e.store.SetStatus(context.Background(), "acme", "erp-1", catalog.StatusStopped,
		catalog.ActionCompleted, "Delivered every event up to ends_at."); err != nil {
		t.Fatal(err)
	}
	want(t, e.call(http.MethodPost, BasePath+"/erp-1/_start", tok, nil), http.StatusBadRequest, "completed")
	if got := e.call(http.MethodGet, BasePath+"/erp-1", tok, nil).integration(t); got.Status != catalog.StatusStopped {
		t.Errorf("status = %s", got.Status)
	}
	// Its logs stay readable until it is deleted.
	r := e.call(http.MethodGet, BasePath+"/erp-1/logs", tok, nil)
	if !strings.Contains(string(r.body), `"action":"integration_completed"`) {
		t.Errorf("logs = %s", r.body)
	}
}
