package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions configure Serve. Zero durations take the defaults noted.
type ServeOptions struct {
	Name string // for logs and errors, e.g. "configapi"
	// ReadTimeout bounds reading a whole request, body included, so a slow
	// client cannot hold a connection forever (default 30s).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response (default 0: none, the
	// handlers bound their own work).
	WriteTimeout time.Duration
	// ShutdownTimeout bounds draining in-flight requests once ctx ends (default 10s).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Serve serves h on ln until ctx ends, then stops accepting and drains
// in-flight requests within ShutdownTimeout (closing what is left after it).
// It closes ln. Request contexts outlive ctx's cancellation, so draining
// requests are not cut off half-way.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o ServeOptions) error {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	o.Logger.Info(o.Name+" listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving %s: %w", o.Name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("draining %s: %w", o.Name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", o.Name, err)
	}
	return nil
}

// ListenAndServe is Serve on a new TCP listener at addr.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, o ServeOptions) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return Serve(ctx, ln, h, o)
}
