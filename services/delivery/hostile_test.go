package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
)

var siblingSeq atomic.Int64

// sibling is another tenant in the same catalog and cluster as e (one
// worker serves both).
func (e *env) sibling() *env {
	e.t.Helper()
	o := &env{t: e.t, store: e.store, db: e.db, brokers: e.brokers, cl: e.cl, adm: e.adm,
		tenant: fmt.Sprintf("%s-b%d", e.tenant, siblingSeq.Add(1))}
	o.topic = events.TopicName(o.tenant)
	ctx := context.Background()
	if err := o.store.CreateTenant(ctx, o.tenant); err != nil {
		e.t.Fatal(err)
	}
	if err := kafka.EnsureTopic(ctx, o.adm, o.topic, 2, 1, kafka.DefaultRetention); err != nil {
		e.t.Fatal(err)
	}
	return o
}

// successIDs is the set of event ids with a SUCCESS attempt row.
func (e *env) successIDs(id string) map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	for _, a := range e.attempts(id) {
		if a.Status == catalog.AttemptSuccess {
			out[a.EventID] = true
		}
	}
	return out
}

// An endpoint answering with NUL bytes, invalid UTF-8 and a character cut by
// the 1 KiB response cap (and rejecting events whose payload holds a JSON
// \u0000) used to poison the shared attempt writer and stop every tenant on
// the worker. Now its texts are stored safely, its rejected events byte for
// byte, and another tenant's deliveries go on.
func TestHostileEndpointCannotStallOtherTenants(t *testing.T) {
	a := newEnv(t, 2)
	b := a.sibling()
	euro := "€"
	hostileBodies := []string{
		"nul \x00 in the body",
		"invalid \xff\xfe utf-8",
		strings.Repeat(euro, 400), // 1200 bytes: the 1 KiB cap cuts a character
	}
	var hostileN atomic.Int64
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		n := hostileN.Add(1)
		body := hostileBodies[int(n)%len(hostileBodies)]
		switch {
		case strings.HasSuffix(key, ":reject"):
			w.WriteHeader(http.StatusBadRequest)
		case n%3 != 0:
			w.WriteHeader(http.StatusInternalServerError) // retried
		default:
			w.WriteHeader(http.StatusOK)
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(hostile.Close)
	a.register("hostile", catalog.Webhook{CallbackURL: hostile.URL}, nil)
	rcv := newReceiver(t, nil)
	b.register("healthy", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := a.config()
	cfg.MaxRetries = 1000 // the hostile endpoint fails often; it must not stop
	a.startWorker(cfg)

	// The hostile tenant's events: plain ones, and one the endpoint rejects
	// whose payload holds a JSON \u0000 (the body must come back byte for byte).
	var hostileEvs []*eventspb.Event
	for i := range 30 {
		hostileEvs = append(hostileEvs, a.event("order.created", i, time.Now()))
	}
	rejected := a.event("order.created", 999, time.Now())
	rejected.IdempotencyKey = "reject"
	rejected.EventId = events.EventID(a.tenant, rejected.Name, "reject").String()
	rejected.Payload = []byte(`{"id":"o\u0000-1","note":"nul \u0000 here"}`)
	rejected.DomainEntityId = "o\x00-1"
	a.produce(append(hostileEvs, rejected)...)

	// Meanwhile the other tenant publishes steadily.
	var healthyEvs []*eventspb.Event
	for range 10 {
		healthyEvs = append(healthyEvs, b.produceN("order.created", 100)...)
	}
	rcv.waitDelivered(t, 60*time.Second, healthyEvs)
	testenv.WaitFor(t, 60*time.Second, "every healthy event has its SUCCESS attempt row", func() bool {
		return len(b.successIDs("healthy")) == len(healthyEvs)
	})

	// The hostile tenant's outcomes are recorded too, texts made safe.
	testenv.WaitFor(t, 60*time.Second, "the hostile tenant's events delivered and recorded", func() bool {
		return len(a.successIDs("hostile")) == len(hostileEvs)
	})
	failures := 0
	for _, row := range a.attempts("hostile") {
		if row.Body == nil {
			continue
		}
		if !utf8.ValidString(*row.Body) || strings.ContainsRune(*row.Body, 0) || len(*row.Body) > catalog.MaxResponseText {
			t.Fatalf("stored response body %q is not capped valid UTF-8 without NUL", *row.Body)
		}
		if strings.HasPrefix(*row.Body, euro) && !strings.HasSuffix(*row.Body, euro) {
			t.Fatalf("the cap cut a character: body ends %q", (*row.Body)[len(*row.Body)-3:])
		}
		if row.Status == catalog.AttemptFailure {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("no FAILURE attempt row with a hostile body was recorded")
	}
	var got *catalog.RejectedEvent
	testenv.WaitFor(t, 30*time.Second, "the rejected event stored", func() bool {
		r, err := a.store.GetRejected(context.Background(), a.tenant, "hostile", rejected.EventId)
		got = r
		return err == nil
	})
	want := events.AppendBody(nil, rejected)
	if string(got.Body) != string(want) {
		t.Fatalf("rejected event body changed:\n got %s\nwant %s", got.Body, want)
	}
}

// One tenant with a slow endpoint and 1 MiB events cannot take the worker's
// memory: the worker-wide budget bounds what it holds in flight, and another
// tenant's deliveries go on while its requests hang.
func TestSharedMemoryBudgetBoundsASlowTenant(t *testing.T) {
	a := newEnv(t, 4)
	b := a.sibling()
	release := make(chan struct{})
	var inFlight, peak atomic.Int64
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }); slow.Close() })
	a.register("slow", catalog.Webhook{CallbackURL: slow.URL}, nil)
	rcv := newReceiver(t, nil)
	b.register("fast", catalog.Webhook{CallbackURL: rcv.url()}, nil)

	const mib = 1 << 20
	cfg := a.config()
	cfg.MemoryBudget = 4 * mib
	cfg.MaxInFlightBytes = 64 * mib // alone, one integration could hold 64 events
	cfg.InitialConcurrency, cfg.MaxConcurrency = 64, 64
	cfg.AttemptTimeout = time.Minute
	a.startWorker(cfg)

	big := make([]*kgo.Record, 0, 24)
	for i := range 24 {
		ev := a.event("order.created", i, time.Now())
		ev.Payload = []byte(`{"id":"o","pad":"` + strings.Repeat("x", 900<<10) + `"}`) // under the broker's 1 MiB record limit
		r, err := kafka.EncodeRecord(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		big = append(big, r)
	}
	if err := a.cl.ProduceSync(context.Background(), big...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the slow endpoint holding requests", func() bool { return inFlight.Load() >= 3 })

	evs := b.produceN("order.created", 300)
	rcv.waitDelivered(t, 60*time.Second, evs)
	// 4 MiB of shared budget holds 4 of these events; nothing more enters
	// while they hang (without the shared budget, 64 would).
	if p := peak.Load(); p > 5 {
		t.Fatalf("the slow tenant had %d 900 KiB requests in flight; the 4 MiB worker budget allows at most 5", p)
	}
	once.Do(func() { close(release) })
	testenv.WaitFor(t, 60*time.Second, "the slow tenant's events delivered once released", func() bool {
		return len(a.successIDs("slow")) == len(big)
	})
}
