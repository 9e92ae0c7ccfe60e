package configapi

import (
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/secrets"
)

// The request and response bodies of the API, shaped like the reference
// product's configuration API (shared/seeds/configuration-api.txt).

// registerRequest is the body of POST /eventstream.
type registerRequest struct {
	ID                 string            `json:"id"`
	IntegrationType    string            `json:"integration_type"`
	StartsAt           *string           `json:"starts_at,omitempty"`
	EndsAt             *string           `json:"ends_at,omitempty"`
	CallbackParameters *callbackParams   `json:"callback_parameters,omitempty"`
	S3Parameters       *s3Params         `json:"s3_parameters,omitempty"`
	FilterConditions   *filterConditions `json:"filter_conditions,omitempty"`
}

// patchRequest is the body of PATCH /eventstream/{id}: each block given
// replaces the stored one; blocks left out stay as they are.
type patchRequest struct {
	CallbackParameters *callbackParams   `json:"callback_parameters,omitempty"`
	S3Parameters       *s3Params         `json:"s3_parameters,omitempty"`
	FilterConditions   *filterConditions `json:"filter_conditions,omitempty"`
}

// callbackParams is a webhook target as a client sends it.
type callbackParams struct {
	CallbackURL string `json:"callback_url"`
	APIKey      string `json:"api_key,omitempty"`
	// SigningSecret is write-only (never returned). A pointer, because a PATCH
	// must tell "not sent" (keep the stored secret: a client that round-trips
	// a GET cannot send it back) from "" (remove it).
	SigningSecret *string `json:"signing_secret,omitempty"`
}

// s3Params is an S3 target as a client sends it.
type s3Params struct {
	AWSAccessKeyID     string `json:"aws_access_key_id"`
	AWSSecretAccessKey string `json:"aws_secret_access_key"`
	AWSRegion          string `json:"aws_region"`
	Bucket             string `json:"bucket"`
	KeyPrefix          string `json:"key_prefix,omitempty"`
}

// filterConditions selects events; nil slices are absent conditions.
type filterConditions struct {
	EventFilter  []string `json:"event_filter,omitempty"`
	EntityFilter []string `json:"entity_filter,omitempty"`
}

// integrationResponse is an integration as every endpoint returns it. Field
// order follows the reference samples.
type integrationResponse struct {
	ID                 string            `json:"id"`
	Status             string            `json:"status"`
	IntegrationType    string            `json:"integration_type"`
	StartsAt           string            `json:"starts_at,omitempty"`
	EndsAt             string            `json:"ends_at,omitempty"`
	CallbackParameters *callbackOut      `json:"callback_parameters,omitempty"`
	S3Parameters       *s3Out            `json:"s3_parameters,omitempty"`
	FilterConditions   *filterConditions `json:"filter_conditions,omitempty"`
	// Error is the integration's error state, absent when it has none:
	// "secrets_unreadable" when its stored secrets cannot be decrypted (its
	// key is not in SECRETS_KEYS); the secret fields are then left out.
	Error string `json:"error,omitempty"`
}

// callbackOut is the webhook target as returned: the api key redacted, the
// signing secret never shown.
type callbackOut struct {
	CallbackURL string `json:"callback_url"`
	APIKey      string `json:"api_key,omitempty"`
}

// s3Out is the S3 target as returned, the secret key redacted.
type s3Out struct {
	AWSAccessKeyID     string `json:"aws_access_key_id"`
	AWSSecretAccessKey string `json:"aws_secret_access_key"`
	AWSRegion          string `json:"aws_region"`
	Bucket             string `json:"bucket"`
	KeyPrefix          string `json:"key_prefix,omitempty"`
}

type listResponse struct {
	Integrations []integrationResponse `json:"integrations"`
}

type logEntry struct {
	Action    string `json:"action"`
	Reason    string `json:"reason"`
	CreatedAt string `json:"created_at"`
}

type logsResponse struct {
	Entries []logEntry `json:"entries"`
}

type rejectedSummary struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
}

type rejectedListResponse struct {
	RejectedEvents []rejectedSummary `json:"rejected_events"`
}

// toResponse renders an integration with its secrets redacted.
func toResponse(in *catalog.Integration) integrationResponse {
	r := integrationResponse{ID: in.ID, Status: in.Status, IntegrationType: in.Type}
	if in.StartsAt != nil {
		r.StartsAt = events.FormatTime(*in.StartsAt)
	}
	if in.EndsAt != nil {
		r.EndsAt = events.FormatTime(*in.EndsAt)
	}
	if w := in.Webhook; w != nil {
		r.CallbackParameters = &callbackOut{CallbackURL: w.CallbackURL, APIKey: secrets.Redact(w.APIKey)}
	}
	if t := in.S3; t != nil {
		r.S3Parameters = &s3Out{AWSAccessKeyID: t.AccessKeyID, AWSSecretAccessKey: secrets.Redact(t.SecretAccessKey),
			AWSRegion: t.Region, Bucket: t.Bucket, KeyPrefix: t.KeyPrefix}
	}
	if in.HasFilter() {
		r.FilterConditions = &filterConditions{EventFilter: in.EventFilter, EntityFilter: in.EntityFilter}
	}
	return r
}

// toResponseMarked is toResponse with the error state of an integration
// named in unreadable.
func toResponseMarked(in *catalog.Integration, unreadable *catalog.UnreadableError) integrationResponse {
	r := toResponse(in)
	if unreadable.Has(in) {
		r.Error = errSecretsUnreadable
	}
	return r
}

func toLogs(list []catalog.LogEntry) logsResponse {
	out := logsResponse{Entries: make([]logEntry, 0, len(list))}
	for _, e := range list {
		out.Entries = append(out.Entries, logEntry{Action: e.Action, Reason: e.Text(), CreatedAt: events.FormatTime(e.CreatedAt)})
	}
	return out
}

func toRejectedList(list []catalog.RejectedEvent) rejectedListResponse {
	out := rejectedListResponse{RejectedEvents: make([]rejectedSummary, 0, len(list))}
	for _, e := range list {
		out.RejectedEvents = append(out.RejectedEvents, rejectedSummary{ID: e.EventID, CreatedAt: events.FormatTime(e.CreatedAt)})
	}
	return out
}
