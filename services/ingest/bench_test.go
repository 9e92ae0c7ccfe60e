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

// benchEnv is an ingest service over HTTP on loopback, an in-process kfake
// broker and a provisioned tenant.
type benchEnv struct {
	url, token, tenant string
	brokers            []string
	client             *http.Client
}

func newBenchEnv(b *testing.B, conns int) *benchEnv {
	b.Helper()
	cluster := testenv.NewKafka(b)
	brokers := cluster.ListenAddrs()
	store, _ := testenv.NewStore(b)
	ctx := context.Background()
	tenant := "bench"
	if err := store.CreateTenant(ctx, tenant); err != nil {
		b.Fatal(err)
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer admCl.Close()
	if err := kafka.ProvisionTenant(ctx, kadm.NewClient(admCl), tenant, 3, 1, kafka.DefaultRetention); err != nil {
		b.Fatal(err)
	}
	cfg := ingest.Config{Brokers: brokers, Auth: auth.Config{HS256Secret: secret}}.WithDefaults()
	producer, err := kafka.NewProducer(brokers, cfg.ProduceTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(producer.Close)
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
	return &benchEnv{url: hs.URL + "/v1/events", token: token(b, tenant), tenant: tenant, brokers: brokers,
		client: &http.Client{Transport: tr}}
}

// payload1K is a 1 KiB JSON object with id i.
func payload1K(i int) string {
	head := fmt.Sprintf(`{"id":"ent-%08d","status":"OPEN","data":"`, i)
	return head + strings.Repeat("x", 1024-len(head)-2) + `"}`
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

// run sends bodies with conc concurrent clients and returns the wall time
// and each request's latency.
func (e *benchEnv) run(b *testing.B, bodies [][]byte, conc int) (time.Duration, []time.Duration) {
	lat := make([]time.Duration, len(bodies))
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				d, err := e.post(bodies[i])
				if err != nil {
					failed.Store(err)
					return
				}
				lat[i] = d
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("publishing: %v", err)
	}
	return wall, lat
}

// rawProduce writes n records equal to what ingest writes for payload1K
// events straight with franz-go (same producer options), in groups of group
// records produced together, and returns events/s.
func (e *benchEnv) rawProduce(b *testing.B, n, group int) float64 {
	cl, err := kafka.NewProducer(e.brokers, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	now := timestamppb.Now()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		id := fmt.Sprintf("ent-%08d", i)
		recs[i], err = kafka.EncodeRecord(context.Background(), &eventspb.Event{
			EventId: events.EventID(e.tenant, "order.created", id).String(), Tenant: e.tenant, Name: "order.created",
			PublishedAt: now, Payload: []byte(payload1K(i)), EntityType: "order", DomainEntityId: id,
			IdempotencyKey: id, IngestedAt: now,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	ctx := context.Background()
	for i := 0; i < n; i += group {
		// A bounded window of groups in flight, like concurrent requests.
		if err := cl.ProduceSync(ctx, recs[i:min(i+group, n)]...).FirstErr(); err != nil && group > 1 {
			b.Fatal(err)
		} else if err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// rawProduceAsync writes n records produced one at a time by conc
// goroutines, each waiting for its record's ack: the raw counterpart of
// concurrent single-event POSTs.
func (e *benchEnv) rawProduceAsync(b *testing.B, n, conc int) float64 {
	cl, err := kafka.NewProducer(e.brokers, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	now := timestamppb.Now()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		id := fmt.Sprintf("ent-%08d", i)
		recs[i], _ = kafka.EncodeRecord(context.Background(), &eventspb.Event{
			EventId: events.EventID(e.tenant, "order.created", id).String(), Tenant: e.tenant, Name: "order.created",
			PublishedAt: now, Payload: []byte(payload1K(i)), EntityType: "order", DomainEntityId: id,
			IdempotencyKey: id, IngestedAt: now,
		})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := cl.ProduceSync(context.Background(), recs[i]).FirstErr(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

func percentile(lat []time.Duration, p float64) float64 {
	s := slices.Clone(lat)
	slices.Sort(s)
	return float64(s[int(float64(len(s)-1)*p)]) / float64(time.Millisecond)
}

// BenchmarkIngestSingle: concurrent single-event POSTs of 1 KiB payloads
// (one op = one event), then the same records produced raw by 64 concurrent
// franz-go callers each awaiting its ack. ratio = ingest events/s ÷ raw.
func BenchmarkIngestSingle(b *testing.B) {
	const conc = 64
	e := newBenchEnv(b, conc)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = []byte(`{"name":"order.created","payload":` + payload1K(i) + `}`)
	}
	b.SetBytes(1024)
	b.ResetTimer()
	wall, lat := e.run(b, bodies, conc)
	b.StopTimer()
	rate := float64(b.N) / wall.Seconds()
	raw := e.rawProduceAsync(b, b.N, conc)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(percentile(lat, 0.50), "p50_ms")
	b.ReportMetric(percentile(lat, 0.99), "p99_ms")
	b.ReportMetric(raw, "raw_events/s")
	b.ReportMetric(rate/raw, "ratio")
}

// BenchmarkIngestBatch500: POSTs of 500-event batches, 1 KiB payloads (one
// op = one batch), 4 concurrent clients; then the same records produced raw
// with franz-go in groups of 500 (ProduceSync). ratio = ingest events/s ÷ raw.
func BenchmarkIngestBatch500(b *testing.B) {
	const conc, size = 4, 500
	e := newBenchEnv(b, conc)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		var sb strings.Builder
		sb.WriteString(`{"events":[`)
		for j := range size {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"name":"order.created","payload":` + payload1K(i*size+j) + `}`)
		}
		sb.WriteString(`]}`)
		bodies[i] = []byte(sb.String())
	}
	b.SetBytes(size * 1024)
	b.ResetTimer()
	wall, lat := e.run(b, bodies, conc)
	b.StopTimer()
	rate := float64(b.N*size) / wall.Seconds()
	raw := e.rawProduce(b, b.N*size, size)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(percentile(lat, 0.50), "p50_ms")
	b.ReportMetric(percentile(lat, 0.99), "p99_ms")
	b.ReportMetric(raw, "raw_events/s")
	b.ReportMetric(rate/raw, "ratio")
}
