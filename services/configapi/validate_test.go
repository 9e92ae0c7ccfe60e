package configapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/secrets"
)

// fuzzNow is a fixed "now" so a fuzz input's verdict never depends on the clock.
var fuzzNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// checkValidationError fails unless err is a 400 naming a field.
func checkValidationError(t *testing.T, err error) {
	t.Helper()
	var ae *httpapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, ": ") {
		t.Fatalf("validation error %#v is not a 400 naming a field", err)
	}
}

// checkStorable fails unless every string of in can be stored in Postgres and
// sent in headers: valid UTF-8 without control characters, known filter values.
func checkStorable(t *testing.T, in *catalog.Integration) {
	t.Helper()
	strs := []string{in.ID, in.Type}
	if w := in.Webhook; w != nil {
		strs = append(strs, w.CallbackURL, w.APIKey, w.SigningSecret)
	}
	if s := in.S3; s != nil {
		strs = append(strs, s.AccessKeyID, s.SecretAccessKey, s.Region, s.Bucket, s.KeyPrefix)
	}
	for _, s := range strs {
		if !clean(s) {
			t.Fatalf("validated integration holds an unstorable string %q", s)
		}
	}
	if (in.Webhook == nil) == (in.S3 == nil) {
		t.Fatalf("validated integration has %v webhook and %v s3 target", in.Webhook != nil, in.S3 != nil)
	}
	if len(in.ID) == 0 || len(in.ID) > maxIDLen || !idPattern.MatchString(in.ID) {
		t.Fatalf("validated id %q", in.ID)
	}
	for _, n := range in.EventFilter {
		if !events.IsKnownName(n) {
			t.Fatalf("validated unknown event name %q", n)
		}
	}
	for _, n := range in.EntityFilter {
		if !events.IsKnownEntityType(n) {
			t.Fatalf("validated unknown entity type %q", n)
		}
	}
}

// requestFromResponse is what a client re-registering what GET showed would
// send (with the real secrets, which GET never shows).
func requestFromResponse(r integrationResponse, in *catalog.Integration) *registerRequest {
	req := &registerRequest{ID: r.ID, IntegrationType: r.IntegrationType}
	if r.StartsAt != "" {
		req.StartsAt = &r.StartsAt
	}
	if r.EndsAt != "" {
		req.EndsAt = &r.EndsAt
	}
	if r.CallbackParameters != nil {
		ss := in.Webhook.SigningSecret
		req.CallbackParameters = &callbackParams{CallbackURL: r.CallbackParameters.CallbackURL, APIKey: in.Webhook.APIKey, SigningSecret: &ss}
	}
	if r.S3Parameters != nil {
		p := *r.S3Parameters
		req.S3Parameters = &s3Params{AWSAccessKeyID: p.AWSAccessKeyID, AWSSecretAccessKey: in.S3.SecretAccessKey,
			AWSRegion: p.AWSRegion, Bucket: p.Bucket, KeyPrefix: p.KeyPrefix}
	}
	req.FilterConditions = r.FilterConditions
	return req
}

func FuzzValidateRegister(f *testing.F) {
	for _, s := range seedSamples {
		f.Add([]byte(s.request))
	}
	for _, m := range []map[string]any{validWebhook(), validS3()} {
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"t-1","integration_type":"temporary","starts_at":"2019-01-17T12:00:00.123456789+02:00","ends_at":"2019-01-17T12:00:00.1239Z","callback_parameters":{"callback_url":"http://[::1]:8080/x","signing_secret":"whsec_MDEyMzQ1Njc4OWFiY2RlZg=="}}`))
	f.Add([]byte(`{"id":"a","integration_type":"permanent","callback_parameters":{"callback_url":"https://h/\u0000"},"filter_conditions":{"event_filter":[]}}`))
	f.Add([]byte(`{"id":"x","integration_type":"permanent","s3_parameters":{"aws_access_key_id":"k","aws_secret_access_key":"s","aws_region":"us-east-1","bucket":"b..c"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req registerRequest
		if err := httpapi.DecodeStrict(body, &req); err != nil {
			return
		}
		checkRegister(t, &req)
	})
}

// FuzzValidateRegisterFields fuzzes the field values directly, which reaches
// the per-field rules far more often than mutating JSON text does.
func FuzzValidateRegisterFields(f *testing.F) {
	f.Add("erp-1", "permanent", "2019-01-17T12:00:00.000Z", "", false, "https://sap01.example.com/two/events", seedAPIKey, "", "", "", "order.created", "return")
	f.Add("s3-integration-01", "temporary", "2019-01-17T12:00:00.000Z", "2019-02-21T23:59:00.000Z", true,
		"EXAMPLEACCESSKEYID1", seedAWSSecret, "us-west-2", "company_bucket", "mycompany-integration-1", "", "")
	f.Add("edge", "temporary", "1970-01-01T00:00:00+00:00", "9999-12-31T23:00:00-02:00", false, "https://e.example", "", "", "", "", "", "")
	f.Add("t", "temporary", "2019-01-17T12:00:00.0005Z", "2019-01-17T12:00:00.0009Z", false, "http://[::1]:80", "", "", "", "whsec_MDEyMzQ1Njc4OWFiY2RlZg==", "", "")
	f.Fuzz(func(t *testing.T, id, typ, startsAt, endsAt string, s3 bool, a, b, c, d, e, eventName, entityType string) {
		req := &registerRequest{ID: id, IntegrationType: typ}
		if startsAt != "" {
			req.StartsAt = &startsAt
		}
		if endsAt != "" {
			req.EndsAt = &endsAt
		}
		if s3 {
			req.S3Parameters = &s3Params{AWSAccessKeyID: a, AWSSecretAccessKey: b, AWSRegion: c, Bucket: d, KeyPrefix: e}
		} else {
			req.CallbackParameters = &callbackParams{CallbackURL: a, APIKey: b}
			if e != "" {
				req.CallbackParameters.SigningSecret = &e
			}
		}
		if eventName != "" || entityType != "" {
			req.FilterConditions = &filterConditions{}
			if eventName != "" {
				req.FilterConditions.EventFilter = strings.Split(eventName, ",")
			}
			if entityType != "" {
				req.FilterConditions.EntityFilter = strings.Split(entityType, ",")
			}
		}
		checkRegister(t, req)
	})
}

// checkRegister validates req and, when it is valid, checks what a valid
// registration promises: storable, secrets not shown, and a stable round trip.
func checkRegister(t *testing.T, req *registerRequest) {
	t.Helper()
	{
		in, err := validateRegister(req, fuzzNow)
		if err != nil {
			checkValidationError(t, err)
			return
		}
		checkStorable(t, in)
		in.Status = catalog.StatusRunning
		resp := toResponse(in)
		out, err := json.Marshal(resp)
		if err != nil {
			t.Fatalf("encoding the response: %v", err)
		}
		for _, s := range []string{apiKeyOf(in), s3SecretOf(in), signingOf(in)} {
			if len(s) > 8 && strings.Contains(string(out), s) {
				t.Fatalf("response %s shows the secret %q", out, s)
			}
		}
		// What GET shows, sent again, is valid and describes the same integration.
		again, err := validateRegister(requestFromResponse(resp, in), fuzzNow)
		if err != nil {
			t.Fatalf("re-registering the response %s: %v", out, err)
		}
		again.Status = in.Status
		if !reflect.DeepEqual(again, in) {
			t.Fatalf("round trip changed the integration:\n got %+v\nwant %+v", again, in)
		}
	}
}

func apiKeyOf(in *catalog.Integration) string {
	if in.Webhook == nil {
		return ""
	}
	return in.Webhook.APIKey
}

func signingOf(in *catalog.Integration) string {
	if in.Webhook == nil {
		return ""
	}
	return in.Webhook.SigningSecret
}

func s3SecretOf(in *catalog.Integration) string {
	if in.S3 == nil {
		return ""
	}
	return in.S3.SecretAccessKey
}

func FuzzValidatePatch(f *testing.F) {
	f.Add([]byte(`{"callback_parameters": {"callback_url": "https://integrator-api.example.com/v0/events", "api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"}}`))
	f.Add([]byte(`{"callback_parameters": {"callback_url": "https://x.example.com", "api_key": "****-key", "signing_secret": ""}}`))
	f.Add([]byte(`{"s3_parameters": {"aws_access_key_id": "k", "aws_secret_access_key": "****cret", "aws_region": "us-east-1", "bucket": "bkt"}}`))
	f.Add([]byte(`{"filter_conditions": {"event_filter": ["order.created", "order.created"], "entity_filter": ["return"]}}`))
	f.Add([]byte(`{"filter_conditions": {}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req patchRequest
		if err := httpapi.DecodeStrict(body, &req); err != nil {
			return
		}
		if err := validatePatch(&req); err != nil {
			checkValidationError(t, err)
			return
		}
		for _, in := range []*catalog.Integration{
			{ID: "hook", Type: catalog.TypePermanent, Status: catalog.StatusStopped,
				Webhook: &catalog.Webhook{CallbackURL: "https://old.example.com", APIKey: "stored-key", SigningSecret: "stored-signing-secret"}},
			{ID: "bucket", Type: catalog.TypePermanent, Status: catalog.StatusStopped,
				S3: &catalog.S3Target{AccessKeyID: "AK", SecretAccessKey: "stored-secret", Region: "us-east-1", Bucket: "bkt"}},
		} {
			target := in.Target()
			if err := applyPatch(in, &req); err != nil {
				checkValidationError(t, err)
				continue
			}
			if in.Target() != target {
				t.Fatalf("patch changed the target kind from %s to %s", target, in.Target())
			}
			checkStorable(t, in)
			// A redacted-looking value is never stored as a secret.
			for _, s := range []string{apiKeyOf(in), s3SecretOf(in)} {
				if secrets.IsRedacted(s) {
					t.Fatalf("stored a redacted value %q as a secret", s)
				}
			}
		}
	})
}

func TestApplyPatchRefusesRunningAndTemporary(t *testing.T) {
	req := &patchRequest{FilterConditions: &filterConditions{}}
	for _, c := range []struct {
		in   catalog.Integration
		code string
	}{
		{catalog.Integration{ID: "a", Type: catalog.TypePermanent, Status: catalog.StatusRunning, Webhook: &catalog.Webhook{}}, "integration_running"},
		{catalog.Integration{ID: "b", Type: catalog.TypeTemporary, Status: catalog.StatusStopped, Webhook: &catalog.Webhook{}}, "integration_temporary"},
		{catalog.Integration{ID: "c", Type: catalog.TypeTemporary, Status: catalog.StatusRunning, Webhook: &catalog.Webhook{}}, "integration_temporary"},
	} {
		var ae *httpapi.Error
		if err := applyPatch(&c.in, req); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != c.code {
			t.Errorf("%s/%s: err = %v, want 400 %s", c.in.Type, c.in.Status, err, c.code)
		}
	}
}

func TestValidateRegisterCollectsEveryProblem(t *testing.T) {
	_, err := validateRegister(&registerRequest{ID: "BAD", IntegrationType: "x"}, fuzzNow)
	var ae *httpapi.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	for _, f := range []string{"id:", "integration_type:", "callback_parameters:"} {
		if !strings.Contains(ae.Message, f) {
			t.Errorf("message %q does not name %s", ae.Message, f)
		}
	}
}

func TestStartsAtClockSkew(t *testing.T) {
	for _, c := range []struct {
		offset time.Duration
		ok     bool
	}{{-time.Hour, true}, {0, true}, {clockSkew - time.Second, true}, {clockSkew + time.Second, false}} {
		s := fuzzNow.Add(c.offset).Format(time.RFC3339)
		req := &registerRequest{ID: "a", IntegrationType: catalog.TypePermanent, StartsAt: &s,
			CallbackParameters: &callbackParams{CallbackURL: "https://example.com"}}
		if _, err := validateRegister(req, fuzzNow); (err == nil) != c.ok {
			t.Errorf("starts_at now%+v: err = %v, want ok=%v", c.offset, err, c.ok)
		}
	}
}
