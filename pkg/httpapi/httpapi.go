// Package httpapi holds what every Event Stream HTTP API shares: the echo
// server setup, request ids, body limits, strict JSON decoding, and the single
// place errors become {error_code, message, request_id} responses.
package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// Error is an API error with its status and machine-readable code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// NewError returns an *Error.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// BadRequest is a 400 with error code "bad_request".
func BadRequest(format string, args ...any) *Error {
	return NewError(http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...))
}

// NotFound is a 404 with error code "not_found".
func NotFound(format string, args ...any) *Error {
	return NewError(http.StatusNotFound, "not_found", fmt.Sprintf(format, args...))
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// Options configure New.
type Options struct {
	// BodyLimit caps request bodies in bytes; larger bodies get 413.
	BodyLimit int64
	Logger    *slog.Logger
	// Name labels the service's spans and metrics (e.g. "configapi").
	Name string
}

// New returns an echo instance with request ids, panic recovery, a body limit,
// access logging and the shared error handler installed.
func New(o Options) *echo.Echo {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = 1 << 20
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(o.Logger)
	e.Use(requestID())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableErrorHandler: false}))
	e.Use(bodyLimit(o.BodyLimit))
	e.Use(accessLog(o.Logger))
	e.Use(tracing(o.Name))
	return e
}

func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := c.Request().Header.Get(HeaderRequestID)
			if id == "" || len(id) > 128 || strings.ContainsAny(id, "\r\n") {
				var b [12]byte
				_, _ = rand.Read(b[:])
				id = hex.EncodeToString(b[:])
			}
			c.Set(HeaderRequestID, id)
			c.Response().Header().Set(HeaderRequestID, id)
			return next(c)
		}
	}
}

// RequestID returns the id of the request being served.
func RequestID(c echo.Context) string {
	id, _ := c.Get(HeaderRequestID).(string)
	return id
}

// bodyLimit wraps the body in a reader that fails past limit, and refuses
// declared oversize bodies before reading them.
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > limit {
				return tooLarge(limit)
			}
			r.Body = &limitedBody{rc: r.Body, left: limit, limit: limit}
			return next(c)
		}
	}
}

func tooLarge(limit int64) *Error {
	return NewError(http.StatusRequestEntityTooLarge, "payload_too_large",
		fmt.Sprintf("request body exceeds %d bytes", limit))
}

type limitedBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
}

// errBodyTooLarge surfaces through decoders; ReadBody maps it to 413.
var errBodyTooLarge = errors.New("request body too large")

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe one byte: a body of exactly the limit is fine.
		var one [1]byte
		n, err := l.rc.Read(one[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

// ReadBody reads the whole request body within the body limit.
func ReadBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if errors.Is(err, errBodyTooLarge) {
		if lb, ok := c.Request().Body.(*limitedBody); ok {
			return nil, tooLarge(lb.limit)
		}
		return nil, NewError(http.StatusRequestEntityTooLarge, "payload_too_large", "request body too large")
	}
	if err != nil {
		return nil, BadRequest("reading request body: %v", err)
	}
	return b, nil
}

// DecodeStrict decodes one JSON value from body into v, refusing unknown fields
// and trailing data, with errors that name the offending field.
func DecodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return BadRequest("request body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadRequest("%s", describeJSONError(err))
	}
	if dec.More() {
		return BadRequest("invalid JSON: unexpected data after the top-level value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadRequest("invalid JSON: unexpected data after the top-level value")
	}
	return nil
}

// BindStrict reads the request body and decodes it with DecodeStrict.
func BindStrict(c echo.Context, v any) error {
	b, err := ReadBody(c)
	if err != nil {
		return err
	}
	return DecodeStrict(b, v)
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fmt.Sprintf("invalid JSON: expected %s, got %s", typ.Type, typ.Value)
		}
		return fmt.Sprintf("field %q: expected %s, got %s", field, jsonType(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: unexpected end of input"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s", f)
	}
	return "invalid JSON: " + strings.TrimPrefix(msg, "json: ")
}

func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case goType == "string", goType == "*string":
		return "string"
	case strings.HasPrefix(goType, "map"), strings.Contains(goType, "."):
		return "object"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"):
		return "number"
	case goType == "bool":
		return "boolean"
	}
	return goType
}

// errorHandler is the one place errors become responses.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := http.StatusInternalServerError, ErrorBody{ErrorCode: "internal_error", Message: "internal server error"}
		var ae *Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &ae):
			status, body.ErrorCode, body.Message = ae.Status, ae.Code, ae.Message
		case errors.As(err, &he):
			status = he.Code
			body.ErrorCode = codeFor(status)
			body.Message = fmt.Sprint(he.Message)
			if status == http.StatusNotFound {
				body.Message = "no such endpoint: " + c.Request().Method + " " + c.Request().URL.Path
			}
		case errors.Is(err, errBodyTooLarge):
			status, body.ErrorCode, body.Message = http.StatusRequestEntityTooLarge, "payload_too_large", "request body too large"
		default:
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "request_id", RequestID(c), "err", err)
		}
		body.RequestID = RequestID(c)
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal_error"
	}
	return "error"
}

func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			// Paths only, never query strings or headers: they may carry secrets.
			log.Debug("http", "method", c.Request().Method, "path", c.Request().URL.Path,
				"status", c.Response().Status, "duration_ms", time.Since(start).Milliseconds(),
				"request_id", RequestID(c))
			return nil
		}
	}
}

// Metrics registers GET /metrics serving h (Prometheus; unauthenticated like
// the probes, so keep the port off the public ingress).
func Metrics(e *echo.Echo, h http.Handler) {
	e.GET("/metrics", echo.WrapHandler(h))
}

// Health registers /healthz (alive) and /readyz (ready runs every check).
func Health(e *echo.Echo, ready ...func(*http.Request) error) {
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", func(c echo.Context) error {
		for _, check := range ready {
			if err := check(c.Request()); err != nil {
				return NewError(http.StatusServiceUnavailable, "unavailable", "not ready: "+err.Error())
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
}
