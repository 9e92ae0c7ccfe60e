package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/ingest"
)

func TestMain(m *testing.M) {
	testenv.RunAsProcess(ingest.Run) // the process tests re-execute this binary
	// Trace context must cross the service into Kafka headers, as with
	// telemetry.Setup in production.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	testenv.Main(m)
}

const secret = "ingest-test-secret-0123456789abcdef"

// harness is one ingest service over a fresh catalog and a Kafka cluster.
type harness struct {
	t       *testing.T
	cfg     ingest.Config
	srv     *ingest.Server
	url     string
	store   *catalog.Store
	brokers []string
	adm     *kadm.Client
}

func newHarness(t *testing.T, brokers []string, mod func(*ingest.Config)) *harness {
	t.Helper()
	store, _ := testenv.NewStore(t)
	cfg := ingest.Config{Brokers: brokers, Auth: auth.Config{HS256Secret: secret}}.WithDefaults()
	if mod != nil {
		mod(&cfg)
	}
	client, err := kafka.NewProducer(brokers, cfg.ProduceTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	v, err := auth.NewVerifier(context.Background(), cfg.Auth)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.New(cfg, client, store, v)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	return &harness{t: t, cfg: cfg, srv: srv, url: hs.URL, store: store, brokers: brokers, adm: kadm.NewClient(admCl)}
}

var tenantSeq atomic.Int64

// newTenant provisions a tenant unique to this test binary run: its catalog
// row and its topic.
func (h *harness) newTenant() string {
	h.t.Helper()
	name := fmt.Sprintf("t%d-%s", tenantSeq.Add(1), strconv.FormatInt(time.Now().UnixNano(), 36))
	h.provision(name)
	return name
}

func (h *harness) provision(name string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.store.CreateTenant(ctx, name); err != nil {
		h.t.Fatal(err)
	}
	if err := kafka.ProvisionTenant(ctx, h.adm, name, 3, 1, kafka.DefaultRetention); err != nil {
		h.t.Fatal(err)
	}
}

func token(t testing.TB, tenant string, scopes ...string) string {
	t.Helper()
	if scopes == nil {
		scopes = []string{auth.ScopeEventsPublish}
	}
	tok, err := auth.Mint(secret, tenant, scopes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	body   []byte
	json   map[string]any
}

// post sends body to POST /v1/events. tok "" sends no Authorization header.
func (h *harness) post(tok string, body []byte, headers ...string) response {
	h.t.Helper()
	return postTo(h.t, h.url, tok, body, headers...)
}

func postTo(t testing.TB, url, tok string, body []byte, headers ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, body: b}
	if err := json.Unmarshal(b, &r.json); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", resp.StatusCode, err, b)
	}
	checkAgainstDoc(t, "/v1/events", "post", resp.StatusCode, b)
	return r
}

// consume reads n records of tenant's topic from the beginning with its own
// client (not the service's), failing after a deadline.
func consume(t testing.TB, brokers []string, tenant string, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(events.TopicName(tenant)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s before the deadline", len(recs), n, events.TopicName(tenant))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// endOffsets sums the end offsets of tenant's topic: how many records it holds.
func (h *harness) endOffsets(tenant string) int64 {
	h.t.Helper()
	offs, err := h.adm.ListEndOffsets(context.Background(), events.TopicName(tenant))
	if err != nil {
		h.t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
