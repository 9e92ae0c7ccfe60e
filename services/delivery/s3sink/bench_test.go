package s3sink_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

// benchServer is the S3 server a benchmark writes to.
type benchServer struct {
	endpoint, key, secret, region string
}

func startBenchServer(b *testing.B, kind string) benchServer {
	b.Helper()
	switch kind {
	case "minio":
		m := testenv.MinIO(b)
		return benchServer{m.Endpoint, m.AccessKey, m.SecretKey, m.Region}
	default:
		return benchServer{startS3(b).URL(), "bench", "bench-secret", "eu-west-1"}
	}
}

var benchBuckets atomic.Int64

// bucket creates a fresh bucket on srv.
func (srv benchServer) bucket(b *testing.B) string {
	b.Helper()
	name := fmt.Sprintf("bench-%d-%d", os.Getpid(), benchBuckets.Add(1))
	_, err := newClient(srv.endpoint, srv.key, srv.secret, srv.region).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	var apiErr smithy.APIError
	if err != nil && !(errors.As(err, &apiErr) && strings.HasPrefix(apiErr.ErrorCode(), "BucketAlready")) {
		b.Fatalf("creating bucket: %v", err)
	}
	return name
}

// eventSource makes records the way the consumer does: every event decoded
// into its own memory (payload ≈ 1 KiB, an order-sized JSON object).
type eventSource struct {
	templates [][]byte
	lineLens  []int // the encoded line length of each template
	n         int
}

func newEventSource() *eventSource {
	src := &eventSource{}
	for i := range 64 {
		src.templates = append(src.templates, fmt.Appendf(nil,
			`{"id":"ord-%04d","customer_id":"c-%d","currency":"EUR","lines":[%s],"note":%q}`,
			i, i*7, strings.Repeat(`{"sku":"SKU-000123","qty":2,"price":"19.99"},`, 15)+`{"sku":"X","qty":1,"price":"1.00"}`,
			strings.Repeat("n", 100+i)))
	}
	for i := range src.templates {
		src.n = i - 1
		src.lineLens = append(src.lineLens, 0)
		r, _ := src.next()
		src.lineLens[i] = len(events.AppendBody(nil, r.Event)) + 1
	}
	src.n = 0
	return src
}

// count is how many records next returned.
func (src *eventSource) count() int64 { return int64(src.n) }

// next returns a new record and the length of its line in an export file.
func (src *eventSource) next() (*delivery.Record, int) {
	src.n++
	i := src.n % len(src.templates)
	tmpl := src.templates[i]
	// A counter in fixed-width hex: unique ids and keys (the consumer
	// decodes them, it does not hash them) and equal line lengths.
	var hex [12]byte
	for j, v := len(hex)-1, src.n; j >= 0; j, v = j-1, v>>4 {
		hex[j] = "0123456789abcdef"[v&15]
	}
	idem := string(hex[:])
	return &delivery.Record{
		Event: &eventspb.Event{
			EventId: "00000000-0000-5000-8000-" + idem, Tenant: tenant, Name: "order.created",
			PublishedAt: timestamppb.Now(), Payload: bytes.Clone(tmpl), EntityType: "order",
			DomainEntityId: "ord-" + idem[6:], IdempotencyKey: idem, IngestedAt: timestamppb.Now(),
		},
		Partition: int32(src.n % 3), Offset: int64(src.n / 3),
	}, src.lineLens[i]
}

// discard is a consumer-core double that keeps nothing, so the benchmark
// measures the sink's memory, not the test's.
type discard struct {
	done      atomic.Int64
	interrupt atomic.Value
}

func (d *discard) env(in *catalog.Integration) delivery.SinkEnv {
	return delivery.SinkEnv{
		Integration: in,
		Done:        func(recs ...*delivery.Record) { d.done.Add(int64(len(recs))) },
		Interrupt:   func(_ delivery.StopCause, reason string) { d.interrupt.Store(reason) },
		Attempts:    d,
		Logs:        d,
	}
}

func (d *discard) Write(context.Context, ...catalog.Attempt) error { return nil }
func (d *discard) WriteThen(_ context.Context, after func(bool), _ ...catalog.Attempt) error {
	after(true)
	return nil
}
func (d *discard) AddLog(context.Context, string, string, string, string) error { return nil }

// rawUpload stores total bytes the way a plain client would, with the same
// file and part sizes as the sink (multipart for files over one part).
func rawUpload(b *testing.B, c *s3.Client, bucket string, total int64, cfg s3sink.Config) time.Duration {
	b.Helper()
	ctx := context.Background()
	part := bytes.Repeat([]byte("0123456789abcdef{}\n"), int(cfg.PartSize)/19+1)[:cfg.PartSize]
	start := time.Now()
	for file := 0; total > 0; file++ {
		size := min(total, cfg.MaxFileBytes)
		total -= size
		key := aws.String(fmt.Sprintf("raw/%d.export", file))
		if size <= cfg.PartSize {
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key, Body: bytes.NewReader(part[:size]), ContentLength: aws.Int64(size)}); err != nil {
				b.Fatal(err)
			}
			continue
		}
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key})
		if err != nil {
			b.Fatal(err)
		}
		var parts []types.CompletedPart
		for n := int32(1); size > 0; n++ {
			ps := min(size, cfg.PartSize)
			size -= ps
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(part[:ps]), ContentLength: aws.Int64(ps)})
			if err != nil {
				b.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

func benchConfig(srv benchServer) s3sink.Config {
	cfg := s3sink.DefaultConfig() // 50 MiB files, 5 MiB parts
	cfg.Endpoint = srv.endpoint
	cfg.UsePathStyle = true
	return cfg
}

// BenchmarkS3Sink: one integration's sink writing ~1 KiB events (b.N of
// them) against a plain client uploading the same number of bytes in the
// same file and part sizes to the same server, once before and once after
// the sink in the same run (ratio = sink MB/s over the mean raw MB/s; the
// machine is shared, so the two raw runs bracket the sink's).
func BenchmarkS3Sink(b *testing.B) {
	for _, kind := range []string{"gofakes3", "minio"} {
		b.Run("server="+kind, func(b *testing.B) {
			b.StopTimer()
			srv := startBenchServer(b, kind)
			cfg := benchConfig(srv)
			bucket := srv.bucket(b)
			client := newClient(srv.endpoint, srv.key, srv.secret, srv.region)
			src := newEventSource()
			var total int64
			for n := 1; n <= b.N; n++ {
				total += int64(src.lineLens[n%len(src.lineLens)])
			}
			rawBefore := rawUpload(b, client, srv.bucket(b), total, cfg)

			d := &discard{}
			in := integration(bucket, "bench", srv.key, srv.secret)
			in.S3.Region = srv.region
			sink, err := s3sink.New(cfg, d.env(in))
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close(context.Background())
			b.ResetTimer()
			b.StartTimer()
			for range b.N {
				r, _ := src.next()
				if err := sink.Deliver(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
			if err := sink.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			elapsed := b.Elapsed()
			if d.done.Load() != int64(b.N) {
				b.Fatalf("%d Done of %d", d.done.Load(), b.N)
			}
			if stored := storedBytes(b, client, bucket); stored != total {
				b.Fatalf("S3 holds %d bytes, the sink was given %d", stored, total)
			}
			rawAfter := rawUpload(b, client, srv.bucket(b), total, cfg)
			mb := float64(total) / (1 << 20)
			mbps, rawMBps := mb/elapsed.Seconds(), mb/((rawBefore+rawAfter)/2).Seconds()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(mbps, "MB/s")
			b.ReportMetric(rawMBps, "raw_MB/s")
			b.ReportMetric(mbps/rawMBps, "ratio")
		})
	}
}

// BenchmarkS3SinkIntegrations: 1, 10 and 50 sinks (integrations) of one
// worker (one Factory, so one pool of part buffers) writing at once, 50 MiB
// rotation, 5 MiB parts. With 1 and 10 integrations each sink writes a bit
// over one file (55 MiB); with 50, 11 MiB each (two parts and a last one),
// enough for all of them to hold parts at the same time. Peak RSS is the
// process high-water mark (VmHWM, reset before the run; it includes the Go
// runtime and, for gofakes3, the in-process server); peak_heap_MB samples
// live heap objects every 5 ms.
func BenchmarkS3SinkIntegrations(b *testing.B) {
	for _, kind := range []string{"gofakes3", "minio"} {
		for _, sinks := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("server=%s/integrations=%d", kind, sinks), func(b *testing.B) {
				benchIntegrations(b, kind, sinks)
			})
		}
	}
}

func benchIntegrations(b *testing.B, kind string, sinks int) {
	srv := startBenchServer(b, kind)
	cfg := benchConfig(srv)
	cfg.PartSize = s3sink.MinPartSize
	perSink := cfg.MaxFileBytes + 5<<20
	if sinks > 10 {
		perSink = 2*cfg.PartSize + 1<<20
	}
	factory, err := s3sink.NewFactory(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	buckets := make([]string, sinks)
	for i := range buckets {
		buckets[i] = srv.bucket(b)
	}
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(b)
	stopHeap, peakHeap := sampleHeap()
	var total atomic.Int64
	var evs atomic.Int64
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for i := range sinks {
			d := &discard{}
			in := integration(buckets[i], "", srv.key, srv.secret)
			in.ID = fmt.Sprintf("s3-%d", i)
			in.S3.Region = srv.region
			sink, err := factory.NewSink(context.Background(), d.env(in))
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer sink.Close(context.Background())
				src := newEventSource()
				var written int64
				for written < perSink {
					r, n := src.next()
					written += int64(n)
					if err := sink.Deliver(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
					evs.Add(1)
				}
				if err := sink.Flush(context.Background()); err != nil {
					b.Error(err)
				}
				if d.done.Load() != src.count() {
					b.Errorf("%d of %d events Done", d.done.Load(), src.count())
				}
				total.Add(written)
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	stopHeap()
	b.ReportMetric(float64(evs.Load())/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(total.Load())/(1<<20)/elapsed.Seconds(), "MB/s")
	b.ReportMetric(peakRSSMB(b), "peak_rss_MB")
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak_heap_MB")
}

// resetPeakRSS resets the kernel's RSS high-water mark of this process
// (Linux: writing 5 to clear_refs).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS (%v); peak_rss_MB covers the whole process life", err)
	}
}

func peakRSSMB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Logf("no /proc/self/status: %v", err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// sampleHeap records the largest live-heap size seen until stop is called.
func sampleHeap() (stop func(), peak *atomic.Uint64) {
	peak = new(atomic.Uint64)
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }, peak
}

// storedBytes sums the sizes of the objects in bucket.
func storedBytes(b *testing.B, c *s3.Client, bucket string) int64 {
	var n int64
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range page.Contents {
			n += aws.ToInt64(o.Size)
		}
	}
	return n
}

// BenchmarkS3FromKafka: the delivery service consuming events (~1 KiB)
// already in Kafka (kfake) into one S3 integration, 8 MiB files of 5 MiB
// parts, against a raw upload of the same bytes in the same layout. One op
// is 40,000 events (~40 MiB) produced beforehand into a fresh integration;
// its clock runs from the first stored file (so consumer group joining is
// not counted) until every file but the last, still open one is stored.
// The raw upload runs once before and once after the sink's.
func BenchmarkS3FromKafka(b *testing.B) {
	const perOp = 40000
	for _, kind := range []string{"gofakes3", "minio"} {
		b.Run("server="+kind, func(b *testing.B) {
			b.StopTimer()
			srv := startBenchServer(b, kind)
			w := newWorld(b)
			w.log = slog.New(slog.DiscardHandler)
			cfg := benchConfig(srv)
			cfg.MaxFileBytes = 8 << 20
			client := newClient(srv.endpoint, srv.key, srv.secret, srv.region)
			// The raw rate is the mean of one upload before the sink runs
			// and one after (the machine is shared; one sample can be off
			// by half).
			const rawProbe = 32 << 20
			rawBefore := rawUpload(b, client, srv.bucket(b), rawProbe, cfg)
			src := newEventSource()
			var (
				stored, events int64
				elapsed        time.Duration
			)
			for op := range b.N {
				bucket := srv.bucket(b)
				w.register(fmt.Sprintf("bench-%d", op), catalog.S3Target{AccessKeyID: srv.key, SecretAccessKey: srv.secret, Region: srv.region, Bucket: bucket}, nil)
				var total int64
				for sent := 0; sent < perOp; {
					n := min(perOp-sent, 5000)
					recs := make([]*kgo.Record, 0, n)
					for range n {
						r, size := src.next()
						r.Event.Tenant = w.tenant
						total += int64(size + len(w.tenant) - len(tenant))
						kr, err := kafka.EncodeRecord(context.Background(), r.Event)
						if err != nil {
							b.Fatal(err)
						}
						recs = append(recs, kr)
					}
					if err := w.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
						b.Fatal(err)
					}
					sent += n
				}
				target := total - cfg.MaxFileBytes // every file but the open one
				b.StartTimer()
				stop := w.startWorker(cfg)
				deadline := time.Now().Add(10 * time.Minute)
				var first, got int64
				start := time.Now()
				for got = storedBytes(b, client, bucket); got < target; got = storedBytes(b, client, bucket) {
					if first == 0 && got > 0 {
						first, start = got, time.Now()
					}
					if time.Now().After(deadline) {
						b.Fatalf("only %d of %d bytes stored", got, total)
					}
					<-time.After(5 * time.Millisecond) // poll interval
				}
				elapsed += time.Since(start)
				b.StopTimer()
				stop()
				stored += got - first
				events += (got - first) * perOp / total
			}
			if elapsed <= 0 || stored <= 0 {
				b.Fatalf("nothing measured (%d bytes in %v)", stored, elapsed)
			}
			rawAfter := rawUpload(b, client, srv.bucket(b), stored, cfg)
			mb := float64(stored) / (1 << 20)
			mbps := mb / elapsed.Seconds()
			rawMBps := (float64(rawProbe)/(1<<20)/rawBefore.Seconds() + mb/rawAfter.Seconds()) / 2
			b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			b.ReportMetric(mbps, "MB/s")
			b.ReportMetric(rawMBps, "raw_MB/s")
			b.ReportMetric(mbps/rawMBps, "ratio")
		})
	}
}
