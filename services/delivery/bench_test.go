package delivery_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/services/delivery"
)

// countingReceiver answers 200 (after delay) and counts requests; onHit sees
// each request's Idempotency-Key and arrival time.
func countingReceiver(b *testing.B, delay time.Duration, onHit func(key string, at time.Time)) (*httptest.Server, *atomic.Int64) {
	srv, n, _ := countingReceiverConns(b, delay, onHit)
	return srv, n
}

// countingReceiverConns is countingReceiver also counting the connections
// it accepted.
func countingReceiverConns(b *testing.B, delay time.Duration, onHit func(key string, at time.Time)) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	srv, n, conns, _ := newCountingReceiver(b, delay, onHit)
	return srv, n, conns
}

// newCountingReceiver is countingReceiverConns also summing the time its
// handler took (the delay as the machine kept it, which may run over).
func newCountingReceiver(b *testing.B, delay time.Duration, onHit func(key string, at time.Time)) (_ *httptest.Server, n, conns, busy *atomic.Int64) {
	n, conns, busy = new(atomic.Int64), new(atomic.Int64), new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if onHit != nil {
			onHit(r.Header.Get("Idempotency-Key"), time.Now())
		}
		if delay > 0 {
			t0 := time.Now()
			time.Sleep(delay) // the endpoint's latency
			busy.Add(int64(time.Since(t0)))
		}
		n.Add(1)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	b.Cleanup(srv.Close)
	return srv, n, conns, busy
}

// benchConfig is the production configuration with test brokers and the
// loopback allow-list.
func (e *env) benchConfig() delivery.Config {
	return delivery.Config{Brokers: e.brokers, AllowCIDRs: loopback, CommitInterval: 100 * time.Millisecond}
}

// waitJoined waits until the integration's consumer holds every partition.
func (e *env) waitJoined(in *catalog.Integration, partitions int) {
	testenv.WaitFor(e.t, 60*time.Second, "consumer joined", func() bool {
		m := e.members(e.group(in))
		return len(m) == 1 && len(m[0]) == partitions
	})
}

// produceAsync produces evs without waiting for each acknowledgement.
func (e *env) produceAsync(evs []*eventspb.Event) {
	var wg sync.WaitGroup
	for _, ev := range evs {
		r, err := kafka.EncodeRecord(context.Background(), ev)
		if err != nil {
			e.t.Fatal(err)
		}
		wg.Add(1)
		e.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				e.t.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
}

// BenchmarkDeliveryVsRawHTTP compares delivered events/s from Kafka to a local
// receiver, with an attempt row written per event, against raw net/http
// clients posting the same bodies to the same receiver with the same
// concurrency (the ratio is delivery/raw). conns is how many connections the
// delivery opened to the receiver: kept alive, at most the concurrency limit.
func BenchmarkDeliveryVsRawHTTP(b *testing.B) {
	const partitions = 6
	e := newEnv(b, partitions)
	srv, hits, conns := countingReceiverConns(b, 0, nil)
	cfg := e.benchConfig()
	cfg = cfg.WithDefaults()
	n := max(b.N, 2000)
	evs := make([]*eventspb.Event, n)
	bodies := make([][]byte, n)
	for i := range evs {
		evs[i] = e.event("order.created", i, time.Now())
		bodies[i] = events.AppendBody(nil, evs[i])
	}

	// Raw: cfg.MaxConcurrency goroutines posting with a keep-alive client.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.MaxConcurrency, MaxIdleConns: cfg.MaxConcurrency}}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.MaxConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	raw := float64(n) / time.Since(start).Seconds()
	client.CloseIdleConnections()
	hits.Store(0)
	conns.Store(0)

	in := e.register("bench", catalog.Webhook{CallbackURL: srv.URL + "/hook"}, nil)
	svc, _ := e.startService(cfg)
	e.waitJoined(in, partitions)
	for _, ev := range evs { // published after the registration
		ev.IngestedAt = timestamppb.Now()
	}
	b.ResetTimer()
	start = time.Now()
	e.produceAsync(evs)
	testenv.WaitFor(b, 5*time.Minute, "every event delivered and its attempt row written", func() bool {
		return hits.Load() >= int64(n) && svc.Attempts().Written() >= int64(n)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(raw, "raw_events/s")
	b.ReportMetric(rate/raw, "ratio")
	b.ReportMetric(float64(conns.Load()), "conns")
}

// BenchmarkPublishToReceiptLatency publishes at a fixed 1,000 events/s and
// reports the publish→receipt latency percentiles.
func BenchmarkPublishToReceiptLatency(b *testing.B) {
	const partitions = 6
	const rate = 1000
	e := newEnv(b, partitions)
	var mu sync.Mutex
	published := map[string]time.Time{}
	var lat []time.Duration
	srv, hits := countingReceiver(b, 0, func(key string, at time.Time) {
		mu.Lock()
		if p, ok := published[key]; ok {
			lat = append(lat, at.Sub(p))
			delete(published, key)
		}
		mu.Unlock()
	})
	in := e.register("bench", catalog.Webhook{CallbackURL: srv.URL + "/hook"}, nil)
	e.startService(e.benchConfig())
	e.waitJoined(in, partitions)
	// Warm up connections and the concurrency limit.
	warm := e.produceN("customer.created", 200)
	testenv.WaitFor(b, 30*time.Second, "warm-up delivered", func() bool { return hits.Load() >= int64(len(warm)) })

	n := max(b.N, 2000) // at least 2 s of traffic for a stable p99
	b.ResetTimer()
	tick := time.NewTicker(10 * time.Millisecond) // 10 events per tick
	defer tick.Stop()
	start := time.Now()
	for sent := 0; sent < n; {
		<-tick.C
		due := min(n, int(time.Since(start).Seconds()*rate)+1)
		for ; sent < due; sent++ {
			ev := e.event("order.created", sent, time.Now())
			r, err := kafka.EncodeRecord(context.Background(), ev)
			if err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			published[idemKey(ev)] = time.Now()
			mu.Unlock()
			e.cl.Produce(context.Background(), r, nil)
		}
	}
	testenv.WaitFor(b, 60*time.Second, "all delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lat) >= n
	})
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkSlowEndpointLittlesLaw delivers to an endpoint answering in 50 ms
// and compares the throughput with the Little's-law bound of the concurrency
// limit (MaxConcurrency / latency). endpoint_ms is how long the endpoint's
// handler actually took on average (its sleep overruns on a busy machine);
// the bound uses the nominal 50 ms.
func BenchmarkSlowEndpointLittlesLaw(b *testing.B) {
	const partitions = 6
	const latency = 50 * time.Millisecond
	e := newEnv(b, partitions)
	srv, hits, _, busy := newCountingReceiver(b, latency, nil)
	cfg := e.benchConfig().WithDefaults()
	in := e.register("bench", catalog.Webhook{CallbackURL: srv.URL + "/hook"}, nil)
	e.startService(cfg)
	e.waitJoined(in, partitions)
	bound := float64(cfg.MaxConcurrency) / latency.Seconds()
	n := max(b.N, int(2*bound)) // about two seconds at the bound
	evs := make([]*eventspb.Event, n)
	for i := range evs {
		evs[i] = e.event("order.created", i, time.Now())
	}
	b.ResetTimer()
	start := time.Now()
	e.produceAsync(evs)
	testenv.WaitFor(b, 5*time.Minute, "every event delivered", func() bool { return hits.Load() >= int64(n) })
	b.StopTimer()
	rate := float64(n) / time.Since(start).Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(bound, "bound_events/s")
	b.ReportMetric(rate/bound, "ratio")
	b.ReportMetric(float64(busy.Load())/float64(max(hits.Load(), 1))/float64(time.Millisecond), "endpoint_ms")
}
