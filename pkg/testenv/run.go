package testenv

import (
	"context"
	"sync"
	"testing"
)

// Start runs a worker's Run(ctx) in the background for a test. The returned
// stop cancels it and waits for Run to return, reporting a non-nil error as a
// test error; it is idempotent and also runs at test cleanup.
func Start(t testing.TB, what string, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
