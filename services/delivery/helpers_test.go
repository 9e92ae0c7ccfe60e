package delivery_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/worker"
)

// workerEnv marks a re-executed test binary that runs one delivery worker
// process (configured through the environment) instead of the tests.
const workerEnv = "DELIVERY_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(runWorkerProcess())
	}
	testenv.Main(m)
}

// runWorkerProcess is the delivery binary's main, for subprocess tests.
func runWorkerProcess() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.Run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// env is one test's world: a catalog database, a dedicated kfake cluster
// with the tenant's topic, and a producer.
type env struct {
	t       testing.TB
	store   *catalog.Store
	db      *testenv.DB
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
	tenant  string
	topic   string
	seq     atomic.Int64
}

func newEnv(t testing.TB, partitions int32) *env {
	t.Helper()
	w := testenv.NewWorld(t, "t", partitions)
	return &env{t: t, store: w.Store, db: w.DB, brokers: w.Brokers, cl: w.Client, adm: w.Admin, tenant: w.Tenant, topic: w.Topic}
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// config is a worker configuration with test-speed timings.
func (e *env) config() delivery.Config {
	return delivery.Config{
		Brokers:          e.brokers,
		AllowCIDRs:       loopback,
		StopPropagation:  time.Second,
		ResyncInterval:   2 * time.Second,
		RetryBase:        5 * time.Millisecond,
		RetryMax:         40 * time.Millisecond,
		SessionTimeout:   3 * time.Second,
		RebalanceTimeout: 6 * time.Second,
		CommitInterval:   50 * time.Millisecond,
		DrainTimeout:     2 * time.Second,
		ClockSkew:        100 * time.Millisecond,
		AttemptTimeout:   2 * time.Second,
	}
}

// startWorker runs an in-process worker until the returned stop is called
// (or the test ends).
func (e *env) startWorker(cfg delivery.Config) (stop func()) {
	e.t.Helper()
	_, stop = e.startService(cfg)
	return stop
}

// startService is startWorker returning the service too.
func (e *env) startService(cfg delivery.Config) (svc *delivery.Service, stop func()) {
	e.t.Helper()
	svc, err := delivery.New(cfg, e.store, e.db.Pool)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc, testenv.Start(e.t, "worker", svc.Run)
}

// event builds the i-th test event of name (entity id and idempotency key
// derived from i).
func (e *env) event(name string, i int, ingested time.Time) *eventspb.Event {
	et, _ := events.EntityType(name)
	key := fmt.Sprintf("k-%d", i)
	return &eventspb.Event{
		EventId:        events.EventID(e.tenant, name, key).String(),
		Tenant:         e.tenant,
		Name:           name,
		PublishedAt:    timestamppb.New(time.Date(2024, 3, 1, 10, 0, 0, i*int(time.Millisecond), time.UTC)),
		Payload:        []byte(fmt.Sprintf(`{"id":"%s-%d","n":%d,"note":"caf\u00e9 \"quoted\""}`, et, i, i)),
		EntityType:     et,
		DomainEntityId: fmt.Sprintf("%s-%d", et, i),
		IdempotencyKey: key,
		IngestedAt:     timestamppb.New(ingested),
	}
}

// produce appends evs to the tenant topic synchronously.
func (e *env) produce(evs ...*eventspb.Event) {
	e.t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		r, err := kafka.EncodeRecord(context.Background(), ev)
		if err != nil {
			e.t.Fatal(err)
		}
		recs[i] = r
	}
	if err := e.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// produceN produces n new events of name and returns them.
func (e *env) produceN(name string, n int) []*eventspb.Event {
	evs := make([]*eventspb.Event, n)
	for i := range evs {
		evs[i] = e.event(name, int(e.seq.Add(1)), time.Now())
	}
	e.produce(evs...)
	return evs
}

// register creates a webhook integration of the test tenant.
func (e *env) register(id string, hook catalog.Webhook, mod func(*catalog.Integration)) *catalog.Integration {
	e.t.Helper()
	in := &catalog.Integration{Tenant: e.tenant, ID: id, Type: catalog.TypePermanent, Webhook: &hook}
	if mod != nil {
		mod(in)
	}
	if err := e.store.CreateIntegration(context.Background(), in, 10); err != nil {
		e.t.Fatal(err)
	}
	return in
}

func (e *env) group(in *catalog.Integration) string {
	return fmt.Sprintf("eventstream.%s.%s.%d", in.Tenant, in.ID, in.Generation)
}

// waitCommittedToEnd waits until the group has committed every partition to
// its current end: everything produced so far has a final outcome.
func (e *env) waitCommittedToEnd(group string) {
	e.t.Helper()
	ctx := context.Background()
	ends, err := e.adm.ListEndOffsets(ctx, e.topic)
	if err != nil {
		e.t.Fatal(err)
	}
	testenv.WaitFor(e.t, 30*time.Second, "group "+group+" committed to the end", func() bool {
		committed, err := e.adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			c, found := committed.Lookup(e.topic, o.Partition)
			if !found || c.At < o.Offset {
				ok = false
			}
		})
		return ok
	})
}

func (e *env) status(id string) *catalog.Integration {
	e.t.Helper()
	in, err := e.store.GetIntegration(context.Background(), e.tenant, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

func (e *env) logs(id string) []catalog.LogEntry {
	e.t.Helper()
	l, err := e.store.ListLogs(context.Background(), e.tenant, id, 200)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// countAction counts the entries of action, each as often as it repeated
// (repeated retry_triggered entries are coalesced).
func countAction(logs []catalog.LogEntry, action string) int {
	n := 0
	for _, l := range logs {
		if l.Action == action {
			n += max(l.Repeats, 1)
		}
	}
	return n
}

type attemptRow struct {
	EventName, Status, URL string
	Code                   *int
	Body                   *string
	RetriesRemaining       int
	ResponseTimeMS         int
	EventID                string
	DomainEntityID         string
	DomainEntityType       string
	IntegrationType        string
	Target                 string
}

// attempts reads the integration's attempt rows, oldest first.
func (e *env) attempts(id string) []attemptRow {
	e.t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT event_name, status, coalesce(url, ''), response_code,
		response_body, retries_remaining, coalesce(response_time_ms, 0), event_id::text, domain_entity_id,
		domain_entity_type, integration_type, target
		FROM publish_attempts WHERE tenant = $1 AND integration_id = $2 ORDER BY attempted_at, id`, e.tenant, id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []attemptRow
	for rows.Next() {
		var a attemptRow
		if err := rows.Scan(&a.EventName, &a.Status, &a.URL, &a.Code, &a.Body, &a.RetriesRemaining, &a.ResponseTimeMS,
			&a.EventID, &a.DomainEntityID, &a.DomainEntityType, &a.IntegrationType, &a.Target); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// receiver is a webhook endpoint recording every request.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	// respond decides the status for the n-th request (1-based) carrying an
	// idempotency key; nil answers 200.
	respond func(key string, n int) int
	tries   map[string]int // requests per Idempotency-Key
	ok      map[string]int // 2xx answers per Idempotency-Key
	reqs    []received
}

type received struct {
	at     time.Time
	header http.Header
	body   []byte
	status int
}

func newReceiver(t testing.TB, respond func(key string, n int) int) *receiver {
	r := &receiver{respond: respond, tries: map[string]int{}, ok: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		key := req.Header.Get("Idempotency-Key")
		r.mu.Lock()
		r.tries[key]++
		n := r.tries[key]
		respond := r.respond
		r.mu.Unlock()
		status := http.StatusOK
		if respond != nil {
			status = respond(key, n)
		}
		r.mu.Lock()
		if status >= 200 && status < 300 {
			r.ok[key]++
		}
		r.reqs = append(r.reqs, received{at: time.Now(), header: req.Header.Clone(), body: body, status: status})
		r.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "status %d", status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) setRespond(f func(key string, n int) int) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

// delivered is how many distinct keys got a 2xx.
func (r *receiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ok)
}

func (r *receiver) okCount(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok[key]
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// duplicates is how many 2xx deliveries beyond the first there were.
func (r *receiver) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := 0
	for _, n := range r.ok {
		d += n - 1
	}
	return d
}

func idemKey(ev *eventspb.Event) string { return ev.GetName() + ":" + ev.GetIdempotencyKey() }

// waitDelivered waits until every event got at least one 2xx.
func (r *receiver) waitDelivered(t testing.TB, timeout time.Duration, evs []*eventspb.Event) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("%d events delivered (have %d distinct, %d requests)", len(evs), r.delivered(), len(r.requests())), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, ev := range evs {
			if r.ok[idemKey(ev)] == 0 {
				return false
			}
		}
		return true
	})
}
