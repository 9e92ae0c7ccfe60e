// Package webhook sends events to webhook endpoints: it builds the request
// (body, Authorization, Idempotency-Key and Standard Webhooks signature
// headers), sends it over a shared, connection-reusing HTTP client whose
// dialer refuses non-public addresses unless an operator allow-list permits
// them, and classifies the response the way the contract decides (2xx
// delivered, 400 rejected, anything else retried, honouring Retry-After).
//
// Retry policy, concurrency and bookkeeping belong to the caller (the delivery
// workers, the configuration API's _retry); a Sender only does one attempt.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultMaxResponseBody = 1024
	// DefaultMaxResponseHeaderBytes caps a response's header block: an
	// endpoint answering megabytes of headers must not cost the shared
	// worker that memory (net/http's own default is 1 MiB).
	DefaultMaxResponseHeaderBytes = 16 << 10
	// HeaderDelivery marks every request the sender makes; its value is the
	// event id. The ingest API refuses requests carrying it, so an endpoint
	// (or a relay) that feeds a delivery back to the ingest API cannot make
	// the event publish itself again and again.
	HeaderDelivery = "Eventstream-Delivery"
	// drainLimit is how much of a larger response body is read and discarded
	// so the connection can be reused; beyond it the connection is closed.
	drainLimit = 64 << 10
)

// Config tunes a Sender.
type Config struct {
	// Timeout bounds one attempt: connecting, sending and reading the
	// (capped) response. Default 10s.
	Timeout time.Duration
	// MaxResponseBody is how many bytes of a response body are kept for the
	// attempt record and rejected events. Default 1024.
	MaxResponseBody int
	// AllowCIDRs are address ranges the SSRF guard lets through although they
	// are not public (the local stack and tests allow 127.0.0.0/8).
	AllowCIDRs []netip.Prefix
	// MaxIdleConnsPerHost bounds the idle keep-alive connections kept per
	// endpoint. Default 256, enough for the largest concurrency limit.
	MaxIdleConnsPerHost int
	// UserAgent is sent with every request. Default "EventStream-Webhooks/1.0".
	UserAgent string
	// MaxResponseHeaderBytes caps the response header block; a larger one
	// fails the attempt (retried like a connection error). Default 16 KiB.
	MaxResponseHeaderBytes int64
	// OwnHosts are the service's own public hosts (the ingest and API base
	// URLs): a request to one is refused with ErrOwnHost before it is sent,
	// and IP entries are refused at connect time too. Nil refuses none.
	OwnHosts *OwnHosts
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBody <= 0 {
		c.MaxResponseBody = DefaultMaxResponseBody
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = 256
	}
	if c.UserAgent == "" {
		c.UserAgent = "EventStream-Webhooks/1.0"
	}
	if c.MaxResponseHeaderBytes <= 0 {
		c.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
}

// Sender posts webhook requests. It is safe for concurrent use; share one per
// process so connections to the same endpoint are reused across integrations.
type Sender struct {
	cfg   Config
	guard *Guard
	// transport is called directly rather than through an http.Client:
	// the client would copy every request's headers for redirects, which a
	// Sender never follows. send keeps what the client adds (see there).
	transport *http.Transport
	bufs      sync.Pool // *[]byte of MaxResponseBody, for reading responses
	userAgent []string  // the User-Agent header value, shared by every request
}

// NewSender builds a Sender.
func NewSender(cfg Config) *Sender {
	cfg.defaults()
	guard := NewGuard(cfg.AllowCIDRs)
	guard.own = cfg.OwnHosts
	dialer := &net.Dialer{
		Timeout:   cfg.Timeout,
		KeepAlive: 30 * time.Second,
		// The guard checks the resolved address at connect time, after DNS,
		// so a name that resolves differently later cannot bypass it.
		Control: guard.control,
	}
	tr := &http.Transport{
		// No proxy: through a proxy the guard would check the proxy's address
		// instead of the endpoint's.
		Proxy:             nil,
		DialContext:       dialer.DialContext,
		ForceAttemptHTTP2: true,
		// No "Accept-Encoding: gzip": only the first MaxResponseBody bytes
		// of an answer are kept, so asking endpoints to compress would only
		// cost them CPU and us a gzip reader per response (and a hostile
		// endpoint could make us inflate a bomb up to the drain limit).
		DisableCompression:     true,
		MaxIdleConns:           4 * cfg.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes,
	}
	// A redirect is an answer like any other non-2xx: it is retried, never
	// followed (following would also sidestep the URL the tenant
	// registered). The transport never follows one.
	s := &Sender{cfg: cfg, guard: guard, transport: tr, userAgent: []string{cfg.UserAgent}}
	s.bufs.New = func() any { b := make([]byte, cfg.MaxResponseBody); return &b }
	return s
}

// Timeout is the per-attempt timeout the sender applies.
func (s *Sender) Timeout() time.Duration { return s.cfg.Timeout }

// CloseIdleConnections closes kept-alive connections (used on shutdown).
func (s *Sender) CloseIdleConnections() { s.transport.CloseIdleConnections() }

// Request is one webhook call.
type Request struct {
	URL            string
	APIKey         string // sent as "Authorization: Bearer <APIKey>" when set
	SigningSecret  string // Standard Webhooks headers are sent when set
	EventID        string // webhook-id
	EventName      string
	IdempotencyKey string // sent as "Idempotency-Key: <EventName>:<IdempotencyKey>" when set
	Body           []byte

	// target, when set, is URL, APIKey and SigningSecret prepared (Target).
	target *Target
}

// NewRequest builds the request delivering ev, whose receiver body is body
// (events.AppendBody), to hook.
func NewRequest(hook *catalog.Webhook, ev *eventspb.Event, body []byte) Request {
	return Request{
		URL:            hook.CallbackURL,
		APIKey:         hook.APIKey,
		SigningSecret:  hook.SigningSecret,
		EventID:        ev.GetEventId(),
		EventName:      ev.GetName(),
		IdempotencyKey: ev.GetIdempotencyKey(),
		Body:           body,
	}
}

// Target is a webhook's callback prepared once for all of its requests: the
// URL parsed, the Authorization value built and the signing key decoded, so
// a delivery worker does none of it per event.
type Target struct {
	hook   catalog.Webhook
	url    *url.URL
	urlErr error    // parsing the URL; every request fails with it
	auth   []string // the Authorization header value; nil without an API key
	key    []byte   // the signing key; nil without a signing secret
}

// NewTarget prepares hook's callback (hook is copied).
func NewTarget(hook *catalog.Webhook) *Target {
	t := &Target{hook: *hook}
	t.url, t.urlErr = url.Parse(hook.CallbackURL)
	if hook.APIKey != "" {
		t.auth = []string{"Bearer " + hook.APIKey}
	}
	if hook.SigningSecret != "" {
		t.key = SigningKey(hook.SigningSecret)
	}
	return t
}

// NewRequest builds the request delivering ev, whose receiver body is body
// (events.AppendBody), to the target: the same as the package's NewRequest.
func (t *Target) NewRequest(ev *eventspb.Event, body []byte) Request {
	r := NewRequest(&t.hook, ev, body)
	r.target = t
	return r
}

// Outcome is what the contract makes of a response.
type Outcome int

// Outcomes.
const (
	// Delivered: a 2xx response.
	Delivered Outcome = iota
	// Rejected: a 400 response; the event is stored as rejected.
	Rejected
	// Failed: anything else (3xx, 429, other 4xx, 5xx, timeout, connection
	// error); the event is retried.
	Failed
)

// Result is the outcome of one attempt.
type Result struct {
	// Code is the HTTP status, 0 when no response arrived.
	Code int
	// Body is the start of the response body (Config.MaxResponseBody bytes).
	Body string
	// Duration is from sending the request to reading the capped body.
	Duration time.Duration
	// RetryAfter is the delay the endpoint asked for (Retry-After), 0 if none.
	RetryAfter time.Duration
	// Err is why no response arrived (timeout, refused, blocked address).
	Err error
	// Timeout reports that Err is the per-attempt timeout.
	Timeout bool
}

// Outcome classifies the result.
func (r Result) Outcome() Outcome {
	switch {
	case r.Err == nil && r.Code >= 200 && r.Code < 300:
		return Delivered
	case r.Err == nil && r.Code == http.StatusBadRequest:
		return Rejected
	default:
		return Failed
	}
}

// Blocked reports that no request left: the SSRF guard or the own-host list
// (Config.OwnHosts) refused the callback's address (Err wraps
// ErrBlockedAddress; ErrOwnHost for an own host). The outcome is still
// Failed, like any connection error, but retrying cannot succeed until the
// tenant changes the callback_url or the operator changes WEBHOOK_ALLOW_CIDRS
// or PUBLIC_HOSTS: a caller may stop the integration at once instead.
func (r Result) Blocked() bool { return errors.Is(r.Err, ErrBlockedAddress) }

// Reason is the human reason the integration log shows for a failed attempt:
// "Request to URL <url> failed. Reason: <text> (HTTP status code <code>)", or
// "... Reason: <error>" when no response arrived.
func (r Result) Reason(callbackURL string) string {
	if r.Err != nil || r.Code == 0 {
		return fmt.Sprintf("Request to URL %s failed. Reason: %s", callbackURL, r.errText())
	}
	text := http.StatusText(r.Code)
	if text == "" {
		text = "Unexpected response"
	}
	return fmt.Sprintf("Request to URL %s failed. Reason: %s (HTTP status code %d)", callbackURL, text, r.Code)
}

func (r Result) errText() string {
	if r.Err == nil {
		return "no response"
	}
	if r.Timeout {
		return "no response within the attempt timeout"
	}
	err := r.Err
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error repeats the method and URL the reason already names.
		err = ue.Err
	}
	return err.Error()
}

// Send makes one attempt. It never returns an error: a failure to get a
// response is reported in Result.Err. ctx bounds the attempt in addition to
// the per-attempt timeout.
func (s *Sender) Send(ctx context.Context, r *Request) Result {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	req, err := s.newHTTPRequest(ctx, r)
	if err != nil {
		return Result{Err: fmt.Errorf("building request: %w", err)}
	}
	if s.cfg.OwnHosts.MatchURL(req.URL) {
		return Result{Err: fmt.Errorf("calling %s: %w", req.URL.Hostname(), ErrOwnHost)}
	}
	// Headers are set by their canonical keys (what Header.Set would
	// make of them) without Set's per-call canonicalisation; constant
	// values share one slice (the transport only reads them).
	h := req.Header
	h["Content-Type"] = contentTypeJSON
	h["User-Agent"] = s.userAgent
	if r.EventID == "" {
		h[HeaderDelivery] = deliveryMarkNoID
	} else {
		h[HeaderDelivery] = []string{r.EventID}
	}
	switch {
	case r.target != nil && r.target.auth != nil:
		h["Authorization"] = r.target.auth
	case r.target == nil && r.APIKey != "":
		h["Authorization"] = []string{"Bearer " + r.APIKey}
	}
	if r.IdempotencyKey != "" {
		h["Idempotency-Key"] = []string{r.EventName + ":" + r.IdempotencyKey}
	}
	if r.SigningSecret != "" {
		key := SigningKey(r.SigningSecret)
		if r.target != nil {
			key = r.target.key
		}
		ts := start.Unix()
		h["Webhook-Id"] = []string{r.EventID}
		h["Webhook-Timestamp"] = []string{strconv.FormatInt(ts, 10)}
		h["Webhook-Signature"] = []string{signature(key, r.EventID, ts, r.Body)}
	}
	// The endpoint can continue the delivery's trace (W3C traceparent),
	// when a propagator is installed (telemetry.Setup).
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
	resp, err := s.send(req)
	if err != nil {
		if errors.Is(err, ErrBlockedAddress) {
			// The dial error names the resolved address; the reason a tenant
			// reads names only the host the tenant gave.
			cause := errPrivate
			if errors.Is(err, ErrOwnHost) {
				cause = ErrOwnHost
			}
			return Result{Err: fmt.Errorf("connecting to %s: %w", req.URL.Hostname(), cause), Duration: time.Since(start)}
		}
		var ne net.Error
		timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		return Result{Err: err, Timeout: timeout, Duration: time.Since(start)}
	}
	defer resp.Body.Close()
	bufp := s.bufs.Get().(*[]byte)
	n, readErr := io.ReadFull(resp.Body, *bufp)
	kept := (*bufp)[:n]
	if readErr == nil {
		// The cap was reached: never keep half of a multi-byte character.
		kept = trimPartialRune(kept)
	}
	body := string(kept)
	s.bufs.Put(bufp)
	if readErr == nil {
		// Reading the rest (up to a bound) lets the connection be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	}
	res := Result{Code: resp.StatusCode, Body: body, Duration: time.Since(start)}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		res.RetryAfter = d
	}
	return res
}

// Shared header values (see Send).
var (
	contentTypeJSON  = []string{"application/json"}
	deliveryMarkNoID = []string{"1"}
)

// newHTTPRequest builds r's POST. With a Target the URL parsed once is
// copied instead of parsed again; the request is otherwise what
// http.NewRequestWithContext makes of r.URL.
func (s *Sender) newHTTPRequest(ctx context.Context, r *Request) (*http.Request, error) {
	t := r.target
	if t == nil {
		return http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	}
	if t.urlErr != nil {
		return nil, t.urlErr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	u := *t.url
	req.URL = &u
	// As NewRequestWithContext: a host with an empty port ("h:") is sent
	// as "h".
	req.Host = strings.TrimSuffix(u.Host, ":")
	return req, nil
}

// send is http.Client.Do for a client that follows no redirects, without
// the client's per-request copy of the headers: it adds the userinfo of the
// URL as basic auth, names a plain HTTP answer to an HTTPS request
// ErrSchemeMismatch, and wraps errors in *url.Error the way the client does,
// so results and reasons read as they did through a client.
func (s *Sender) send(req *http.Request) (*http.Response, error) {
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		pass, _ := u.Password()
		req.SetBasicAuth(u.Username(), pass)
	}
	resp, err := s.transport.RoundTrip(req)
	if err == nil {
		return resp, nil
	}
	var tlsErr tls.RecordHeaderError
	if errors.As(err, &tlsErr) && string(tlsErr.RecordHeader[:]) == "HTTP/" {
		err = http.ErrSchemeMismatch
	}
	return nil, &url.Error{Op: "Post", URL: req.URL.Redacted(), Err: err}
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b (at most
// utf8.UTFMax-1 bytes), left there by cutting a longer text. Invalid bytes
// elsewhere are kept: the catalog makes stored text valid.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i > len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			return b
		}
	}
	return b
}

// ParseRetryAfter parses a Retry-After header value, either delay-seconds or
// an HTTP date, relative to now. It reports false when v is empty or invalid;
// a date in the past is a zero delay.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		const maxSeconds = int64(1<<63-1) / int64(time.Second)
		if n > maxSeconds {
			n = maxSeconds
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}
