package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// The webhook sink's workers start on demand: however many records are
// queued, no more workers run than the concurrency limit, and once the
// records are delivered an idle sink holds no goroutine.
func TestWebhookWorkersFollowTheLimit(t *testing.T) {
	cases := []struct {
		name                  string
		min, initial, maximum int
		records               int
	}{
		{"fixed limit", 3, 3, 3, 200},
		{"adaptive limit grows", 1, 2, 8, 300},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{MinConcurrency: c.min, InitialConcurrency: c.initial, MaxConcurrency: c.maximum,
				MaxInFlight: c.records, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}.WithDefaults()
			var s *webhookSink
			var over atomic.Int64 // requests that saw more workers than the limit
			var mostRunning atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				// Every request samples the pool while the others are in flight.
				running, _ := s.workerCount()
				if limit, _ := s.lim.current(); running > limit {
					over.Add(1)
				}
				for m := mostRunning.Load(); int64(running) > m && !mostRunning.CompareAndSwap(m, int64(running)); m = mostRunning.Load() {
				}
				time.Sleep(2 * time.Millisecond) // the endpoint's latency, so requests overlap
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			var done atomic.Int64
			s = newTestWebhookSink(t, cfg, srv.URL, &done)
			s.idleAfter = 50 * time.Millisecond

			ctx := context.Background()
			for i := range c.records {
				if err := s.Deliver(ctx, testRecord(i)); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitFor(t, 30*time.Second, "every record delivered", func() bool { return done.Load() == int64(c.records) })
			if n := over.Load(); n != 0 {
				t.Fatalf("%d requests saw more workers running than the concurrency limit", n)
			}
			if m := mostRunning.Load(); m < int64(c.initial) || m > int64(c.maximum) {
				t.Fatalf("at most %d workers ran, want between the initial limit %d and the maximum %d", m, c.initial, c.maximum)
			}
			testenv.WaitFor(t, 10*time.Second, "idle workers exited", func() bool {
				running, _ := s.workerCount()
				return running == 0
			})

			// A record after the pool emptied starts a worker again.
			if err := s.Deliver(ctx, testRecord(c.records)); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, "a late record delivered", func() bool { return done.Load() == int64(c.records)+1 })
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if running, idle := s.workerCount(); running != 0 || idle != 0 {
				t.Fatalf("after Close %d workers run (%d idle), want none", running, idle)
			}
		})
	}
}

// A steady trickle keeps one worker: it does not exit between records, and
// no second one starts while the first is idle.
func TestWebhookWorkersSteadyTrickle(t *testing.T) {
	cfg := Config{MinConcurrency: 1, InitialConcurrency: 4, MaxConcurrency: 4}.WithDefaults()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	var done atomic.Int64
	s := newTestWebhookSink(t, cfg, srv.URL, &done)
	ctx := context.Background()
	for i := range 20 {
		if err := s.Deliver(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, "the record delivered", func() bool { return done.Load() == int64(i+1) })
		if running, _ := s.workerCount(); running != 1 {
			t.Fatalf("after record %d one at a time, %d workers run, want 1", i, running)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func newTestWebhookSink(t *testing.T, cfg Config, url string, done *atomic.Int64) *webhookSink {
	t.Helper()
	in := &catalog.Integration{Tenant: "acme", ID: "erp-1", Type: "erp", Webhook: &catalog.Webhook{CallbackURL: url}}
	env := SinkEnv{
		Integration: in,
		Done:        func(recs ...*Record) { done.Add(int64(len(recs))) },
		Interrupt:   func(cause StopCause, reason string) { t.Errorf("interrupted (%s): %s", cause, reason) },
		Attempts:    okAttempts{},
		Logs:        okLogs{},
	}
	sender := webhook.NewSender(webhook.Config{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	t.Cleanup(sender.CloseIdleConnections)
	s := newWebhookSink(cfg, env, sender, nil, newByteBudget(1<<30), func(context.Context) error { return nil },
		slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func testRecord(i int) *Record {
	return &Record{Event: &eventspb.Event{EventId: fmt.Sprintf("ev-%d", i), Tenant: "acme", Name: "order.created"},
		Offset: int64(i), Timestamp: time.Now()}
}

// okAttempts stores every attempt row at once.
type okAttempts struct{}

func (okAttempts) Write(context.Context, ...catalog.Attempt) error { return nil }
func (okAttempts) WriteThen(_ context.Context, after func(stored bool), _ ...catalog.Attempt) error {
	after(true)
	return nil
}

type okLogs struct{}

func (okLogs) AddLog(context.Context, string, string, string, string) error { return nil }
