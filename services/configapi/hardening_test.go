package configapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// TestPatchNewOriginNeedsSecrets: anyone with integrations:write could
// otherwise move callback_url to a host of their choice, send back the
// redacted api_key, and have the endpoint's real key delivered there.
func TestPatchNewOriginNeedsSecrets(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	const key, signing = "real-endpoint-key-0001", "signing-secret-0123456789"
	e.secret(key)
	e.secret(signing)
	m := validWebhook()
	sub(m, "callback_parameters")["api_key"] = key
	sub(m, "callback_parameters")["signing_secret"] = signing
	want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath+"/erp-1/_stop", tok, nil), http.StatusOK)
	redacted := secrets.Redact(key)
	stored := func() *catalog.Webhook {
		t.Helper()
		in, err := e.store.GetIntegration(context.Background(), "acme", "erp-1")
		if err != nil {
			t.Fatal(err)
		}
		return in.Webhook
	}
	patch := func(cp map[string]any) response {
		return e.call(http.MethodPatch, BasePath+"/erp-1", tok, map[string]any{"callback_parameters": cp})
	}
	for _, c := range []struct {
		name, url string
		apiKey    any // nil: left out
		field     string
	}{
		{"other host, redacted key", "https://attacker.example.net/collect", redacted, "callback_parameters.api_key"},
		{"other host, key left out", "https://attacker.example.net/collect", nil, "callback_parameters.api_key"},
		{"other scheme", "http://erp.example.com/events", redacted, "callback_parameters.api_key"},
		{"other port", "https://erp.example.com:8443/events", redacted, "callback_parameters.api_key"},
		{"subdomain", "https://evil.erp.example.com/events", redacted, "callback_parameters.api_key"},
		{"full key but no signing secret", "https://attacker.example.net/collect", "new-key-for-the-new-host", "callback_parameters.signing_secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cp := map[string]any{"callback_url": c.url}
			if c.apiKey != nil {
				cp["api_key"] = c.apiKey
			}
			want(t, patch(cp), http.StatusBadRequest, c.field, "origin")
			if w := stored(); w.CallbackURL != "https://erp.example.com/events" || w.APIKey != key || w.SigningSecret != signing {
				t.Fatalf("refused PATCH changed the stored webhook: %+v", w)
			}
		})
	}
	t.Run("same origin keeps the secrets", func(t *testing.T) {
		want(t, patch(map[string]any{"callback_url": "https://ERP.example.com./v2?x=1", "api_key": redacted}), http.StatusOK)
		if w := stored(); w.APIKey != key || w.SigningSecret != signing {
			t.Fatalf("stored webhook = %+v", w)
		}
	})
	t.Run("new origin with both secrets", func(t *testing.T) {
		want(t, patch(map[string]any{"callback_url": "https://new.example.org/hook", "api_key": "key-for-new-origin-01",
			"signing_secret": "another-signing-secret-01"}), http.StatusOK)
		if w := stored(); w.CallbackURL != "https://new.example.org/hook" || w.APIKey != "key-for-new-origin-01" || w.SigningSecret != "another-signing-secret-01" {
			t.Fatalf("stored webhook = %+v", w)
		}
	})
	t.Run("new origin removing the signing secret", func(t *testing.T) {
		want(t, patch(map[string]any{"callback_url": "https://third.example.org/hook", "api_key": "key-for-third-origin",
			"signing_secret": ""}), http.StatusOK)
		if w := stored(); w.SigningSecret != "" || w.APIKey != "key-for-third-origin" {
			t.Fatalf("stored webhook = %+v", w)
		}
	})
}

// TestPatchNewRegionNeedsTheSecretKey: the S3 rule of a new origin. A PATCH
// moving only the region (same bucket) with the redacted secret key would
// otherwise send the stored key to an endpoint it was not given for; it is
// refused, naming the field, and changes nothing; with the key in full it
// succeeds.
func TestPatchNewRegionNeedsTheSecretKey(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	const secret = "secret/key+example"
	e.secret(secret)
	want(t, e.call(http.MethodPost, BasePath, tok, validS3()), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath+"/s3-1/_stop", tok, nil), http.StatusOK)
	stored := func() *catalog.S3Target {
		t.Helper()
		in, err := e.store.GetIntegration(context.Background(), "acme", "s3-1")
		if err != nil {
			t.Fatal(err)
		}
		return in.S3
	}
	original := *stored()
	patch := func(secretKey any) response {
		sp := sub(validS3(), "s3_parameters")
		sp["aws_region"] = "us-west-2" // the bucket stays my-bucket
		if secretKey == nil {
			delete(sp, "aws_secret_access_key")
		} else {
			sp["aws_secret_access_key"] = secretKey
		}
		return e.call(http.MethodPatch, BasePath+"/s3-1", tok, map[string]any{"s3_parameters": sp})
	}
	for _, c := range []struct {
		name      string
		secretKey any // nil: left out
	}{
		{"redacted secret key", secrets.Redact(secret)},
		{"secret key left out", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			want(t, patch(c.secretKey), http.StatusBadRequest, "s3_parameters.aws_secret_access_key")
			if got := stored(); *got != original {
				t.Fatalf("refused PATCH changed the stored target: %+v", got)
			}
		})
	}
	t.Run("secret key in full", func(t *testing.T) {
		const fresh = "secret-for-us-west-2"
		e.secret(fresh)
		want(t, patch(fresh), http.StatusOK)
		got := stored()
		if got.Region != "us-west-2" || got.Bucket != original.Bucket || got.SecretAccessKey != fresh {
			t.Fatalf("stored target = %+v", got)
		}
	})
}

// TestOwnHostsRefused: a callback URL that points at the service's own
// public hosts is refused at registration and on PATCH, naming the field.
func TestOwnHostsRefused(t *testing.T) {
	own, err := webhook.ParseOwnHosts([]string{"https://events.example.com", "127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	e := newAPI(t, withConfig(func(c *Config) { c.OwnHosts = own }))
	tok := e.tenant("acme")
	for i, u := range []string{
		"https://events.example.com/v1/events",
		"https://EVENTS.example.com./v1/events",
		"http://events.example.com:9000/",
		"http://127.0.0.1:8080/v1/events",
	} {
		m := validWebhook()
		m["id"] = "own-" + strconv.Itoa(i)
		sub(m, "callback_parameters")["callback_url"] = u
		r := e.call(http.MethodPost, BasePath, tok, m)
		want(t, r, http.StatusBadRequest, "callback_parameters.callback_url", "own hosts")
	}
	m := validWebhook()
	sub(m, "callback_parameters")["callback_url"] = "http://127.0.0.1:9999/hook" // another port: not an own host
	want(t, e.call(http.MethodPost, BasePath, tok, m), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath+"/erp-1/_stop", tok, nil), http.StatusOK)
	r := e.call(http.MethodPatch, BasePath+"/erp-1", tok,
		map[string]any{"callback_parameters": map[string]any{"callback_url": "https://events.example.com/v1/events", "api_key": "k-0123456789"}})
	want(t, r, http.StatusBadRequest, "callback_parameters.callback_url", "own hosts")
}

// TestBadPathIDsAre404: ids that cannot exist are 404 with the error body on
// every route, never a 500 from the database.
func TestBadPathIDsAre404(t *testing.T) {
	e := newAPI(t, withRetrier(loopbackRetrier()))
	tok := e.tenant("acme")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	ev := storeRejected(t, e, "acme", "erp-1", 1)[0]
	badIDs := []string{"%00", "%FF", "a%00b", "%C3%28", strings.Repeat("a", 51), "ERP-1", "erp_1", "erp%201", "%E2%82%AC", "erp-1%0A"}
	badEvents := []string{"%00", "%FF", "not-a-uuid", ev.EventID + "0", strings.Replace(ev.EventID, "-", "", 1) + "-",
		"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", ev.EventID[:35] + "%00", strings.Repeat("a", 5000)}
	type route struct{ method, path string }
	var routes []route
	for _, id := range badIDs {
		for _, r := range []route{
			{http.MethodGet, ""}, {http.MethodPatch, ""}, {http.MethodDelete, ""},
			{http.MethodPost, "/_start"}, {http.MethodPost, "/_stop"}, {http.MethodGet, "/logs"},
			{http.MethodGet, "/rejected_events"}, {http.MethodGet, "/rejected_events/" + ev.EventID},
			{http.MethodDelete, "/rejected_events/" + ev.EventID}, {http.MethodPost, "/rejected_events/" + ev.EventID + "/_retry"},
		} {
			routes = append(routes, route{r.method, "/" + id + r.path})
		}
	}
	for _, evID := range badEvents {
		routes = append(routes,
			route{http.MethodGet, "/erp-1/rejected_events/" + evID}, route{http.MethodDelete, "/erp-1/rejected_events/" + evID},
			route{http.MethodPost, "/erp-1/rejected_events/" + evID + "/_retry"})
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path[:min(len(r.path), 60)], func(t *testing.T) {
			var body any
			if r.method == http.MethodPatch {
				body = `{"filter_conditions": {}}`
			}
			res := e.call(r.method, BasePath+r.path, tok, body)
			want(t, res, http.StatusNotFound)
		})
	}
	// The uppercase form of a real event id is the same UUID.
	want(t, e.call(http.MethodGet, BasePath+"/erp-1/rejected_events/"+strings.ToUpper(ev.EventID), tok, nil), http.StatusOK)
}

// TestRequestKeysExactCase: encoding/json alone would take {"ID": ...} for
// "id" and let a repeated key silently win; both are refused, naming the key.
func TestRequestKeysExactCase(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	valid := `"integration_type": "permanent", "callback_parameters": {"callback_url": "https://erp.example.com/events"}`
	for _, c := range []struct{ name, body, mention string }{
		{"uppercase top-level", `{"ID": "erp-1", ` + valid + `}`, `unknown field "ID"`},
		{"mixed-case nested", `{"id": "erp-1", "integration_type": "permanent", "callback_parameters": {"Callback_URL": "https://erp.example.com/events"}}`, `"callback_parameters.Callback_URL"`},
		{"mixed-case filter", `{"id": "erp-1", ` + valid + `, "filter_conditions": {"Event_Filter": ["order.created"]}}`, `"filter_conditions.Event_Filter"`},
		{"duplicate key", `{"id": "erp-1", "id": "erp-2", ` + valid + `}`, `duplicate field "id"`},
		{"duplicate nested key", `{"id": "erp-1", "integration_type": "permanent", "callback_parameters": {"callback_url": "https://a.example.com", "callback_url": "https://b.example.com"}}`, `duplicate field "callback_parameters.callback_url"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			want(t, e.call(http.MethodPost, BasePath, tok, c.body), http.StatusBadRequest, c.mention)
		})
	}
	if r := e.call(http.MethodGet, BasePath, tok, nil); compact(t, r.body) != `{"integrations":[]}` {
		t.Fatalf("a refused body registered something: %s", r.body)
	}
	want(t, e.call(http.MethodPost, BasePath, tok, `{"id": "erp-1", `+valid+`}`), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath+"/erp-1/_stop", tok, nil), http.StatusOK)
	want(t, e.call(http.MethodPatch, BasePath+"/erp-1", tok, `{"Filter_Conditions": {}}`), http.StatusBadRequest, `unknown field "Filter_Conditions"`)
}

func FuzzCheckKeys(f *testing.F) {
	f.Add(`{"id": "a", "callback_parameters": {"callback_url": "x"}}`)
	f.Add(`{"ID": 1}`)
	f.Add(`{"filter_conditions": {"event_filter": ["a", {"b": 1}]}}`)
	f.Add(`[{"a":1}]`)
	f.Fuzz(func(t *testing.T, body string) {
		err := checkKeys([]byte(body), reflect.TypeOf(&registerRequest{}))
		if err != nil {
			// A refusal names the key and is a 400.
			var ae *httpapi.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "field") {
				t.Fatalf("checkKeys error: %v", err)
			}
			return
		}
		// What checkKeys and the decoder accept re-encodes to a body both accept.
		var req registerRequest
		if httpapi.DecodeStrict([]byte(body), &req) != nil {
			return
		}
		again, merr := json.Marshal(&req)
		if merr != nil {
			t.Fatal(merr)
		}
		if err := checkKeys(again, reflect.TypeOf(&registerRequest{})); err != nil {
			t.Fatalf("re-encoded body %s refused: %v", again, err)
		}
	})
}

// TestRetryRateLimited: _retry makes the service call the tenant's endpoint;
// past the tenant's bucket it answers 429 with Retry-After and keeps the event.
func TestRetryRateLimited(t *testing.T) {
	e := newAPI(t, withRetrier(retrierFunc(func() (int, error) { return http.StatusServiceUnavailable, nil })),
		withConfig(func(c *Config) { c.RetryRate, c.RetryBurst = 0.01, 2 }))
	tok := e.tenant("acme")
	other := e.tenant("other")
	want(t, e.call(http.MethodPost, BasePath, tok, validWebhook()), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath, other, validWebhook()), http.StatusOK)
	ev := storeRejected(t, e, "acme", "erp-1", 1)[0]
	evOther := storeRejected(t, e, "other", "erp-1", 1)[0]
	path := BasePath + "/erp-1/rejected_events/" + ev.EventID + "/_retry"
	want(t, e.call(http.MethodPost, path, tok, nil), http.StatusBadGateway)
	want(t, e.call(http.MethodPost, path, tok, nil), http.StatusBadGateway)
	r := e.call(http.MethodPost, path, tok, nil)
	want(t, r, http.StatusTooManyRequests, "retry after")
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	if r.errBody(t).ErrorCode != "rate_limited" {
		t.Fatalf("error body = %s", r.body)
	}
	want(t, e.call(http.MethodGet, BasePath+"/erp-1/rejected_events/"+ev.EventID, tok, nil), http.StatusOK)
	// Another tenant has its own bucket.
	want(t, e.call(http.MethodPost, BasePath+"/erp-1/rejected_events/"+evOther.EventID+"/_retry", other, nil), http.StatusBadGateway)
}

type retrierFunc func() (int, error)

func (f retrierFunc) Retry(context.Context, *catalog.Integration, *catalog.RejectedEvent) (int, error) {
	return f()
}

// TestUnreadableSecretsMarked: an integration whose secrets were sealed with a
// key no longer in the ring is listed with an error state instead of failing
// the tenant's whole list; it can be read, stopped and deleted, not updated.
func TestUnreadableSecretsMarked(t *testing.T) {
	e := newAPI(t)
	tok := e.tenant("acme")
	good := validWebhook()
	bad := validWebhook()
	bad["id"] = "lost-key"
	s3 := validS3()
	want(t, e.call(http.MethodPost, BasePath, tok, good), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath, tok, bad), http.StatusOK)
	want(t, e.call(http.MethodPost, BasePath, tok, s3), http.StatusOK)
	gone, err := secrets.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.store.Pool().Exec(ctx, `UPDATE integrations SET api_key_enc = $1 WHERE tenant = 'acme' AND id = 'lost-key'`,
		gone.Seal("key-0123456789", "acme/lost-key/api_key")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Pool().Exec(ctx, `UPDATE integrations SET aws_secret_enc = $1 WHERE tenant = 'acme' AND id = 's3-1'`,
		[]byte{2, 0, 0, 0, 0, 9, 9, 9}); err != nil {
		t.Fatal(err)
	}

	var list listResponse
	r := e.call(http.MethodGet, BasePath, tok, nil)
	want(t, r, http.StatusOK)
	decode(t, r.body, &list)
	states := map[string]integrationResponse{}
	for _, in := range list.Integrations {
		states[in.ID] = in
	}
	if len(states) != 3 || states["erp-1"].Error != "" || states["erp-1"].CallbackParameters.APIKey == "" {
		t.Fatalf("readable integration: %+v", states["erp-1"])
	}
	if in := states["lost-key"]; in.Error != "secrets_unreadable" || in.CallbackParameters == nil || in.CallbackParameters.APIKey != "" {
		t.Fatalf("unreadable webhook: %+v", in)
	}
	if in := states["s3-1"]; in.Error != "secrets_unreadable" || in.S3Parameters == nil || in.S3Parameters.AWSSecretAccessKey != "" {
		t.Fatalf("unreadable S3: %+v", in)
	}
	if got := e.call(http.MethodGet, BasePath+"/lost-key", tok, nil).integration(t); got.Error != "secrets_unreadable" {
		t.Fatalf("GET of the unreadable integration: %+v", got)
	}
	stopped := e.call(http.MethodPost, BasePath+"/lost-key/_stop", tok, nil)
	want(t, stopped, http.StatusOK)
	if got := stopped.integration(t); got.Status != catalog.StatusStopped || got.Error != "secrets_unreadable" {
		t.Fatalf("_stop of the unreadable integration: %+v", got)
	}
	r = e.call(http.MethodPost, BasePath+"/lost-key/_start", tok, nil)
	want(t, r, http.StatusConflict)
	if r.errBody(t).ErrorCode != "secrets_unreadable" {
		t.Fatalf("_start error = %s", r.body)
	}
	r = e.call(http.MethodPatch, BasePath+"/lost-key", tok, `{"filter_conditions": {}}`)
	want(t, r, http.StatusConflict, "SECRETS_KEYS")
	if r.errBody(t).ErrorCode != "secrets_unreadable" {
		t.Fatalf("PATCH error = %s", r.body)
	}
	want(t, e.call(http.MethodDelete, BasePath+"/lost-key", tok, nil), http.StatusOK)
}

func decode(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

func FuzzPathIDs(f *testing.F) {
	for _, s := range []string{"erp-1", "\x00", "\xff", "ERP", "0190c0de-0000-7000-8000-000000000001", "0190C0DE-0000-7000-8000-00000000000Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validID(s) {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || len(s) > maxIDLen || strings.ToLower(s) != s {
				t.Fatalf("validID accepted %q", s)
			}
		}
		if validUUID(s) {
			b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
			if err != nil || len(b) != 16 || strings.Count(s, "-") != 4 || s[8] != '-' || s[23] != '-' {
				t.Fatalf("validUUID accepted %q (%v)", s, err)
			}
		}
	})
}

func FuzzSameOrigin(f *testing.F) {
	f.Add("https://a.example.com/x", "https://A.example.com:443/y")
	f.Add("http://a.example.com", "https://a.example.com")
	f.Add("http://[::1]:80/", "http://[::1]/")
	f.Fuzz(func(t *testing.T, a, b string) {
		if sameOrigin(a, b) != sameOrigin(b, a) {
			t.Fatalf("sameOrigin(%q, %q) is not symmetric", a, b)
		}
		if sameOrigin(a, b) && !sameOrigin(a, a) {
			t.Fatalf("sameOrigin(%q, %q) but not reflexive", a, b)
		}
	})
}
