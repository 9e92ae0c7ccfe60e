package delivery

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// serviceGoroutines returns the stacks of the goroutines running code of
// this package (the test's own excepted).
func serviceGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "services/delivery.") && !strings.Contains(g, "services/delivery.TestRun") &&
			!strings.Contains(g, "services/delivery.serviceGoroutines") {
			out = append(out, g)
		}
	}
	return out
}

// Run returns only after every goroutine it started has ended: the
// consumers (and their registry entries) included, so nothing of the
// service runs on after it.
func TestRunReturnsAfterEveryGoroutineItStarted(t *testing.T) {
	w := testenv.NewWorld(t, "run", 2)
	const n = 8
	ctx := context.Background()
	for i := range n {
		in := &catalog.Integration{Tenant: w.Tenant, ID: fmt.Sprintf("int-%d", i), Type: catalog.TypePermanent,
			Webhook: &catalog.Webhook{CallbackURL: "http://127.0.0.1:9/hook"}}
		if err := w.Store.CreateIntegration(ctx, in, 100); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		svc, err := New(Config{Brokers: w.Brokers, StopPropagation: time.Second, DrainTimeout: time.Second,
			SessionTimeout: 3 * time.Second, RebalanceTimeout: 6 * time.Second}, w.Store, w.DB.Pool)
		if err != nil {
			t.Fatal(err)
		}
		// Each consumer goroutine's last step waits a while for Run to
		// return: it must not, as Run waits for the goroutine.
		returned := make(chan struct{})
		var exited, late atomic.Int32
		svc.consumerExited = func() {
			select {
			case <-returned:
				late.Add(1)
			case <-time.After(300 * time.Millisecond):
			}
			exited.Add(1)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		testenv.WaitFor(t, 30*time.Second, "every consumer running", func() bool { return len(registry.of(svc)) == n })
		cancel()
		err = <-done
		close(returned)
		if err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, "every consumer goroutine at its end", func() bool { return exited.Load() == n })
		if l := late.Load(); l > 0 {
			t.Fatalf("round %d: %d consumer goroutines still ran after Run returned", round, l)
		}
		if left := registry.of(svc); len(left) != 0 {
			t.Fatalf("round %d: %d consumers still registered after Run returned", round, len(left))
		}
		if left := serviceGoroutines(); len(left) > 0 {
			t.Fatalf("round %d: %d goroutines of the service still running after Run returned:\n%s",
				round, len(left), strings.Join(left, "\n\n"))
		}
	}
}
