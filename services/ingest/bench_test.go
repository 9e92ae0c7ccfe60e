package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/ingest"
)

// The ingest benchmarks compare the service with raw franz-go on the same
// in-process kfake broker in the same run. Both sides run in alternating
// rounds, so load from other processes on the machine hits both alike, and
// reuse a fixed pool of bodies and records, so memory stays bounded.

const benchTenant = "bench"

// benchEnv is an ingest service over HTTP on loopback, an in-process kfake
// broker with a provisioned tenant, and a raw franz-go producer to compare.
type benchEnv struct {
	url, token string
	client     *http.Client
	raw        *kgo.Client
}

func newBenchEnv(b *testing.B, conns int) *benchEnv {
	b.Helper()
	brokers := testenv.NewKafka(b).ListenAddrs()
	store, _ := testenv.NewStore(b)
	ctx := context.Background()
	if err := store.CreateTenant(ctx, benchTenant); err != nil {
		b.Fatal(err)
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer admCl.Close()
	if err := kafka.ProvisionTenant(ctx, kadm.NewClient(admCl), benchTenant, 3, 1, kafka.DefaultRetention); err != nil {
		b.Fatal(err)
	}
	cfg := ingest.Config{Brokers: brokers, Auth: auth.Config{HS256Secret: secret}, RateLimit: -1}.WithDefaults() // measures throughput: no rate limit
	producer, err := kafka.NewProducer(brokers, cfg.ProduceTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(producer.Close)
	raw, err := kafka.NewProducer(brokers, cfg.ProduceTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	v, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := ingest.New(cfg, producer, store, v)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(hs.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchEnv{url: hs.URL + "/v1/events", token: token(b, benchTenant), client: &http.Client{Transport: tr}, raw: raw}
}

// payload1K is a 1 KiB JSON object with id i.
func payload1K(i int) string {
	head := fmt.Sprintf(`{"id":"ent-%08d","status":"OPEN","data":"`, i)
	return head + strings.Repeat("x", 1024-len(head)-2) + `"}`
}

// record1K is the record ingest writes for payload1K(i), encoded in advance.
func record1K(b *testing.B, i int) *kgo.Record {
	id := fmt.Sprintf("ent-%08d", i)
	now := timestamppb.Now()
	r, err := kafka.EncodeRecord(context.Background(), &eventspb.Event{
		EventId: events.EventID(benchTenant, "order.created", id).String(), Tenant: benchTenant, Name: "order.created",
		PublishedAt: now, Payload: []byte(payload1K(i)), EntityType: "order", DomainEntityId: id,
		IdempotencyKey: id, IngestedAt: now,
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func (e *benchEnv) post(body []byte) (time.Duration, error) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusAccepted {
		return took, fmt.Errorf("status %d", resp.StatusCode)
	}
	return took, nil
}

// parallel runs do(i) for i in [from, to) on conc goroutines and returns the
// wall time.
func parallel(b *testing.B, from, to, conc int, do func(i int) error) time.Duration {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				if err := do(i); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return wall
}

// produceRaw produces copies of recs (a record must not be produced twice)
// and waits for all acks.
func (e *benchEnv) produceRaw(recs []*kgo.Record) error {
	cp := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		cp[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
	}
	return e.raw.ProduceSync(context.Background(), cp...).FirstErr()
}

func percentile(lat []time.Duration, p float64) float64 {
	s := slices.Clone(lat)
	slices.Sort(s)
	return float64(s[int(float64(len(s)-1)*p)]) / float64(time.Millisecond)
}

type benchResult struct {
	events      int
	ingest, raw time.Duration
	latencies   []time.Duration
}

func (r benchResult) report(b *testing.B) {
	rate := float64(r.events) / r.ingest.Seconds()
	raw := float64(r.events) / r.raw.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(percentile(r.latencies, 0.50), "p50_ms")
	b.ReportMetric(percentile(r.latencies, 0.99), "p99_ms")
	b.ReportMetric(raw, "raw_events/s")
	b.ReportMetric(rate/raw, "ratio")
}

// BenchmarkIngestSingle: single-event POSTs of 1 KiB payloads from 64
// concurrent clients (one op = one event) against raw franz-go: 64
// goroutines each producing one record and awaiting its ack. ratio =
// ingest events/s ÷ raw events/s.
func BenchmarkIngestSingle(b *testing.B) {
	const conc, pool, round = 64, 1024, 2048
	e := newBenchEnv(b, conc)
	bodies := make([][]byte, pool)
	recs := make([]*kgo.Record, pool)
	for i := range pool {
		bodies[i] = []byte(`{"name":"order.created","payload":` + payload1K(i) + `}`)
		recs[i] = record1K(b, i)
	}
	res := benchResult{events: b.N, latencies: make([]time.Duration, b.N)}
	b.SetBytes(1024)
	b.ResetTimer()
	for from := 0; from < b.N; from += round {
		to := min(from+round, b.N)
		res.ingest += parallel(b, from, to, conc, func(i int) (err error) {
			res.latencies[i], err = e.post(bodies[i%pool])
			return err
		})
		b.StopTimer()
		res.raw += parallel(b, from, to, conc, func(i int) error { return e.produceRaw(recs[i%pool : i%pool+1]) })
		b.StartTimer()
	}
	b.StopTimer()
	res.report(b)
}

// BenchmarkIngestBatch500: POSTs of 500-event batches, 1 KiB payloads, from 4
// concurrent clients (one op = one batch) against raw franz-go: 4 goroutines
// each producing the same 500 records together and awaiting their acks.
// ratio = ingest events/s ÷ raw events/s.
func BenchmarkIngestBatch500(b *testing.B) {
	const conc, size, pool, round = 4, 500, 8, 8
	e := newBenchEnv(b, conc)
	bodies := make([][]byte, pool)
	recs := make([][]*kgo.Record, pool)
	for p := range pool {
		var sb strings.Builder
		sb.WriteString(`{"events":[`)
		for j := range size {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"name":"order.created","payload":` + payload1K(p*size+j) + `}`)
			recs[p] = append(recs[p], record1K(b, p*size+j))
		}
		sb.WriteString(`]}`)
		bodies[p] = []byte(sb.String())
	}
	res := benchResult{events: b.N * size, latencies: make([]time.Duration, b.N)}
	b.SetBytes(size * 1024)
	b.ResetTimer()
	for from := 0; from < b.N; from += round {
		to := min(from+round, b.N)
		res.ingest += parallel(b, from, to, conc, func(i int) (err error) {
			res.latencies[i], err = e.post(bodies[i%pool])
			return err
		})
		b.StopTimer()
		res.raw += parallel(b, from, to, conc, func(i int) error { return e.produceRaw(recs[i%pool]) })
		b.StartTimer()
	}
	b.StopTimer()
	res.report(b)
}
