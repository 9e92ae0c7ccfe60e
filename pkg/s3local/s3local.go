// Package s3local is an embedded S3-compatible server for the local stack and
// tests: gofakes3 over a filesystem backend rooted in one directory, buckets
// created on first use, multipart parts kept on disk (so a 50 MiB file never
// sits in memory), and optional SigV4 credential checking so tests can see
// the 403 a real store answers to bad keys.
//
// Objects land under <dir>/buckets/<bucket>/<key>; they can be read with any
// S3 client pointed at URL() (path-style) or straight from the filesystem.
package s3local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// Option configures a Server.
type Option func(*options)

type options struct {
	creds map[string]string // access key id → secret; empty accepts anything
}

// WithCredentials makes the server accept only requests signed (AWS SigV4)
// with this key pair; others get 403 like a real store. Repeat it to allow
// several pairs. Without it any signature, or none, is accepted, which is what
// the local stack wants: integrations register whatever keys they like.
func WithCredentials(accessKeyID, secretAccessKey string) Option {
	return func(o *options) { o.creds[accessKeyID] = secretAccessKey }
}

// Server is a running embedded S3 endpoint.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	done  chan struct{}
	once  sync.Once
	err   error
	stopc func() bool
}

// Start serves an S3 endpoint on addr (e.g. "127.0.0.1:9000", or
// "127.0.0.1:0" for a random port) storing objects under dir, which is created
// when missing. The server stops on Close or when ctx ends.
func Start(ctx context.Context, dir, addr string, opts ...Option) (*Server, error) {
	o := options{creds: map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating s3 data dir: %w", err)
	}
	fs, err := s3afero.FsPath(dir, 0)
	if err != nil {
		return nil, fmt.Errorf("opening s3 data dir: %w", err)
	}
	objects, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("creating s3 backend: %w", err)
	}
	// Unfinished multipart uploads do not survive a restart (clients get
	// NoSuchUpload and start over), so their leftover parts are removed.
	mpDir := filepath.Join(dir, "multipart")
	if err := os.RemoveAll(mpDir); err != nil {
		return nil, fmt.Errorf("clearing multipart dir: %w", err)
	}
	if err := os.MkdirAll(mpDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating multipart dir: %w", err)
	}
	backend := &diskBackend{Backend: objects, dir: mpDir, uploads: map[gofakes3.UploadID]*upload{}}
	faker := gofakes3.New(backend,
		gofakes3.WithAutoBucket(true),
		// The local stack is on one machine; a skewed clock is not the
		// problem a test or a developer wants to debug here.
		gofakes3.WithTimeSkewLimit(0),
	)
	h := faker.Server()
	if len(o.creds) > 0 {
		h = &authHandler{creds: o.creds, next: h}
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	s := &Server{
		ln:   ln,
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	s.stopc = context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}

// URL is the endpoint to configure clients with (path-style addressing).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server; in-flight requests get a few seconds to finish.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.stopc()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.done
	})
	return s.err
}
