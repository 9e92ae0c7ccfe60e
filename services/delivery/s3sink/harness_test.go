package s3sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/s3local"
	"github.com/eventstream/eventstream/services/delivery"
)

// core is a test double of the delivery consumer core: it records what the
// sink reports (Done records, interrupts, attempt rows, log entries). The S3
// side the sink talks to is always a real server.
type core struct {
	mu         sync.Mutex
	done       []*delivery.Record
	interrupts []string
	attempts   []catalog.Attempt // one per event, as the observability API shows them
	rows       []catalog.Attempt // attempt rows as written
	logs       []string          // action: reason
}

func (c *core) env(in *catalog.Integration) delivery.SinkEnv {
	return delivery.SinkEnv{
		Integration: in,
		Done: func(recs ...*delivery.Record) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.done = append(c.done, recs...)
		},
		Interrupt: func(_ delivery.StopCause, reason string) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.interrupts = append(c.interrupts, reason)
		},
		Attempts: c,
		Logs:     c,
	}
}

func (c *core) Write(_ context.Context, a ...catalog.Attempt) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, a...)
	for _, row := range a {
		if row.FileEvents == nil {
			c.attempts = append(c.attempts, row)
			continue
		}
		for _, e := range row.FileEvents {
			ev := row
			ev.FileEvents = nil
			ev.EventID, ev.DomainEntityID, ev.DomainEntityType, ev.EventName = e.EventID, e.DomainEntityID, e.DomainEntityType, e.EventName
			c.attempts = append(c.attempts, ev)
		}
	}
	return nil
}

func (c *core) rowsWritten() []catalog.Attempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rows)
}

func (c *core) WriteThen(ctx context.Context, after func(bool), a ...catalog.Attempt) error {
	if err := c.Write(ctx, a...); err != nil {
		return err
	}
	after(true)
	return nil
}

func (c *core) AddLog(_ context.Context, _, _, action, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logs = append(c.logs, action+": "+reason)
	return nil
}

func (c *core) doneCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.done)
}

func (c *core) snapshot() (done []*delivery.Record, interrupts []string, attempts []catalog.Attempt, logs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.done), slices.Clone(c.interrupts), slices.Clone(c.attempts), slices.Clone(c.logs)
}

const tenant = "acme"

func integration(bucket, prefix, key, secret string) *catalog.Integration {
	return &catalog.Integration{
		Tenant: tenant, ID: "s3-export", Generation: 1, Type: catalog.TypePermanent, Status: catalog.StatusRunning,
		S3:        &catalog.S3Target{AccessKeyID: key, SecretAccessKey: secret, Region: "eu-west-1", Bucket: bucket, KeyPrefix: prefix},
		CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}
}

var names = []string{"order.created", "invoice.created", "payment_account.amount_captured", "customer.updated"}

// makeRecords builds n records whose payload carries its sequence number and
// pad bytes of filler, spread over three partitions.
func makeRecords(n, pad int) []*delivery.Record {
	recs := make([]*delivery.Record, n)
	for i := range n {
		name := names[i%len(names)]
		if !events.IsKnownName(name) {
			panic("unknown event name " + name)
		}
		entity, _ := events.EntityType(name)
		idem := fmt.Sprintf("k-%d", i)
		payload := fmt.Sprintf(`{"id":"e-%d","seq":%d,"pad":%q}`, i, i, strings.Repeat("x", pad))
		recs[i] = &delivery.Record{
			Event: &eventspb.Event{
				EventId: events.EventID(tenant, name, idem).String(), Tenant: tenant, Name: name,
				PublishedAt: timestamppb.New(time.UnixMilli(1_700_000_000_000 + int64(i))), Payload: []byte(payload),
				EntityType: entity, DomainEntityId: fmt.Sprintf("e-%d", i), IdempotencyKey: idem,
				IngestedAt: timestamppb.Now(),
			},
			Partition: int32(i % 3), Offset: int64(i / 3),
		}
	}
	return recs
}

// expectedLines are the exact bodies of recs, computed before delivery.
func expectedLines(recs []*delivery.Record) map[int]string {
	m := make(map[int]string, len(recs))
	for i, r := range recs {
		m[i] = string(events.AppendBody(nil, r.Event))
	}
	return m
}

// s3Object is one stored export file as read back.
type s3Object struct {
	Key  string
	Size int64
	ETag string
	Body []byte
}

// readAll lists and downloads every object of bucket.
func readAll(t testing.TB, c *s3.Client, bucket string) []s3Object {
	t.Helper()
	ctx := context.Background()
	var out []s3Object
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatalf("getting %s: %v", *o.Key, err)
			}
			body, err := io.ReadAll(g.Body)
			g.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s3Object{Key: *o.Key, Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), Body: body})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

var keyPattern = regexp.MustCompile(`^(?:(.+)/)?([a-z0-9-]+)/(\d{13})-data-([0-9a-f]{10})\.export$`)

// checkObjects verifies every object: key pattern under prefix, no empty
// file, each line the exact envelope of one of want, and returns how often
// each sequence number was seen.
func checkObjects(t testing.TB, objs []s3Object, prefix string, want map[int]string) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for _, o := range objs {
		m := keyPattern.FindStringSubmatch(o.Key)
		if m == nil || m[1] != strings.Trim(prefix, "/") || m[2] != tenant {
			t.Fatalf("key %q does not match {prefix}/{tenant}/{millis}-data-{random}.export with prefix %q", o.Key, prefix)
		}
		if strings.Contains(o.Key, "//") {
			t.Fatalf("key %q has a double slash", o.Key)
		}
		if len(o.Body) == 0 {
			t.Fatalf("empty file %s", o.Key)
		}
		if !bytes.HasSuffix(o.Body, []byte("\n")) {
			t.Fatalf("file %s does not end with a newline", o.Key)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(o.Body), "\n"), "\n") {
			var env struct {
				Tenant      string          `json:"tenant"`
				Name        string          `json:"name"`
				PublishedAt string          `json:"published_at"`
				Payload     json.RawMessage `json:"payload"`
			}
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&env); err != nil {
				t.Fatalf("line of %s is not the envelope: %v: %.120s", o.Key, err, line)
			}
			var p struct{ Seq int }
			if err := json.Unmarshal(env.Payload, &p); err != nil {
				t.Fatalf("payload: %v", err)
			}
			if want[p.Seq] != line {
				t.Fatalf("line for event %d is\n%.200s\nwant\n%.200s", p.Seq, line, want[p.Seq])
			}
			seen[p.Seq]++
		}
	}
	return seen
}

func newClient(endpoint, key, secret, region string) *s3.Client {
	return s3.New(s3.Options{
		Region: region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
}

// startS3 starts the embedded server for one test.
func startS3(t testing.TB, opts ...s3local.Option) *s3local.Server {
	t.Helper()
	srv, err := s3local.Start(context.Background(), t.TempDir(), "127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// faultProxy sits between the sink and a real S3 server and lets a test hold
// or delay requests.
type faultProxy struct {
	*httptest.Server
	mu   sync.Mutex
	hook func(r *http.Request) // runs before forwarding; may block
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hook := p.hook
		p.mu.Unlock()
		if hook != nil {
			hook(r)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *faultProxy) setHook(h func(*http.Request)) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}
