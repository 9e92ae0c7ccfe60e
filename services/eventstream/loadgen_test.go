package eventstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventstream/eventstream/services/eventstream"
)

// fakeDeployment answers /v1/events like ingest (202 with event ids) and the
// configuration API's register and delete, and delivers every accepted event
// to the registered callback with webhook-id set, as the delivery service does.
type fakeDeployment struct {
	*httptest.Server
	t *testing.T

	mu          sync.Mutex
	requests    []time.Time   // publish requests
	refuseAt    int           // answer this publish request (1-based) 429
	refuseLate  time.Duration // answer 429 to the first request this long after the first
	refusedLate bool
	callback    string
	deliverSync bool // deliver before answering 202 (the 202 then arrives after the delivery)
	deleted     []string
	seq         int
}

func newFakeDeployment(t *testing.T) *fakeDeployment {
	f := &fakeDeployment{t: t}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeDeployment) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer test-token" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/api/v1/org/integrations/eventstream":
		var in struct {
			Callback struct {
				URL           string `json:"callback_url"`
				SigningSecret string `json:"signing_secret"`
			} `json:"callback_parameters"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Callback.URL == "" || in.Callback.SigningSecret == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.callback = in.Callback.URL
		f.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case r.Method == "DELETE" && strings.HasPrefix(r.URL.Path, "/api/v1/org/integrations/eventstream/"):
		f.mu.Lock()
		f.deleted = append(f.deleted, strings.TrimPrefix(r.URL.Path, "/api/v1/org/integrations/eventstream/"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case r.Method == "POST" && r.URL.Path == "/v1/events":
		f.publish(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeDeployment) publish(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, time.Now())
	n := len(f.requests)
	refuse, callback, sync := n == f.refuseAt, f.callback, f.deliverSync
	if f.refuseLate > 0 && !f.refusedLate && time.Since(f.requests[0]) > f.refuseLate {
		refuse, f.refusedLate = true, true
	}
	f.mu.Unlock()
	if refuse {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	var batch struct {
		Events []json.RawMessage `json:"events"`
	}
	count := 1
	if json.Unmarshal(body, &batch) == nil && len(batch.Events) > 0 {
		count = len(batch.Events)
	}
	ids := make([]string, count)
	for i := range ids {
		f.mu.Lock()
		f.seq++
		ids[i] = fmt.Sprintf("evt-%d", f.seq)
		f.mu.Unlock()
	}
	if callback != "" {
		deliver := func() {
			for _, id := range ids {
				req, _ := http.NewRequestWithContext(context.Background(), "POST", callback, strings.NewReader(`{}`))
				req.Header.Set("webhook-id", id)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
		if sync {
			deliver()
		} else {
			go deliver()
		}
	}
	w.WriteHeader(http.StatusAccepted)
	if len(batch.Events) == 0 {
		fmt.Fprintf(w, `{"event_id":%q}`, ids[0])
		return
	}
	var res []string
	for i, id := range ids {
		res = append(res, fmt.Sprintf(`{"index":%d,"event_id":%q}`, i, id))
	}
	fmt.Fprintf(w, `{"results":[%s],"accepted":%d,"rejected":0}`, strings.Join(res, ","), count)
}

func loadgenConfig(url string) eventstream.LoadgenConfig {
	return eventstream.LoadgenConfig{
		BaseURL: url, Token: "test-token", Rate: 200, Duration: time.Second, Batch: 1, Concurrency: 4,
		Names: []string{"order.created", "customer.updated"}, Timeout: 5 * time.Second,
		Drain: 10 * time.Second, Warmup: 10 * time.Second,
	}
}

func TestLoadgenAgainstAFakeDeployment(t *testing.T) {
	tests := []struct {
		name        string
		rate        float64
		batch       int
		receiver    bool
		deliverSync bool
	}{
		{"fixed rate, single events", 200, 1, false, false},
		{"fixed rate, batches, receiver", 400, 10, true, false},
		{"deliveries before the 202", 100, 1, true, true},
		{"flat out, batches", 0, 50, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDeployment(t)
			f.deliverSync = tt.deliverSync
			cfg := loadgenConfig(f.URL)
			cfg.Rate, cfg.Batch = tt.rate, tt.batch
			if tt.receiver {
				cfg.Receiver = "127.0.0.1:0"
			}
			var out, progress bytes.Buffer
			s, err := eventstream.Loadgen(context.Background(), cfg, &out, &progress)
			if err != nil {
				t.Fatalf("%v\n%s%s", err, progress.String(), out.String())
			}
			if s.Sent == 0 || s.Accepted != s.Sent || s.Failed != 0 || s.Requests["202"] == 0 {
				t.Errorf("sent %d accepted %d failed %d requests %v", s.Sent, s.Accepted, s.Failed, s.Requests)
			}
			if tt.rate > 0 {
				if want := tt.rate * cfg.Duration.Seconds(); math.Abs(float64(s.Sent)-want) > want*0.1 {
					t.Errorf("sent %d events in %s at %g/s, want about %g", s.Sent, cfg.Duration, tt.rate, want)
				}
			}
			if s.Publish.P50 <= 0 || s.Publish.Max < s.Publish.P99 || s.Publish.P99 < s.Publish.P50 {
				t.Errorf("publish latency %+v", s.Publish)
			}
			if tt.receiver {
				d := s.Delivery
				if d == nil || d.Delivered != s.Accepted || d.Unmatched != 0 || d.Latency.P50 <= 0 {
					t.Errorf("delivery %+v of %d accepted", d, s.Accepted)
				}
				if len(f.deleted) != 1 || !strings.HasPrefix(f.deleted[0], "loadgen-") {
					t.Errorf("integrations deleted: %v", f.deleted)
				}
				if !strings.Contains(out.String(), "delivery   "+fmt.Sprint(s.Accepted)+" of "+fmt.Sprint(s.Accepted)) {
					t.Errorf("summary:\n%s", out.String())
				}
			} else if s.Delivery != nil {
				t.Errorf("delivery figures without a receiver: %+v", s.Delivery)
			}
			// Not a terminal: a plain line a second.
			if strings.Contains(progress.String(), "\r") || !strings.Contains(progress.String(), "events/s | sent") {
				t.Errorf("progress:\n%q", progress.String())
			}
		})
	}
}

// TestLoadgenRespectsRetryAfter: after a 429 with Retry-After: 1 no request
// is sent for a second, then the refused events are sent again and accepted.
func TestLoadgenRespectsRetryAfter(t *testing.T) {
	f := newFakeDeployment(t)
	f.refuseAt = 5
	cfg := loadgenConfig(f.URL)
	cfg.Rate, cfg.Duration = 50, 2*time.Second
	var out, progress bytes.Buffer
	s, err := eventstream.Loadgen(context.Background(), cfg, &out, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if s.RateLimited != 1 || s.Requests["429"] != 1 || s.Accepted != s.Sent || s.Failed != 0 {
		t.Errorf("rate limited %d, requests %v, sent %d accepted %d failed %d", s.RateLimited, s.Requests, s.Sent, s.Accepted, s.Failed)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	refused := f.requests[f.refuseAt-1]
	for _, at := range f.requests[f.refuseAt:] {
		if at.Before(refused.Add(950 * time.Millisecond)) {
			t.Errorf("a request %s after the 429 (Retry-After: 1)", at.Sub(refused))
		}
	}
	if !strings.Contains(progress.String(), "errors 429×1") {
		t.Errorf("progress does not show the 429:\n%s", progress.String())
	}
}

// TestLoadgenRetriesPastTheEnd: a batch refused with 429 near the end of the
// duration is still sent after its Retry-After, not counted as lost.
func TestLoadgenRetriesPastTheEnd(t *testing.T) {
	f := newFakeDeployment(t)
	f.refuseLate = 900 * time.Millisecond
	cfg := loadgenConfig(f.URL)
	cfg.Rate = 50
	var out bytes.Buffer
	s, err := eventstream.Loadgen(context.Background(), cfg, &out, io.Discard)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if s.RateLimited != 1 || s.Accepted != s.Sent || s.Elapsed < 1.8 {
		t.Errorf("rate limited %d, sent %d accepted %d in %gs", s.RateLimited, s.Sent, s.Accepted, s.Elapsed)
	}
}

func TestLoadgenReportsFailures(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	cfg := loadgenConfig(down.URL)
	cfg.Duration = 300 * time.Millisecond
	var out bytes.Buffer
	s, err := eventstream.Loadgen(context.Background(), cfg, &out, io.Discard)
	if !errors.Is(err, eventstream.ErrLoadLost) {
		t.Errorf("err = %v, want ErrLoadLost", err)
	}
	if s == nil || s.Accepted != 0 || s.Failed != s.Sent || s.Requests["503"] != s.Sent {
		t.Errorf("summary %+v", s)
	}
	if !strings.Contains(out.String(), "requests   503×") {
		t.Errorf("summary text:\n%s", out.String())
	}
}

func TestLoadgenConfigValidate(t *testing.T) {
	ok := loadgenConfig("http://127.0.0.1:1")
	tests := map[string]func(*eventstream.LoadgenConfig){
		"no url":       func(c *eventstream.LoadgenConfig) { c.BaseURL = "" },
		"not http":     func(c *eventstream.LoadgenConfig) { c.BaseURL = "127.0.0.1:8080" },
		"no token":     func(c *eventstream.LoadgenConfig) { c.Token = "" },
		"rate":         func(c *eventstream.LoadgenConfig) { c.Rate = -1 },
		"batch":        func(c *eventstream.LoadgenConfig) { c.Batch = 501 },
		"unknown name": func(c *eventstream.LoadgenConfig) { c.Names = []string{"order.eaten"} },
		"concurrency":  func(c *eventstream.LoadgenConfig) { c.Concurrency = 0 },
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := ok
			mutate(&c)
			if c.Validate() == nil {
				t.Errorf("%+v validated", c)
			}
		})
	}
}

// TestLoadgenAgainstTheLocalStack runs `eventstream loadgen` with its own
// receiver against `eventstream run`: every event sent is accepted and
// delivered, at the rate asked for, and the integration is gone afterwards.
func TestLoadgenAgainstTheLocalStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack")
	}
	e := newStackEnv(t)
	s := startStack(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, eventstreamBinary(t), "loadgen", "--rate", "200", "--duration", "2s",
		"--receiver", "127.0.0.1:0", "--json")
	cmd.Env = append(e.environ(), "EVENTSTREAM_URL="+s.BaseURL, "TOKEN="+s.Token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("eventstream loadgen: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("progress:\n%s", stderr.String())
	var sum eventstream.LoadSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("decoding the summary %q: %v", stdout.String(), err)
	}
	if sum.Sent != 400 || sum.Accepted != sum.Sent || sum.Failed != 0 {
		t.Errorf("sent %d accepted %d failed %d, want 400 accepted", sum.Sent, sum.Accepted, sum.Failed)
	}
	if sum.Rate < 180 || sum.Rate > 220 {
		t.Errorf("achieved %g events/s, want about 200", sum.Rate)
	}
	if d := sum.Delivery; d == nil || d.Delivered != sum.Accepted || d.Unmatched != 0 || d.Latency.P50 <= 0 || d.Latency.P99 < d.Latency.P50 {
		t.Errorf("delivery %+v of %d accepted", sum.Delivery, sum.Accepted)
	}
	if sum.Publish.P50 <= 0 {
		t.Errorf("publish latency %+v", sum.Publish)
	}
	var list struct{ Integrations []integration }
	if code := call(t, "GET", configURL(s), s.Token, nil, &list); code != 200 || len(list.Integrations) != 0 {
		t.Errorf("integrations after the run: %d %+v", code, list.Integrations)
	}
	s.stop(t, e)
}
