package eventstream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// The smoke test of `make run`: the real eventstream binary, started the way a
// developer starts it, driven over plain HTTP through the printed base URL
// with the printed token, stopped with Ctrl-C (SIGINT) and started again on
// the same data folder.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// eventstreamBinary builds the CLI once per test binary.
func eventstreamBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "eventstream-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "eventstream")
		buildErr = testenv.BuildBinary(binPath, "github.com/eventstream/eventstream/services/eventstream/cmd/eventstream")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stackEnv is the environment of one local stack: its own data folder and
// free ports, and none of the variables that would point it at real servers.
type stackEnv struct {
	dataDir                   string
	addr                      string
	pgPort, kafkaPort, s3Port int
	extra                     []string
}

func newStackEnv(t *testing.T) *stackEnv {
	return &stackEnv{
		dataDir:   filepath.Join(t.TempDir(), "data"),
		addr:      "127.0.0.1:" + strconv.Itoa(freePort(t)),
		pgPort:    freePort(t),
		kafkaPort: freePort(t),
		s3Port:    freePort(t),
	}
}

func (e *stackEnv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DATABASE_URL", "KAFKA_BROKERS", "S3_ENDPOINT", "SECRETS_KEY", "AUTH_HS256_SECRET", "AUTH_JWKS_URL":
			continue
		}
		if strings.HasPrefix(k, "EVENTSTREAM_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"EVENTSTREAM_DATA_DIR="+e.dataDir,
		"EVENTSTREAM_ADDR="+e.addr,
		"EVENTSTREAM_POSTGRES_PORT="+strconv.Itoa(e.pgPort),
		"EVENTSTREAM_KAFKA_PORT="+strconv.Itoa(e.kafkaPort),
		"EVENTSTREAM_S3_PORT="+strconv.Itoa(e.s3Port),
	)
	return append(env, e.extra...)
}

// runningStack is one `eventstream run` process.
type runningStack struct {
	cmd     *exec.Cmd
	BaseURL string
	Token   string
	stdout  *testenv.SyncBuffer
	stderr  *testenv.SyncBuffer
	exited  chan struct{}
	exitErr error
}

// startStack runs `eventstream run` and waits for the banner with the base
// URL and the demo token.
func startStack(t *testing.T, e *stackEnv) *runningStack {
	t.Helper()
	cmd := exec.Command(eventstreamBinary(t), "run")
	cmd.Env = e.environ()
	s := &runningStack{cmd: cmd, stdout: &testenv.SyncBuffer{}, stderr: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.exitErr = cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		// A failed test must not leave the stack (and its Postgres) running.
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-s.exited
			}
		}
		if t.Failed() {
			t.Logf("eventstream run stderr:\n%s", s.stderr.String())
		}
	})

	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = s.stdout.Write([]byte(line + "\n"))
			if v, ok := strings.CutPrefix(line, "export EVENTSTREAM_URL="); ok {
				s.BaseURL = v
			}
			if v, ok := strings.CutPrefix(line, "export TOKEN="); ok {
				s.Token = v
				close(banner)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-banner:
	case <-s.exited:
		t.Fatalf("eventstream run exited before it was ready (%v):\nstdout:\n%s\nstderr:\n%s", s.exitErr, s.stdout.String(), s.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("eventstream run did not print a token within 2 minutes:\nstdout:\n%s\nstderr:\n%s", s.stdout.String(), s.stderr.String())
	}
	if want := "http://" + e.addr; s.BaseURL != want {
		t.Fatalf("printed base URL %q, want %q", s.BaseURL, want)
	}
	return s
}

// stop sends Ctrl-C and expects a clean exit (status 0) with everything stopped.
func (s *runningStack) stop(t *testing.T, e *stackEnv) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("eventstream run did not stop within 60s of SIGINT:\n%s", s.stderr.String())
	}
	if s.exitErr != nil {
		t.Fatalf("eventstream run exited with %v after SIGINT:\n%s", s.exitErr, s.stderr.String())
	}
	// Postgres, the broker, S3 and the base URL are all gone: nothing listens
	// on their ports any more.
	for name, addr := range map[string]string{
		"base URL": e.addr,
		"postgres": "127.0.0.1:" + strconv.Itoa(e.pgPort),
		"kafka":    "127.0.0.1:" + strconv.Itoa(e.kafkaPort),
		"s3":       "127.0.0.1:" + strconv.Itoa(e.s3Port),
	} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening on %s after the stack stopped", name, addr)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "stack.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stack.json left behind after a clean stop (err=%v)", err)
	}
}

// call sends one request to the stack and decodes a JSON response into out
// (when out is non-nil). It returns the status code.
func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode
}

// integration is the part of the config API's integration body the smoke test reads.
type integration struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Callback *struct {
		CallbackURL string `json:"callback_url"`
		APIKey      string `json:"api_key"`
	} `json:"callback_parameters"`
}

func configURL(s *runningStack) string { return s.BaseURL + "/api/v1/org/integrations/eventstream" }

// rawCall sends a plain request with a text body and returns the status.
func rawCall(t *testing.T, method, url, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// get returns the body of a GET that must answer 200.
func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// runCLI runs an eventstream admin command against the stack's data folder.
func runCLI(t *testing.T, e *stackEnv, args ...string) (stdout string) {
	t.Helper()
	cmd := exec.Command(eventstreamBinary(t), args...)
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("eventstream %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errb.String())
	}
	return out.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestLocalStack(t *testing.T) {
	rcv := newReceiver(t)
	e := newStackEnv(t)
	// Short S3 files, so the smoke test sees one without waiting 5 minutes.
	e.extra = append(e.extra, "S3_MAX_FILE_AGE=1s")
	s := startStack(t, e)

	t.Run("health", func(t *testing.T) {
		var h map[string]any
		if code := call(t, "GET", s.BaseURL+"/healthz", "", nil, &h); code != 200 || h["status"] != "ok" {
			t.Errorf("/healthz = %d %v", code, h)
		}
		if code := call(t, "GET", s.BaseURL+"/readyz", "", nil, &h); code != 200 {
			t.Errorf("/readyz = %d %v", code, h)
		}
	})

	t.Run("unknown paths get the error body", func(t *testing.T) {
		var body map[string]string
		code := call(t, "GET", s.BaseURL+"/no/such/path", "", nil, &body)
		if code != 404 || body["error_code"] != "not_found" || body["request_id"] == "" || body["message"] == "" {
			t.Errorf("got %d %v", code, body)
		}
	})

	t.Run("secrets are private", func(t *testing.T) {
		st, err := os.Stat(filepath.Join(e.dataDir, "secrets.json"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("secrets.json mode %v, want 0600", st.Mode().Perm())
		}
	})

	api := configURL(s)
	t.Run("config API through the base URL", func(t *testing.T) {
		var in integration
		code := call(t, "POST", api, s.Token, map[string]any{
			"id":               "smoke-hook",
			"integration_type": "permanent",
			"callback_parameters": map[string]any{
				"callback_url": rcv.URL + "/events", "api_key": "smoke-api-key-123456",
			},
			"filter_conditions": map[string]any{"event_filter": []string{"order.created"}},
		}, &in)
		if code != 200 || in.ID != "smoke-hook" || in.Status != "running" {
			t.Fatalf("register = %d %+v", code, in)
		}
		if in.Callback == nil || in.Callback.APIKey != "****3456" {
			t.Errorf("api_key not redacted: %+v", in.Callback)
		}
		if code := call(t, "GET", api+"/smoke-hook", s.Token, nil, &in); code != 200 || in.ID != "smoke-hook" {
			t.Errorf("get = %d %+v", code, in)
		}
		var list struct{ Integrations []integration }
		if code := call(t, "GET", api, s.Token, nil, &list); code != 200 || len(list.Integrations) != 1 || list.Integrations[0].ID != "smoke-hook" {
			t.Errorf("list = %d %+v", code, list)
		}
		if code := call(t, "POST", api+"/smoke-hook/_stop", s.Token, nil, &in); code != 200 || in.Status != "stopped" {
			t.Errorf("_stop = %d %+v", code, in)
		}
		if code := call(t, "POST", api+"/smoke-hook/_start", s.Token, nil, &in); code != 200 || in.Status != "running" {
			t.Errorf("_start = %d %+v", code, in)
		}
		var logs struct {
			Entries []struct{ Action, Reason string }
		}
		if code := call(t, "GET", api+"/smoke-hook/logs", s.Token, nil, &logs); code != 200 || len(logs.Entries) < 2 {
			t.Fatalf("logs = %d %+v", code, logs)
		}
		if got := logs.Entries[0]; got.Action != "integration_started" || got.Reason != "Started via API." {
			t.Errorf("newest log entry = %+v", got)
		}
		if got := logs.Entries[1]; got.Action != "integration_stopped" || got.Reason != "Stopped via API." {
			t.Errorf("second log entry = %+v", got)
		}
		code = call(t, "POST", api, s.Token, map[string]any{
			"id":               "smoke-lake",
			"integration_type": "permanent",
			"s3_parameters": map[string]any{
				"aws_access_key_id": "local", "aws_secret_access_key": "local-secret-key",
				"aws_region": "us-east-1", "bucket": "smoke-lake", "key_prefix": "events",
			},
		}, &in)
		if code != 200 || in.Status != "running" {
			t.Fatalf("register S3 integration = %d %+v", code, in)
		}
		var errBody map[string]string
		if code := call(t, "GET", api, "", nil, &errBody); code != 401 || errBody["error_code"] == "" || errBody["request_id"] == "" {
			t.Errorf("without a token = %d %v", code, errBody)
		}
	})

	t.Run("OpenAPI documents", func(t *testing.T) {
		for _, name := range []string{"configapi", "ingest", "observability"} {
			var doc map[string]any
			if code := call(t, "GET", s.BaseURL+"/openapi/"+name+".json", "", nil, &doc); code != 200 || doc["openapi"] == nil {
				t.Errorf("/openapi/%s.json = %d, openapi=%v", name, code, doc["openapi"])
			}
		}
	})

	var published []string
	t.Run("publish through the base URL", func(t *testing.T) {
		published = publish(t, s.BaseURL, s.Token, "smoke-1", "smoke-2", "smoke-3")
		requireEvents(t, e, "demo", published)
	})

	t.Run("delivered to the webhook", func(t *testing.T) {
		rcv.waitFor(t, "smoke-1", "smoke-2", "smoke-3")
	})

	t.Run("published events on the base URL", func(t *testing.T) {
		var rows []struct {
			IntegrationID string `json:"integration_id"`
			Status        string `json:"status"`
			EntityID      string `json:"entity_id"`
		}
		pe := s.BaseURL + "/api/v1/org/integrations/published-events?integration_id=smoke-hook&status=success"
		testenv.WaitFor(t, 30*time.Second, "the webhook's attempts in the observability API", func() bool {
			if code := call(t, "GET", pe, s.Token, nil, &rows); code != 200 {
				t.Fatalf("published-events = %d", code)
			}
			seen := map[string]bool{}
			for _, r := range rows {
				seen[r.EntityID] = true
			}
			for _, id := range published {
				if !seen[id] {
					return false
				}
			}
			return true
		})
		var sum map[string]any
		if code := call(t, "GET", s.BaseURL+"/api/v1/org/integrations/published-events/summary", s.Token, nil, &sum); code != 200 || sum["totals"] == nil {
			t.Errorf("summary = %d %v", code, sum)
		}
		if code := rawCall(t, "GET", s.BaseURL+"/console/", ""); code != 200 {
			t.Errorf("/console/ = %d", code)
		}
	})

	t.Run("live tail on the base URL", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", s.BaseURL+"/api/v1/org/integrations/published-events/stream?integration_id=smoke-hook", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// The headers arrive once the subscription is ready: what is
		// published now must come through.
		ids := publish(t, s.BaseURL, s.Token, "smoke-live")
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"entity_id":"`+ids[0]+`"`) {
				return
			}
		}
		t.Fatalf("the stream ended without the attempt of %s: %v", ids[0], sc.Err())
	})

	t.Run("rejected event, then _retry", func(t *testing.T) {
		rcv.setRefuse("reject-me", true)
		ids := publish(t, s.BaseURL, s.Token, "reject-me")
		var rejected struct {
			RejectedEvents []struct {
				ID string `json:"id"`
			} `json:"rejected_events"`
		}
		testenv.WaitFor(t, 60*time.Second, "the endpoint's 400 to produce a rejected event", func() bool {
			if code := call(t, "GET", api+"/smoke-hook/rejected_events", s.Token, nil, &rejected); code != 200 {
				t.Fatalf("rejected_events = %d", code)
			}
			return len(rejected.RejectedEvents) > 0
		})
		if rejected.RejectedEvents[0].ID != ids[0] {
			t.Fatalf("rejected %+v, want event %s", rejected.RejectedEvents, ids[0])
		}
		var ev struct {
			Payload struct {
				ID string `json:"id"`
			} `json:"payload"`
		}
		if code := call(t, "GET", api+"/smoke-hook/rejected_events/"+ids[0], s.Token, nil, &ev); code != 200 || ev.Payload.ID != "reject-me" {
			t.Errorf("rejected event = %d %+v", code, ev)
		}
		rcv.setRefuse("reject-me", false)
		if code := call(t, "POST", api+"/smoke-hook/rejected_events/"+ids[0]+"/_retry", s.Token, nil, nil); code != 200 {
			t.Errorf("_retry = %d", code)
		}
		rcv.waitFor(t, "reject-me")
		if code := call(t, "GET", api+"/smoke-hook/rejected_events", s.Token, nil, &rejected); code != 200 || len(rejected.RejectedEvents) != 0 {
			t.Errorf("after a successful _retry: %d %+v", code, rejected)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		body := get(t, s.BaseURL+"/metrics")
		if !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "\neventstream_") {
			t.Errorf("/metrics lacks the process's or the services' metrics:\n%.2000s", body)
		}
	})

	t.Run("delivered to S3", func(t *testing.T) {
		waitForS3Lines(t, filepath.Join(e.dataDir, "s3", "buckets", "smoke-lake", "events", "demo"), "smoke-1", "smoke-2", "smoke-3")
	})

	t.Run("tenant command prints a token the API accepts", func(t *testing.T) {
		out := runCLI(t, e, "tenant", "acme")
		tok := lastLine(out)
		var list struct{ Integrations []integration }
		if code := call(t, "GET", api, tok, nil, &list); code != 200 {
			t.Fatalf("list with the token of `eventstream tenant acme` (last line %q) = %d", tok, code)
		}
		// acme sees none of demo's integrations.
		if len(list.Integrations) != 0 {
			t.Errorf("acme sees %+v", list.Integrations)
		}
		if code := call(t, "GET", api+"/smoke-hook", tok, nil, nil); code != 404 {
			t.Errorf("acme GET demo's integration = %d, want 404", code)
		}
		ids := publish(t, s.BaseURL, tok, "acme-1")
		requireEvents(t, e, "acme", ids)
	})

	t.Run("tenant topics exist", func(t *testing.T) {
		requireTopics(t, e, "eventstream.demo.events", "eventstream.acme.events")
	})

	s3URL := "http://127.0.0.1:" + strconv.Itoa(e.s3Port)
	t.Run("s3 endpoint stores files", func(t *testing.T) {
		if code := rawCall(t, "PUT", s3URL+"/smoke-bucket/dir/hello.txt", "hello s3\n"); code != 200 {
			t.Fatalf("PUT object: %d", code)
		}
	})

	t.Run("a second run on the same data folder is refused", func(t *testing.T) {
		cmd := exec.Command(eventstreamBinary(t), "run")
		e2 := *e
		e2.addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
		cmd.Env = e2.environ()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !strings.Contains(string(out), "another `eventstream run`") {
			t.Errorf("second run: err=%v output:\n%s", err, out)
		}
	})

	s.stop(t, e)

	// Again on the same data folder: the keys were kept, so the first run's
	// token is still accepted, and everything stored is still there.
	s2 := startStack(t, e)
	t.Run("after restart", func(t *testing.T) {
		var in integration
		if code := call(t, "GET", configURL(s2)+"/smoke-hook", s.Token, nil, &in); code != 200 || in.Status != "running" {
			t.Errorf("integration after restart = %d %+v", code, in)
		}
		requireTopics(t, e, "eventstream.demo.events", "eventstream.acme.events")
		requireEvents(t, e, "demo", published)
		if body := get(t, s3URL+"/smoke-bucket/dir/hello.txt"); body != "hello s3\n" {
			t.Errorf("S3 object after restart = %q", body)
		}
		more := publish(t, s2.BaseURL, s.Token, "smoke-4")
		requireEvents(t, e, "demo", more)
		rcv.waitFor(t, "smoke-4")
		waitForS3Lines(t, filepath.Join(e.dataDir, "s3", "buckets", "smoke-lake", "events", "demo"), "smoke-4")
	})
	if n := rcv.tenantCount("acme"); n != 0 {
		t.Errorf("%d of tenant acme's events reached demo's webhook", n)
	}
	s2.stop(t, e)

	t.Run("tenant command without a running stack", func(t *testing.T) {
		cmd := exec.Command(eventstreamBinary(t), "tenant", "late")
		cmd.Env = e.environ()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "make run") {
			t.Errorf("err=%v output:\n%s", err, out)
		}
	})
}

// receiver is a webhook endpoint in the test: it records what it receives.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	byKey  map[string]int // payload.id → deliveries answered 200
	tenant map[string]int
	refuse map[string]bool // payload.id → answer 400
	bad    []string
}

func (r *receiver) setRefuse(key string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse[key] = on
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{byKey: map[string]int{}, tenant: map[string]int{}, refuse: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Tenant      string `json:"tenant"`
			Name        string `json:"name"`
			PublishedAt string `json:"published_at"`
			Payload     struct {
				ID string `json:"id"`
			} `json:"payload"`
		}
		err := json.NewDecoder(req.Body).Decode(&body)
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case err != nil:
			r.bad = append(r.bad, "undecodable body: "+err.Error())
		case req.Header.Get("Authorization") != "Bearer smoke-api-key-123456":
			r.bad = append(r.bad, "authorization header "+req.Header.Get("Authorization"))
		case body.Name != "order.created" || body.PublishedAt == "":
			r.bad = append(r.bad, fmt.Sprintf("body %+v", body))
		}
		if r.refuse[body.Payload.ID] {
			http.Error(w, `{"error":"refused by the test"}`, http.StatusBadRequest)
			return
		}
		r.byKey[body.Payload.ID]++
		r.tenant[body.Tenant]++
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

// waitFor polls until every key was delivered at least once.
func (r *receiver) waitFor(t *testing.T, keys ...string) {
	t.Helper()
	var missing []string
	defer func() {
		if t.Failed() {
			t.Logf("not delivered to the webhook: %v", missing)
		}
	}()
	testenv.WaitFor(t, 60*time.Second, "events to reach the webhook", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.bad) > 0 {
			t.Fatalf("webhook got bad requests: %v", r.bad)
		}
		missing = missing[:0]
		for _, k := range keys {
			if r.byKey[k] == 0 {
				missing = append(missing, k)
			}
		}
		return len(missing) == 0
	})
}

func (r *receiver) tenantCount(tenant string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tenant[tenant]
}

// waitForS3Lines polls the embedded S3 endpoint's files under dir until
// every key appears in a line of some .export object.
func waitForS3Lines(t *testing.T, dir string, keys ...string) {
	t.Helper()
	var missing []string
	var files []string
	badLine := ""
	defer func() {
		if t.Failed() {
			t.Logf("events %v not in any S3 file under %s (files: %v) %s", missing, dir, files, badLine)
		}
	}()
	testenv.WaitFor(t, 60*time.Second, "events in S3 files under "+dir, func() bool {
		found := map[string]bool{}
		badLine = ""
		files, _ = filepath.Glob(filepath.Join(dir, "*-data-*.export"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var ev struct {
					Tenant  string `json:"tenant"`
					Name    string `json:"name"`
					Payload struct {
						ID string `json:"id"`
					} `json:"payload"`
				}
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					// Possibly a file caught while being written: look again,
					// and report it if it never becomes whole.
					badLine = fmt.Sprintf("%s: line %q is not an event: %v", f, line, err)
					continue
				}
				if ev.Tenant == "demo" && ev.Name == "order.created" {
					found[ev.Payload.ID] = true
				}
			}
		}
		missing = missing[:0]
		for _, k := range keys {
			if !found[k] {
				missing = append(missing, k)
			}
		}
		return len(missing) == 0 && badLine == ""
	})
}

// publish posts one order.created event per key (a single event for one key,
// a batch otherwise) and returns the event ids the ingest API answered with.
func publish(t *testing.T, baseURL, token string, keys ...string) []string {
	t.Helper()
	ev := func(k string) map[string]any {
		return map[string]any{"name": "order.created", "payload": map[string]any{"id": k, "total": 12.5}}
	}
	if len(keys) == 1 {
		var res struct {
			EventID string `json:"event_id"`
		}
		if code := call(t, "POST", baseURL+"/v1/events", token, ev(keys[0]), &res); code != 202 || res.EventID == "" {
			t.Fatalf("publish = %d %+v", code, res)
		}
		return []string{res.EventID}
	}
	var batch []map[string]any
	for _, k := range keys {
		batch = append(batch, ev(k))
	}
	var res struct {
		Results []struct {
			EventID string `json:"event_id"`
		} `json:"results"`
		Accepted int `json:"accepted"`
	}
	if code := call(t, "POST", baseURL+"/v1/events", token, map[string]any{"events": batch}, &res); code != 202 || res.Accepted != len(keys) {
		t.Fatalf("publish batch = %d %+v", code, res)
	}
	var ids []string
	for _, r := range res.Results {
		ids = append(ids, r.EventID)
	}
	return ids
}

// requireEvents reads the tenant's topic from the start with a separate
// consumer and fails unless every event id is there.
func requireEvents(t *testing.T, e *stackEnv, tenant string, ids []string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(e.kafkaPort)),
		kgo.ConsumeTopics(events.TopicName(tenant)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("events %v not in topic %s within 30s", want, events.TopicName(tenant))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			ev, err := kafka.DecodeRecord(r)
			if err != nil {
				t.Errorf("decoding record: %v", err)
				return
			}
			if ev.GetTenant() != tenant {
				t.Errorf("event of tenant %q in %s's topic", ev.GetTenant(), tenant)
			}
			delete(want, ev.GetEventId())
		})
	}
}

// requireTopics checks the broker of the stack has the topics.
func requireTopics(t *testing.T, e *stackEnv, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(e.kafkaPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		t.Fatalf("listing topics: %v", err)
	}
	for _, topic := range topics {
		d, ok := details[topic]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			t.Errorf("topic %s missing (err %v)", topic, d.Err)
		}
	}
}
