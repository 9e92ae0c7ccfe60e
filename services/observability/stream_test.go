package observability

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// sseClient reads one live-tail response, collecting its attempt events.
type sseClient struct {
	req    *http.Request
	status int
	header http.Header
	mu     sync.Mutex
	events []attemptJSON
	lines  []string
	done   chan struct{}
}

// openStream opens the live tail; it returns once the response headers are
// in (the subscription is ready), with the status and Content-Type. The body
// is read (and closed) in the background until ctx ends.
func (e *apiEnv) openStream(ctx context.Context, query, token string) (c *sseClient, status int, contentType string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+BasePath+"/stream"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // the reader goroutine below closes it
	if err != nil {
		e.t.Fatal(err)
	}
	c = &sseClient{req: req, status: resp.StatusCode, header: resp.Header, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.lines = append(c.lines, line)
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "attempt":
				var a attemptJSON
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &a); err == nil {
					c.events = append(c.events, a)
				}
			case line == "":
				event = ""
			}
			c.mu.Unlock()
		}
	}()
	return c, resp.StatusCode, resp.Header.Get("Content-Type")
}

// checkStream closes the stream (ctx's cancel must have been called) and
// checks what it sent against the OpenAPI document like every other
// response: status, Content-Type, and every event (see decodeSSE) against
// the document's schema of a stream event. It returns how many events the
// stream sent, so a caller can tell the check saw them.
func (e *apiEnv) checkStream(c *sseClient) int {
	e.t.Helper()
	<-c.done
	c.mu.Lock()
	body := strings.Join(c.lines, "\n") + "\n"
	c.mu.Unlock()
	e.check(c.req, response{status: c.status, header: c.header, body: []byte(body)})
	evs, err := decodeSSE(strings.NewReader(body), nil, nil, nil)
	if err != nil {
		e.t.Fatalf("decoding the stream: %v", err)
	}
	return len(evs.([]any))
}

func (c *sseClient) has(eventID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.events {
		if a.EntityID == eventID {
			return true
		}
	}
	return false
}

func (c *sseClient) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func TestStreamDeliversNewRows(t *testing.T) {
	e := newAPI(t, func(c *Config) { c.Heartbeat = 50 * time.Millisecond })
	old := fixtures("acme", 5)
	for i := range old {
		old[i].AttemptedAt = time.Now().Add(-time.Second) // inside the lookback: must still not be sent
	}
	e.write(old...)
	tok := e.token("acme")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	all, status, ct := e.openStream(ctx, "", tok)
	if status != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", status, ct)
	}
	failures, _, _ := e.openStream(ctx, "?status=FAILURE&integration_id=erp-1", tok)
	others, _, _ := e.openStream(ctx, "", e.token("other"))

	fresh := fixtures("acme", 1)[0] // erp-1, failure
	fresh.EventID = events.EventID("acme", "fresh", "1").String()
	fresh.AttemptedAt = time.Now()
	success := fixtures("acme", 2)[1]
	success.EventID = events.EventID("acme", "fresh", "2").String()
	success.AttemptedAt = time.Now()
	written := time.Now()
	e.write(fresh, success)

	testenv.WaitFor(t, 5*time.Second, "the new rows on the stream", func() bool { return all.has(fresh.EventID) && all.has(success.EventID) })
	if d := time.Since(written); d > 2*time.Second {
		t.Errorf("rows arrived %v after being written; want about a second", d)
	}
	testenv.WaitFor(t, 5*time.Second, "the failure on the filtered stream", func() bool { return failures.has(fresh.EventID) })
	testenv.WaitFor(t, 5*time.Second, "a heartbeat", func() bool {
		all.mu.Lock()
		defer all.mu.Unlock()
		for _, l := range all.lines {
			if l == ": heartbeat" {
				return true
			}
		}
		return false
	})
	if failures.has(success.EventID) {
		t.Error("the filtered stream got a success")
	}
	for _, o := range old {
		if all.has(o.EventID) {
			t.Errorf("row %s written before the stream opened was sent", o.EventID)
		}
	}
	if n := others.count(); n != 0 {
		t.Errorf("another tenant's stream got %d rows", n)
	}
	// The client goes away: the server lets go of its subscription.
	cancel()
	for _, c := range []struct {
		name   string
		stream *sseClient
		min    int
	}{{"all", all, 2}, {"failures", failures, 1}, {"others", others, 0}} {
		if n := e.checkStream(c.stream); n < c.min {
			t.Errorf("stream %s: %d events checked against the document, want at least %d", c.name, n, c.min)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "the subscriptions to end", func() bool {
		e.srv.tail.mu.Lock()
		defer e.srv.tail.mu.Unlock()
		return len(e.srv.tail.tenants) == 0
	})
}

// A client that does not keep up is dropped; the others go on.
func TestTailDropsSlowSubscriber(t *testing.T) {
	db := testenv.NewDB(t)
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{Retention: -1, FlushInterval: 10 * time.Millisecond})
	testenv.Start(t, "attempt writer", w.Run)
	tail := NewTail(db.Pool, 20*time.Millisecond, time.Minute, 2, slog.Default())
	testenv.Start(t, "tail", tail.Run)
	slow := tail.Subscribe("acme", Filter{})
	fast := tail.Subscribe("acme", Filter{})
	<-slow.Ready()
	<-fast.Ready()
	// One row at a time, each read by the fast client before the next is
	// written: the slow one (never reading, buffer 2) overflows at the third.
	for i, a := range fixtures("acme", 5) {
		a.AttemptedAt = time.Now()
		if err := w.Write(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		select {
		case got, ok := <-fast.C():
			if !ok || got.EventID != a.EventID {
				t.Fatalf("row %d: fast subscriber got %v (open %v)", i, got, ok)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("row %d never reached the fast subscriber", i)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "the slow subscriber to be dropped", func() bool {
		n := 0
		for range slow.C() {
			n++
		}
		return slow.Dropped() && n == 2
	})
	tail.Unsubscribe(slow)
	tail.Unsubscribe(fast)
}

// The error event a client that fell behind gets is what the document says.
func TestTooSlowEventMatchesDocument(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := decodeSSE(strings.NewReader(tooSlowEvent), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.([]any)) != 1 {
		t.Fatalf("%q holds %d events, want 1", tooSlowEvent, len(evs.([]any)))
	}
	schema := doc.Components.Schemas["StreamEvent"].Value
	if err := schema.VisitJSON(evs.([]any)[0], openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
		t.Errorf("%q does not match StreamEvent: %v", tooSlowEvent, err)
	}
}
