package observability

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
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
	// The export is a text body to kin-openapi; the live tail is the array
	// of its events the document describes.
	openapi3filter.RegisterBodyDecoder(MIMENDJSON, openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", decodeSSE)
	testenv.Main(m)
}

const testHS256Secret = "observability-test-secret-0123456789abcdef"

var (
	routerOnce sync.Once
	router     routers.Router
	routerErr  error
)

func specRouter(t testing.TB) routers.Router {
	t.Helper()
	routerOnce.Do(func() {
		doc, err := OpenAPI()
		if err != nil {
			routerErr = err
			return
		}
		// The document lists the local stack as its server; route on paths only.
		doc.Servers = nil
		router, routerErr = legacy.NewRouter(doc)
	})
	if routerErr != nil {
		t.Fatalf("loading the OpenAPI document: %v", routerErr)
	}
	return router
}

// apiEnv is a running observability API over a fresh catalog database, with
// the real attempt writer to fill it.
type apiEnv struct {
	t      *testing.T
	db     *testenv.DB
	url    string
	writer *catalog.AttemptWriter
	srv    *Server
}

func newAPI(t *testing.T, tweak ...func(*Config)) *apiEnv {
	t.Helper()
	db := testenv.NewDB(t)
	cfg := Config{DatabaseURL: db.URL, Auth: auth.Config{HS256Secret: testHS256Secret}}
	for _, f := range tweak {
		f(&cfg)
	}
	verifier, err := auth.NewVerifier(context.Background(), cfg.Auth)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := OpenPool(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	srv, err := New(cfg, pool, verifier)
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, "observability server", func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	// Retention off: the fixtures are dated in the past on purpose.
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{Retention: -1, FlushInterval: 10 * time.Millisecond})
	testenv.Start(t, "attempt writer", w.Run)
	return &apiEnv{t: t, db: db, url: "http://" + ln.Addr().String(), writer: w, srv: srv}
}

// write stores attempts through the real attempt writer and waits until
// they are in the table.
func (e *apiEnv) write(as ...catalog.Attempt) {
	e.t.Helper()
	before := e.writer.Written()
	if err := e.writer.Write(context.Background(), as...); err != nil {
		e.t.Fatal(err)
	}
	testenv.WaitFor(e.t, 30*time.Second, "the attempt writer to store the rows", func() bool {
		return e.writer.Written() >= before+int64(len(as))
	})
}

func (e *apiEnv) token(tenant string, scopes ...string) string {
	e.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{auth.ScopeEventsRead}
	}
	tok, err := auth.Mint(testHS256Secret, tenant, scopes, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

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

// get sends GET path (path includes the raw query) and checks what every
// response must satisfy: the OpenAPI document, a request id, and the error
// body on errors.
func (e *apiEnv) get(path, token string, hdr ...string) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	e.check(req, r)
	return r
}

func (e *apiEnv) check(req *http.Request, r response) {
	e.t.Helper()
	rid := r.header.Get(httpapi.HeaderRequestID)
	if rid == "" {
		e.t.Errorf("GET %s: no %s header", req.URL, httpapi.HeaderRequestID)
	}
	if r.status >= 400 {
		if got := r.errBody(e.t); got.RequestID != rid || got.ErrorCode == "" || got.Message == "" {
			e.t.Errorf("GET %s: error body %s lacks code, message or request id %q", req.URL, r.body, rid)
		}
	}
	if err := validateAgainstSpec(specRouter(e.t), req, r); err != nil {
		e.t.Errorf("GET %s -> %d %.300s: response does not match the OpenAPI document: %v", req.URL, r.status, r.body, err)
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
		return errors.New("status not listed for this operation")
	}
	return nil
}

// page is one decoded list page.
type page struct {
	rows []attemptJSON
	next string // path+query of the next page, "" on the last
}

func (e *apiEnv) page(path, token string) page {
	e.t.Helper()
	r := e.get(path, token)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: status %d: %s", path, r.status, r.body)
	}
	var p page
	if err := json.Unmarshal(r.body, &p.rows); err != nil {
		e.t.Fatalf("decoding %s: %v", r.body, err)
	}
	if l := r.header.Get("Link"); l != "" {
		u, rel, ok := strings.Cut(l, ">; ")
		if !ok || rel != `rel="next"` || !strings.HasPrefix(u, "<") {
			e.t.Fatalf("Link header %q is not <url>; rel=\"next\"", l)
		}
		p.next = strings.TrimPrefix(u, "<")
	}
	return p
}

// all follows the Link headers from path and returns every row.
func (e *apiEnv) all(path, token string) []attemptJSON {
	e.t.Helper()
	var out []attemptJSON
	for n := 0; path != ""; n++ {
		if n > 10000 {
			e.t.Fatal("paging does not end")
		}
		p := e.page(path, token)
		out = append(out, p.rows...)
		path = p.next
	}
	return out
}

func wantStatus(t testing.TB, r response, status int, msgParts ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	msg := ""
	if len(msgParts) > 0 {
		msg = r.errBody(t).Message
	}
	for _, p := range msgParts {
		if !strings.Contains(msg, p) {
			t.Errorf("message %q does not mention %q", msg, p)
		}
	}
}

// decodeSSE reads a Server-Sent Events body the way a browser's EventSource
// does (WHATWG HTML, "Interpreting an event stream") into the array of its
// events that the OpenAPI document describes (StreamEvent): each event's
// type, its id when the event carries one, and its data decoded from JSON.
// Comment lines and the retry field are not events; a block without data
// is not dispatched, nor is an event cut off by the end of the body (the
// test closed the stream). Stricter than a browser, it refuses data that is
// not JSON and fields the document does not mention.
func decodeSSE(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	out := []any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var typ, id string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if data != nil {
				ev := map[string]any{"event": cmp.Or(typ, "message")}
				if id != "" {
					ev["id"] = id
				}
				var v any
				if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &v); err != nil {
					return nil, fmt.Errorf("event %d: data is not JSON: %w", len(out)+1, err)
				}
				ev["data"] = v
				out = append(out, ev)
			}
			typ, id, data = "", "", nil
		case field == "": // a comment
		case field == "event":
			typ = value
		case field == "id":
			id = value
		case field == "data":
			data = append(data, value)
		case field == "retry":
			if _, err := strconv.Atoi(value); err != nil {
				return nil, fmt.Errorf("retry %q is not a number of milliseconds", value)
			}
		default:
			return nil, fmt.Errorf("field %q is not one the document describes", field)
		}
	}
	return out, sc.Err()
}
