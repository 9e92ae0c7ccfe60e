package configapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunAsProcess(Run) // the process tests re-execute this binary
	testenv.Main(m)
}

const testHS256Secret = "configapi-test-secret-0123456789abcdef"

var (
	routerOnce sync.Once
	router     routers.Router
	routerErr  error
)

// specRouter is the router over the embedded OpenAPI document every test
// response is validated against.
func specRouter(t testing.TB) routers.Router {
	t.Helper()
	routerOnce.Do(func() {
		doc, err := OpenAPI()
		if err != nil {
			routerErr = err
			return
		}
		router, routerErr = legacy.NewRouter(doc)
	})
	if routerErr != nil {
		t.Fatalf("loading the OpenAPI document: %v", routerErr)
	}
	return router
}

// apiEnv is a running configuration API over a fresh catalog database.
type apiEnv struct {
	t     *testing.T
	store *catalog.Store
	db    *testenv.DB
	url   string
	// plaintexts are secrets that must never appear in any response body.
	plaintexts []string
}

type envOption func(*Config, *Retrier)

func withRetrier(r Retrier) envOption { return func(_ *Config, rr *Retrier) { *rr = r } }

func withConfig(f func(*Config)) envOption { return func(c *Config, _ *Retrier) { f(c) } }

func newAPI(t *testing.T, opts ...envOption) *apiEnv {
	t.Helper()
	store, db := testenv.NewStore(t)
	cfg := Config{DatabaseURL: db.URL, EncryptionKey: testenv.TestKey, Auth: auth.Config{HS256Secret: testHS256Secret}}
	var retrier Retrier
	for _, o := range opts {
		o(&cfg, &retrier)
	}
	verifier, err := auth.NewVerifier(context.Background(), cfg.Auth)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, store, verifier, retrier)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &apiEnv{t: t, store: store, db: db, url: hs.URL}
}

// tenant provisions a tenant and returns a full-access token for it.
func (e *apiEnv) tenant(name string) string {
	e.t.Helper()
	if err := e.store.CreateTenant(context.Background(), name); err != nil {
		e.t.Fatal(err)
	}
	return e.token(name, auth.ScopeIntegrationsRead, auth.ScopeIntegrationsWrite)
}

func (e *apiEnv) token(tenant string, scopes ...string) string {
	e.t.Helper()
	tok, err := auth.Mint(testHS256Secret, tenant, scopes, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// secret registers a plaintext that no response may ever contain.
func (e *apiEnv) secret(s string) { e.plaintexts = append(e.plaintexts, s) }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errBody(t testing.TB) httpapi.ErrorBody {
	t.Helper()
	var b httpapi.ErrorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("decoding error body %s: %v", r.body, err)
	}
	return b
}

func (r response) integration(t testing.TB) integrationResponse {
	t.Helper()
	var v integrationResponse
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding integration %s: %v", r.body, err)
	}
	return v
}

// call sends a request (body: nil, a string/[]byte sent as is, or a value
// encoded as JSON) and checks what every response must satisfy: it validates
// against the OpenAPI document, error bodies carry the response's request id,
// and no registered plaintext secret appears in it.
func (e *apiEnv) call(method, path, token string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	e.checkResponse(req, r)
	return r
}

func (e *apiEnv) checkResponse(req *http.Request, r response) {
	e.t.Helper()
	for _, s := range e.plaintexts {
		if bytes.Contains(r.body, []byte(s)) {
			e.t.Errorf("%s %s: response contains the plaintext secret %q: %s", req.Method, req.URL.Path, s, r.body)
		}
	}
	rid := r.header.Get(httpapi.HeaderRequestID)
	if rid == "" {
		e.t.Errorf("%s %s: no %s header", req.Method, req.URL.Path, httpapi.HeaderRequestID)
	}
	if r.status >= 400 {
		if got := r.errBody(e.t); got.RequestID != rid || got.ErrorCode == "" || got.Message == "" {
			e.t.Errorf("%s %s: error body %s lacks code, message or request id %q", req.Method, req.URL.Path, r.body, rid)
		}
	}
	if err := validateAgainstSpec(specRouter(e.t), req, r); err != nil {
		e.t.Errorf("%s %s -> %d %s: response does not match the OpenAPI document: %v",
			req.Method, req.URL.Path, r.status, r.body, err)
	}
}

func validateAgainstSpec(rt routers.Router, req *http.Request, r response) error {
	route, params, err := rt.FindRoute(req)
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if r.status >= 300 && route.Operation.Responses.Status(r.status) == nil {
		// Error statuses should be listed explicitly, not only fall to default.
		return errors.New("status not listed for this operation")
	}
	return nil
}

// want fails unless r has the status, and for errors a message containing every part.
func want(t testing.TB, r response, status int, msgParts ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if len(msgParts) == 0 {
		return
	}
	msg := r.errBody(t).Message
	for _, p := range msgParts {
		if !strings.Contains(msg, p) {
			t.Errorf("message %q does not mention %q", msg, p)
		}
	}
}
