package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
)

// What the browser tests need of the local stack: the real `eventstream run`
// binary on free ports with its own data folder (as services/eventstream's
// smoke test runs it), a webhook receiver, and plain HTTP calls. Copied
// rather than imported: test files of another package cannot be imported.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

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

// stack is one `eventstream run`.
type stack struct {
	BaseURL     string
	Token       string
	ConsoleLink string
	stderr      *testenv.SyncBuffer
}

// startStack runs `eventstream run` on free ports and waits for its banner:
// the base URL, the demo token and the console link.
func startStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
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
		"EVENTSTREAM_DATA_DIR="+filepath.Join(t.TempDir(), "data"),
		"EVENTSTREAM_ADDR="+addr,
		"EVENTSTREAM_POSTGRES_PORT="+strconv.Itoa(freePort(t)),
		"EVENTSTREAM_KAFKA_PORT="+strconv.Itoa(freePort(t)),
		"EVENTSTREAM_S3_PORT="+strconv.Itoa(freePort(t)),
	)
	cmd := exec.Command(eventstreamBinary(t), "run")
	cmd.Env = append(env, extraEnv...)
	s := &stack{stderr: &testenv.SyncBuffer{}}
	stdout := &testenv.SyncBuffer{}
	cmd.Stderr = s.stderr
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("eventstream run stderr (last 8 KiB):\n%s", tail(s.stderr.String(), 8<<10))
		}
	})
	ready, tokenSeen := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		closed := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = stdout.Write([]byte(line + "\n"))
			if v, ok := strings.CutPrefix(line, "export EVENTSTREAM_URL="); ok {
				s.BaseURL = v
			}
			if v, ok := strings.CutPrefix(line, "export TOKEN="); ok {
				s.Token = v
				close(tokenSeen)
			}
			if i := strings.Index(line, "/console/#token="); i >= 0 && !closed {
				s.ConsoleLink = strings.TrimSpace(line)
				closed = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	// The console link follows the token in the same banner: once the token
	// is out, a missing link is a stack without the console, not a slow one.
	select {
	case <-ready:
	case <-tokenSeen:
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("eventstream run printed a token but no console link: is the console mounted in services/eventstream?\nstdout:\n%s", stdout.String())
		}
	case <-exited:
		t.Fatalf("eventstream run exited before printing the console link (%v):\nstdout:\n%s\nstderr:\n%s", exitErr, stdout.String(), tail(s.stderr.String(), 8<<10))
	case <-time.After(3 * time.Minute):
		t.Fatalf("eventstream run printed no console link within 3 minutes:\nstdout:\n%s\nstderr:\n%s", stdout.String(), tail(s.stderr.String(), 8<<10))
	}
	if s.ConsoleLink != s.BaseURL+"/console/#token="+s.Token {
		t.Fatalf("console link %q is not %s/console/#token=<the printed token>", s.ConsoleLink, s.BaseURL)
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// call sends one request and decodes a JSON answer into out; it returns the status.
func call(t *testing.T, method, url, token string, body, out any) int {
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

// publish posts one event per domain entity id and returns the event ids.
func publish(t *testing.T, s *stack, name string, ids ...string) []string {
	t.Helper()
	var batch []map[string]any
	for _, id := range ids {
		batch = append(batch, map[string]any{"name": name, "payload": map[string]any{"id": id, "total": 12.5}})
	}
	var res struct {
		Results []struct {
			EventID string `json:"event_id"`
		} `json:"results"`
		Accepted int `json:"accepted"`
	}
	if code := call(t, "POST", s.BaseURL+"/v1/events", s.Token, map[string]any{"events": batch}, &res); code != 202 || res.Accepted != len(ids) {
		t.Fatalf("publish = %d %+v", code, res)
	}
	var out []string
	for _, r := range res.Results {
		out = append(out, r.EventID)
	}
	return out
}

// receiver is a webhook endpoint: it answers 400 to the domain entity ids
// it is told to refuse and 200 to everything else.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	refuse map[string]bool
	got    map[string]int
	signed map[string]int // path → deliveries with a webhook-signature header
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{refuse: map[string]bool{}, got: map[string]int{}, signed: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Payload struct {
				ID string `json:"id"`
			} `json:"payload"`
		}
		_ = json.NewDecoder(req.Body).Decode(&body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Header.Get("webhook-signature") != "" {
			r.signed[req.URL.Path]++
		}
		if r.refuse[body.Payload.ID] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"refused by the test receiver"}`)
			return
		}
		r.got[body.Payload.ID]++
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setRefuse(id string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse[id] = on
}

func (r *receiver) signedCount(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.signed[path]
}
