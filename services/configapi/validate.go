package configapi

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/secrets"
)

// The request validators: pure functions over the decoded request bodies, so
// they can be fuzzed without a server. Every message starts with the field it
// is about ("callback_parameters.callback_url: ...").
//
// Decisions beyond the contract's rules, all documented in openapi.yaml too:
//   - starts_at may lie up to clockSkew in the future, so a client whose clock
//     runs slightly ahead can still say "from now".
//   - Timestamps are kept at millisecond precision, the precision of the API's
//     time format, so what GET shows is exactly what is stored and used.
//   - An empty event_filter or entity_filter list is refused (it would silently
//     mean "no condition"); filter_conditions {} means "no filters".
//   - Secrets that look redacted ("****...") are refused on register; on PATCH
//     the exact redacted form of the stored secret keeps the stored secret, so a
//     console can send back what GET returned (see applyPatch) - but only while
//     callback_url keeps its origin (scheme, host, port) and an S3 target its
//     bucket and region: a new origin needs api_key (and signing_secret, when
//     one is stored) in the same request, a new bucket or region the
//     aws_secret_access_key.
//   - Path ids that cannot exist (not an integration id, not a UUID) are 404.
//   - Object keys must match field names exactly (encoding/json alone matches
//     them case-insensitively) and may not repeat.
//   - signing_secret (write-only, for Standard Webhooks signatures) is either
//     "whsec_" + base64 of 16..64 bytes (used decoded, as Standard Webhooks
//     does) or 16..256 visible ASCII characters (used as given).
//   - Every stored string is valid UTF-8 without control characters, so
//     Postgres accepts it and logs and headers cannot be forged with it.

const (
	maxIDLen          = 50
	maxURLLen         = 2048
	maxAPIKeyLen      = 4096
	maxAccessKeyLen   = 128
	maxSecretKeyLen   = 1024
	maxKeyPrefixLen   = 512
	minSigningLen     = 16
	maxSigningLen     = 256
	signingPrefix     = "whsec_"
	clockSkew         = 30 * time.Second
	maxValueInMessage = 64
)

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9-]+$`)
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	// Bucket names as S3 accepts them, including the legacy underscore form
	// the reference samples use ("sap_export").
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$`)
)

// fieldErrors collects "field: problem" messages for one request.
type fieldErrors []string

func (f *fieldErrors) add(field, format string, args ...any) {
	*f = append(*f, field+": "+fmt.Sprintf(format, args...))
}

// err is nil without problems, else one 400 naming every offending field.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return httpapi.NewError(http.StatusBadRequest, "validation_failed", strings.Join(f, "; "))
}

// validateRegister checks a registration and returns the integration it
// describes (no tenant, not yet stored). now is the time starts_at is judged against.
func validateRegister(r *registerRequest, now time.Time) (*catalog.Integration, error) {
	var fe fieldErrors
	in := &catalog.Integration{ID: r.ID, Type: r.IntegrationType}

	switch {
	case r.ID == "":
		fe.add("id", "is required")
	case len(r.ID) > maxIDLen || !idPattern.MatchString(r.ID):
		fe.add("id", "must be 1 to %d characters of a-z, 0-9 and '-', got %s", maxIDLen, quote(r.ID))
	}

	switch r.IntegrationType {
	case catalog.TypePermanent, catalog.TypeTemporary:
	case "":
		fe.add("integration_type", "is required (temporary or permanent)")
	default:
		fe.add("integration_type", "must be temporary or permanent, got %s", quote(r.IntegrationType))
	}

	in.StartsAt = parseTime(&fe, "starts_at", r.StartsAt)
	in.EndsAt = parseTime(&fe, "ends_at", r.EndsAt)
	if in.StartsAt != nil && in.StartsAt.After(now.Add(clockSkew)) {
		fe.add("starts_at", "must not be in the future")
	}
	switch r.IntegrationType {
	case catalog.TypePermanent:
		if r.EndsAt != nil {
			fe.add("ends_at", "is not allowed for permanent integrations")
		}
	case catalog.TypeTemporary:
		if r.StartsAt == nil {
			fe.add("starts_at", "is required for temporary integrations")
		}
		if r.EndsAt == nil {
			fe.add("ends_at", "is required for temporary integrations")
		}
		if in.StartsAt != nil && in.EndsAt != nil && !in.EndsAt.After(*in.StartsAt) {
			fe.add("ends_at", "must be after starts_at")
		}
	}

	switch {
	case r.CallbackParameters != nil && r.S3Parameters != nil:
		fe.add("callback_parameters", "give exactly one of callback_parameters and s3_parameters, not both")
	case r.CallbackParameters == nil && r.S3Parameters == nil:
		fe.add("callback_parameters", "one of callback_parameters or s3_parameters is required")
	case r.CallbackParameters != nil:
		cp := r.CallbackParameters
		validateCallback(&fe, cp)
		if secrets.IsRedacted(cp.APIKey) {
			fe.add("callback_parameters.api_key", "looks like a redacted value; send the real key")
		}
		in.Webhook = &catalog.Webhook{CallbackURL: cp.CallbackURL, APIKey: cp.APIKey}
		if cp.SigningSecret != nil {
			in.Webhook.SigningSecret = *cp.SigningSecret
		}
	default:
		sp := r.S3Parameters
		validateS3(&fe, sp)
		if secrets.IsRedacted(sp.AWSSecretAccessKey) {
			fe.add("s3_parameters.aws_secret_access_key", "looks like a redacted value; send the real key")
		}
		in.S3 = &catalog.S3Target{AccessKeyID: sp.AWSAccessKeyID, SecretAccessKey: sp.AWSSecretAccessKey,
			Region: sp.AWSRegion, Bucket: sp.Bucket, KeyPrefix: sp.KeyPrefix}
	}

	if fc := r.FilterConditions; fc != nil {
		in.EventFilter, in.EntityFilter = validateFilters(&fe, fc)
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	return in, nil
}

// validatePatch checks the shape of an update; whether it fits the stored
// integration is applyPatch's business.
func validatePatch(r *patchRequest) error {
	var fe fieldErrors
	switch {
	case r.CallbackParameters == nil && r.S3Parameters == nil && r.FilterConditions == nil:
		fe.add("callback_parameters", "nothing to update: send callback_parameters, s3_parameters or filter_conditions")
	case r.CallbackParameters != nil && r.S3Parameters != nil:
		fe.add("callback_parameters", "give at most one of callback_parameters and s3_parameters")
	}
	if r.CallbackParameters != nil {
		validateCallback(&fe, r.CallbackParameters)
	}
	if r.S3Parameters != nil {
		validateS3(&fe, r.S3Parameters)
	}
	if r.FilterConditions != nil {
		validateFilters(&fe, r.FilterConditions)
	}
	return fe.err()
}

// applyPatch changes in as r asks, or explains why it may not. Only stopped
// permanent integrations change, and only within their target kind. A given
// block replaces the stored one, with two exceptions for secrets a client
// cannot read back:
//   - api_key / aws_secret_access_key equal to the redacted form of the stored
//     secret keep the stored secret (a GET sent back unchanged is a no-op);
//     any other redacted-looking value is refused;
//   - a callback_parameters block without signing_secret keeps the stored
//     signing secret; "signing_secret": "" removes it.
//
// An api_key left out of a callback_parameters block removes the api key.
func applyPatch(in *catalog.Integration, r *patchRequest) error {
	if in.Type == catalog.TypeTemporary {
		return httpapi.NewError(http.StatusBadRequest, "integration_temporary",
			fmt.Sprintf("integration %q is temporary; temporary integrations cannot be updated", in.ID))
	}
	if in.Status == catalog.StatusRunning {
		return httpapi.NewError(http.StatusBadRequest, "integration_running",
			fmt.Sprintf("integration %q is running; stop it first (POST .../%s/_stop), then update and start it", in.ID, in.ID))
	}
	var fe fieldErrors
	if cp := r.CallbackParameters; cp != nil {
		if in.Webhook == nil {
			fe.add("callback_parameters", "integration %q delivers to S3; send s3_parameters instead", in.ID)
		} else {
			w := &catalog.Webhook{CallbackURL: cp.CallbackURL, APIKey: cp.APIKey, SigningSecret: in.Webhook.SigningSecret}
			if moved := !sameOrigin(in.Webhook.CallbackURL, cp.CallbackURL); moved {
				// The stored secrets were given for the old origin: a client
				// that can only echo their redacted forms must not be able to
				// send them to a host of its choice.
				if in.Webhook.APIKey != "" && (cp.APIKey == "" || secrets.IsRedacted(cp.APIKey)) {
					fe.add("callback_parameters.api_key", "callback_url moves to another origin (scheme, host or port); "+
						"send the api_key again in full: the stored key is never kept for a new origin")
				}
				if in.Webhook.SigningSecret != "" && cp.SigningSecret == nil {
					fe.add("callback_parameters.signing_secret", "callback_url moves to another origin (scheme, host or port); "+
						"send the signing_secret again (or \"\" to remove it): the stored secret is never kept for a new origin")
				}
			} else {
				w.APIKey = keepSecret(&fe, "callback_parameters.api_key", cp.APIKey, in.Webhook.APIKey)
			}
			if cp.SigningSecret != nil {
				w.SigningSecret = *cp.SigningSecret
			}
			in.Webhook = w
		}
	}
	if sp := r.S3Parameters; sp != nil {
		if in.S3 == nil {
			fe.add("s3_parameters", "integration %q delivers to a webhook; send callback_parameters instead", in.ID)
		} else {
			secret := sp.AWSSecretAccessKey
			if sp.Bucket != in.S3.Bucket || sp.AWSRegion != in.S3.Region {
				// Like a new callback origin: the stored key is not sent to
				// a bucket it was not given for.
				if secrets.IsRedacted(secret) {
					fe.add("s3_parameters.aws_secret_access_key", "bucket or aws_region changes; "+
						"send the aws_secret_access_key again in full: the stored key is never kept for a new bucket or region")
				}
			} else {
				secret = keepSecret(&fe, "s3_parameters.aws_secret_access_key", secret, in.S3.SecretAccessKey)
			}
			in.S3 = &catalog.S3Target{AccessKeyID: sp.AWSAccessKeyID, SecretAccessKey: secret,
				Region: sp.AWSRegion, Bucket: sp.Bucket, KeyPrefix: sp.KeyPrefix}
		}
	}
	if fc := r.FilterConditions; fc != nil {
		in.EventFilter, in.EntityFilter = validateFilters(&fe, fc)
	}
	return fe.err()
}

// sameOrigin reports whether two absolute URLs share scheme, host and port
// (RFC 6454; host names compared case-insensitively without a trailing dot,
// a missing port being the scheme's default).
func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	oa, ob := origin(ua), origin(ub)
	return oa != "" && oa == ob
}

func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return ""
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// keepSecret returns the secret to store for a sent value: the stored one when
// the client sent back its redacted form.
func keepSecret(fe *fieldErrors, field, sent, stored string) string {
	if stored != "" && sent == secrets.Redact(stored) {
		return stored
	}
	if secrets.IsRedacted(sent) {
		fe.add(field, "looks like a redacted value that does not match the stored secret; send the real secret")
	}
	return sent
}

func validateCallback(fe *fieldErrors, cp *callbackParams) {
	const f = "callback_parameters.callback_url"
	switch u := cp.CallbackURL; {
	case u == "":
		fe.add(f, "is required")
	case len(u) > maxURLLen:
		fe.add(f, "must be at most %d characters", maxURLLen)
	case !clean(u) || strings.ContainsAny(u, " \t"):
		fe.add(f, "must not contain spaces or control characters")
	default:
		p, err := url.Parse(u)
		switch {
		case err != nil:
			fe.add(f, "is not a valid URL")
		case p.Scheme != "http" && p.Scheme != "https":
			fe.add(f, "must be an absolute http or https URL, got %s", quote(u))
		case p.Opaque != "" || p.Hostname() == "":
			fe.add(f, "must be an absolute http or https URL with a host, got %s", quote(u))
		case p.User != nil:
			fe.add(f, "must not contain credentials; use api_key")
		}
	}
	if k := cp.APIKey; k != "" {
		if len(k) > maxAPIKeyLen || !visibleASCII(k) {
			fe.add("callback_parameters.api_key", "must be at most %d visible ASCII characters (it is sent as a bearer token)", maxAPIKeyLen)
		}
	}
	if cp.SigningSecret != nil && *cp.SigningSecret != "" {
		validateSigningSecret(fe, *cp.SigningSecret)
	}
}

func validateSigningSecret(fe *fieldErrors, s string) {
	const f = "callback_parameters.signing_secret"
	if rest, ok := strings.CutPrefix(s, signingPrefix); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(b) < 16 || len(b) > 64 {
			fe.add(f, "a %q secret must be followed by the base64 of 16 to 64 bytes", signingPrefix)
		}
		return
	}
	if len(s) < minSigningLen || len(s) > maxSigningLen || !visibleASCII(s) {
		fe.add(f, "must be %d to %d visible ASCII characters, or %q followed by base64", minSigningLen, maxSigningLen, signingPrefix)
	}
}

func validateS3(fe *fieldErrors, sp *s3Params) {
	switch k := sp.AWSAccessKeyID; {
	case k == "":
		fe.add("s3_parameters.aws_access_key_id", "is required")
	case len(k) > maxAccessKeyLen || !visibleASCII(k):
		fe.add("s3_parameters.aws_access_key_id", "must be at most %d visible ASCII characters", maxAccessKeyLen)
	}
	switch k := sp.AWSSecretAccessKey; {
	case k == "":
		fe.add("s3_parameters.aws_secret_access_key", "is required")
	case len(k) > maxSecretKeyLen || !visibleASCII(k):
		fe.add("s3_parameters.aws_secret_access_key", "must be at most %d visible ASCII characters", maxSecretKeyLen)
	}
	switch r := sp.AWSRegion; {
	case r == "":
		fe.add("s3_parameters.aws_region", "is required")
	case len(r) > 32 || !regionPattern.MatchString(r):
		fe.add("s3_parameters.aws_region", "must be an AWS region such as us-east-1, got %s", quote(r))
	}
	switch b := sp.Bucket; {
	case b == "":
		fe.add("s3_parameters.bucket", "is required")
	case !bucketPattern.MatchString(b) || strings.Contains(b, "..") || net.ParseIP(b) != nil:
		fe.add("s3_parameters.bucket", "must be a bucket name of 3 to 63 characters of a-z, 0-9, '.', '-' and '_', starting and ending with a letter or digit, got %s", quote(b))
	}
	if p := sp.KeyPrefix; p != "" {
		switch {
		case len(p) > maxKeyPrefixLen:
			fe.add("s3_parameters.key_prefix", "must be at most %d bytes", maxKeyPrefixLen)
		case !clean(p):
			fe.add("s3_parameters.key_prefix", "must be UTF-8 without control characters")
		case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
			fe.add("s3_parameters.key_prefix", "must not start or end with '/' (objects are written under {key_prefix}/{tenant}/)")
		}
	}
}

// validateFilters checks the filter lists and returns them de-duplicated (nil
// for an absent condition).
func validateFilters(fe *fieldErrors, fc *filterConditions) (eventFilter, entityFilter []string) {
	eventFilter = checkList(fe, "filter_conditions.event_filter", "event name", fc.EventFilter, events.IsKnownName)
	entityFilter = checkList(fe, "filter_conditions.entity_filter", "entity type", fc.EntityFilter, events.IsKnownEntityType)
	return eventFilter, entityFilter
}

func checkList(fe *fieldErrors, field, what string, list []string, known func(string) bool) []string {
	if list == nil {
		return nil
	}
	if len(list) == 0 {
		fe.add(field, "must list at least one %s; leave it out to receive every event", what)
		return nil
	}
	out := make([]string, 0, len(list))
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		if !known(v) {
			fe.add(field, "unknown %s %s", what, quote(v))
			continue
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// parseTime parses an optional RFC 3339 timestamp field.
func parseTime(fe *fieldErrors, field string, s *string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		fe.add(field, "must be an RFC 3339 timestamp such as 2019-01-17T12:00:00.000Z, got %s", quote(*s))
		return nil
	}
	t = t.UTC().Truncate(time.Millisecond)
	// An offset can push a year-9999 time into year 10000, which the API's
	// time format cannot show; nothing before the Unix epoch can be an event.
	if y := t.Year(); y < 1970 || y > 9999 {
		fe.add(field, "must be between 1970 and 9999 (UTC), got %s", quote(*s))
		return nil
	}
	return &t
}

// clean reports whether s is valid UTF-8 without control characters.
func clean(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// visibleASCII reports whether s is printable ASCII without spaces.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// quote renders a client value for a message, shortened and escaped so an
// error body cannot be flooded or carry control characters.
func quote(s string) string {
	if len(s) > maxValueInMessage {
		s = s[:maxValueInMessage] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// validPathIDs answers 404 with the error body for a malformed :id or
// :event_id before any handler runs: no such integration or event can exist,
// and the store must never see NUL bytes, invalid UTF-8 or unbounded strings.
func validPathIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		for _, name := range c.ParamNames() {
			v := c.Param(name)
			switch name {
			case "id":
				if !validID(v) {
					return httpapi.NotFound("integration %s not found", quote(v))
				}
			case "event_id":
				if !validUUID(v) {
					return httpapi.NotFound("rejected event %s not found (event ids are UUIDs)", quote(v))
				}
			}
		}
		return next(c)
	}
}

// validID is the registration rule for integration ids.
func validID(s string) bool { return len(s) > 0 && len(s) <= maxIDLen && idPattern.MatchString(s) }

// validUUID accepts the canonical 8-4-4-4-12 hexadecimal form (either case:
// the catalog stores ids as uuid, so case does not change which event it is).
func validUUID(s string) bool { return catalog.IsUUID(s) }
