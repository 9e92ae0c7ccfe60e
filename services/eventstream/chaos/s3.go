package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eventstream/eventstream/pkg/s3local"
)

// S3 fault modes.
const (
	s3OK = iota
	s3Error
	s3DropComplete
)

// s3Endpoint is the S3 endpoint the workers use: pkg/s3local (gofakes3 on
// disk) behind a proxy the suite can make answer 500/503, or make perform a
// CompleteMultipartUpload and then close the connection without a reply (the
// client cannot tell whether the object exists).
type s3Endpoint struct {
	store *s3local.Server
	dir   string
	srv   *http.Server
	ln    net.Listener
	proxy *httputil.ReverseProxy

	// onDropArmed, when set, runs as s3-drop-complete is injected (the
	// publisher then sends big events, so a multipart upload completes).
	onDropArmed func()

	mu     sync.Mutex
	mode   int
	status int // for s3Error
	// stored records, per bucket, when an object was last stored
	// (PutObject or CompleteMultipartUpload answered 200).
	stored   map[string][]time.Time
	dropped  int // completions whose reply was dropped
	refused  int // requests answered with an injected error
	requests int
}

func startS3(ctx context.Context, dir string) (*s3Endpoint, error) {
	store, err := s3local.Start(context.WithoutCancel(ctx), dir, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	target, _ := url.Parse(store.URL())
	e := &s3Endpoint{store: store, dir: dir, stored: map[string][]time.Time{}}
	e.proxy = httputil.NewSingleHostReverseProxy(target)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("listening for the s3 proxy: %w", err)
	}
	e.ln = ln
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

func (e *s3Endpoint) URL() string { return "http://" + e.ln.Addr().String() }

func (e *s3Endpoint) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	_ = e.store.Close()
}

func (e *s3Endpoint) setMode(mode, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mode, e.status = mode, status
}

func (e *s3Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	mode, status := e.mode, e.status
	e.requests++
	e.mu.Unlock()
	bucket := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
	complete := r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
	put := r.Method == http.MethodPut && !r.URL.Query().Has("uploadId")

	switch {
	case mode == s3Error && r.Method != http.MethodGet && r.Method != http.MethodHead:
		e.count(&e.refused)
		code := "InternalError"
		if status == http.StatusServiceUnavailable {
			code = "SlowDown"
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>chaos: injected</Message></Error>`, code)
		return
	case mode == s3DropComplete && complete:
		rec := httptest.NewRecorder()
		e.proxy.ServeHTTP(rec, r)
		if rec.Code == http.StatusOK && !bytes.Contains(rec.Body.Bytes(), []byte("<Error>")) {
			e.noteStored(bucket)
		}
		e.count(&e.dropped)
		// The upload is complete; the client never hears so.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if !complete && !put {
		e.proxy.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	e.proxy.ServeHTTP(sw, r)
	if sw.status == http.StatusOK || sw.status == 0 {
		e.noteStored(bucket)
	}
}

func (e *s3Endpoint) count(n *int) {
	e.mu.Lock()
	*n++
	e.mu.Unlock()
}

func (e *s3Endpoint) droppedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped
}

func (e *s3Endpoint) noteStored(bucket string) {
	e.mu.Lock()
	e.stored[bucket] = append(e.stored[bucket], time.Now())
	e.mu.Unlock()
}

// storedAfter returns when bucket first got an object at or after t.
func (e *s3Endpoint) storedAfter(bucket string, t time.Time) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, at := range e.stored[bucket] {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets the reverse proxy stream through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
