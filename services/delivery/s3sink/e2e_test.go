package s3sink_test

// End-to-end tests: the delivery service (consumer core) running the S3 sink,
// against an in-process Kafka (kfake), a test Postgres catalog and the
// embedded S3 server. Nothing here is a test double.

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/s3local"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
	"github.com/eventstream/eventstream/services/delivery/worker"
)

// workerEnv marks a re-executed test binary that runs one delivery worker
// process with the S3 sink (configured through the environment), so a test
// can kill it like a crashed pod.
const workerEnv = "S3SINK_TEST_WORKER"

// runWorkerProcess is the delivery binary's main (S3 sink included).
func runWorkerProcess() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.Run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// world is one end-to-end test's system: catalog, a dedicated kfake cluster
// with the tenant's topic, a producer and an embedded S3 server.
type world struct {
	t       testing.TB
	store   *catalog.Store
	db      *testenv.DB
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
	tenant  string
	s3      *s3local.Server
	seq     atomic.Int64
	log     *slog.Logger // the workers'
}

func newWorld(t testing.TB, s3opts ...s3local.Option) *world {
	t.Helper()
	base := testenv.NewWorld(t, "s3t", 3)
	return &world{t: t, store: base.Store, db: base.DB, brokers: base.Brokers, cl: base.Client, adm: base.Admin,
		tenant: base.Tenant, s3: startS3(t, s3opts...), log: slog.Default()}
}

func (w *world) deliveryConfig() delivery.Config {
	return delivery.Config{
		Brokers:          w.brokers,
		StopPropagation:  time.Second,
		ResyncInterval:   2 * time.Second,
		SessionTimeout:   time.Second,
		RebalanceTimeout: 6 * time.Second,
		CommitInterval:   50 * time.Millisecond,
		DrainTimeout:     5 * time.Second,
	}
}

func (w *world) s3Config() s3sink.Config {
	c := testConfig(w.s3.URL())
	c.MaxFileAge = 300 * time.Millisecond
	return c
}

// startWorker runs an in-process delivery worker with the S3 sink until the
// returned stop is called (or the test ends).
func (w *world) startWorker(s3cfg s3sink.Config) (stop func()) {
	w.t.Helper()
	f, err := s3sink.NewFactory(s3cfg, w.log)
	if err != nil {
		w.t.Fatal(err)
	}
	svc, err := delivery.New(w.deliveryConfig(), w.store, w.db.Pool, f.Option(), delivery.WithLogger(w.log))
	if err != nil {
		w.t.Fatal(err)
	}
	return testenv.Start(w.t, "worker", svc.Run)
}

// register creates an S3 integration of the tenant (running).
func (w *world) register(id string, target catalog.S3Target, mod func(*catalog.Integration)) *catalog.Integration {
	w.t.Helper()
	in := &catalog.Integration{Tenant: w.tenant, ID: id, Type: catalog.TypePermanent, S3: &target}
	if mod != nil {
		mod(in)
	}
	if err := w.store.CreateIntegration(context.Background(), in, 10); err != nil {
		w.t.Fatal(err)
	}
	return in
}

// produce publishes n events cycling through names, each payload carrying
// its sequence number and pad filler bytes; it returns seq → expected line.
func (w *world) produce(n, pad int, names ...string) map[int]*eventspb.Event {
	w.t.Helper()
	out := make(map[int]*eventspb.Event, n)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		seq := int(w.seq.Add(1))
		name := names[i%len(names)]
		et, _ := events.EntityType(name)
		key := fmt.Sprintf("k-%d", seq)
		ev := &eventspb.Event{
			EventId: events.EventID(w.tenant, name, key).String(), Tenant: w.tenant, Name: name,
			PublishedAt: timestamppb.New(time.Date(2024, 3, 1, 10, 0, 0, seq*int(time.Millisecond), time.UTC)),
			Payload:     fmt.Appendf(nil, `{"id":"%s-%d","seq":%d,"pad":%q}`, et, seq, seq, strings.Repeat("p", pad)),
			EntityType:  et, DomainEntityId: fmt.Sprintf("%s-%d", et, seq), IdempotencyKey: key,
			IngestedAt: timestamppb.Now(),
		}
		out[seq] = ev
		r, err := kafka.EncodeRecord(context.Background(), ev)
		if err != nil {
			w.t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := w.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func linesOf(evs map[int]*eventspb.Event) map[int]string {
	m := make(map[int]string, len(evs))
	for seq, ev := range evs {
		m[seq] = string(events.AppendBody(nil, ev))
	}
	return m
}

func (w *world) client() *s3.Client { return newClient(w.s3.URL(), "k", "s", "eu-west-1") }

// waitStored polls the bucket until every wanted event is stored at least
// once, checking every object on the way (key pattern, exact lines, no empty
// file). It returns the objects and how often each event was seen.
func (w *world) waitStored(bucket, prefix string, want map[int]string, within time.Duration) ([]s3Object, map[int]int) {
	w.t.Helper()
	var objs []s3Object
	var seen map[int]int
	testenv.WaitFor(w.t, within, fmt.Sprintf("%d events in s3://%s", len(want), bucket), func() bool {
		if _, err := w.client().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
			return false
		}
		objs = readAll(w.t, w.client(), bucket)
		seen = checkObjectsOf(w.t, objs, prefix, w.tenant, want)
		for seq := range want {
			if seen[seq] == 0 {
				return false
			}
		}
		return true
	})
	return objs, seen
}

// checkObjectsOf is checkObjects for another tenant than the default one.
func checkObjectsOf(t testing.TB, objs []s3Object, prefix, tenantName string, want map[int]string) map[int]int {
	t.Helper()
	renamed := make([]s3Object, len(objs))
	for i, o := range objs {
		m := keyPattern.FindStringSubmatch(o.Key)
		if m == nil || m[2] != tenantName {
			t.Fatalf("key %q is not under tenant %s", o.Key, tenantName)
		}
		// checkObjects matches the default tenant; the key is otherwise
		// checked there in full.
		o.Key = strings.Replace(o.Key, tenantName+"/", tenant+"/", 1)
		renamed[i] = o
	}
	return checkObjects(t, renamed, prefix, want)
}

type dbAttempt struct {
	Status, Filename, EventID string
	Code                      *int
	Body                      *string
	RetriesRemaining          int
}

func (w *world) attempts(id string) []dbAttempt {
	w.t.Helper()
	// One element per event: a file row's events expanded in file order.
	rows, err := w.db.Pool.Query(context.Background(), `SELECT status, coalesce(filename, ''), e.id::text,
		response_code, response_body, retries_remaining
		FROM publish_attempts p CROSS JOIN LATERAL unnest(coalesce(p.event_ids, ARRAY[p.event_id])) WITH ORDINALITY e(id, pos)
		WHERE tenant = $1 AND integration_id = $2 AND target = 's3' ORDER BY attempted_at, p.id, e.pos`, w.tenant, id)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []dbAttempt
	for rows.Next() {
		var a dbAttempt
		if err := rows.Scan(&a.Status, &a.Filename, &a.EventID, &a.Code, &a.Body, &a.RetriesRemaining); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func (w *world) logs(id string) []catalog.LogEntry {
	w.t.Helper()
	l, err := w.store.ListLogs(context.Background(), w.tenant, id, 200)
	if err != nil {
		w.t.Fatal(err)
	}
	return l
}

// TestE2EDeliver: two S3 integrations, one filtered; events produced to
// Kafka end up in each bucket as NDJSON files rotated by size and by age,
// with a SUCCESS attempt row per event naming its object.
func TestE2EDeliver(t *testing.T) {
	w := newWorld(t)
	cfg := w.s3Config()
	cfg.MaxFileBytes = 8 << 10
	w.startWorker(cfg)
	all := w.register("s3-all", catalog.S3Target{AccessKeyID: "k", SecretAccessKey: "s", Region: "eu-west-1", Bucket: "e2e-all", KeyPrefix: "exports/"}, nil)
	w.register("s3-orders", catalog.S3Target{AccessKeyID: "k", SecretAccessKey: "s", Region: "eu-west-1", Bucket: "e2e-orders"},
		func(in *catalog.Integration) { in.EventFilter = []string{"order.created"} })
	evs := w.produce(120, 300, "order.created", "invoice.created", "customer.updated")
	want := linesOf(evs)
	orders := map[int]string{}
	for seq, ev := range evs {
		if ev.GetName() == "order.created" {
			orders[seq] = want[seq]
		}
	}

	objs, seen := w.waitStored("e2e-all", "exports", want, 60*time.Second)
	if len(objs) < 5 {
		t.Fatalf("%d files for ~60 KiB at 8 KiB each: size rotation did not happen", len(objs))
	}
	for _, o := range objs {
		if o.Size > cfg.MaxFileBytes {
			t.Fatalf("%s has %d bytes, over %d", o.Key, o.Size, cfg.MaxFileBytes)
		}
	}
	orderObjs, _ := w.waitStored("e2e-orders", "", orders, 60*time.Second)
	for _, o := range orderObjs {
		if bytes.Contains(o.Body, []byte(`"name":"invoice.created"`)) || bytes.Contains(o.Body, []byte(`"name":"customer.updated"`)) {
			t.Fatalf("the filtered integration got other events in %s", o.Key)
		}
	}

	// Every event of the unfiltered integration has a SUCCESS row naming
	// the object that holds it.
	keys := map[string]bool{}
	for _, o := range objs {
		keys[o.Key] = true
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[ev.GetEventId()] = true
	}
	testenv.WaitFor(t, 30*time.Second, "SUCCESS attempt rows for every event", func() bool {
		got := map[string]bool{}
		for _, a := range w.attempts(all.ID) {
			if a.Status != catalog.AttemptSuccess || !keys[a.Filename] || a.RetriesRemaining != 10 {
				t.Fatalf("attempt %+v (objects %v)", a, keys)
			}
			got[a.EventID] = true
		}
		return len(got) == len(ids)
	})
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d files, %d duplicate lines", len(objs), dups)
}

// TestE2EBadCredentialsThenFix: uploads refused with 403 are retried, logged
// and recorded, then the integration stops with nothing committed; fixing
// the secret (PATCH) and starting it again delivers every event.
func TestE2EBadCredentialsThenFix(t *testing.T) {
	w := newWorld(t, s3local.WithCredentials("AKIAE2E", "right-secret"))
	cfg := w.s3Config()
	cfg.MaxRetries = 2
	w.startWorker(cfg)
	in := w.register("s3-creds", catalog.S3Target{AccessKeyID: "AKIAE2E", SecretAccessKey: "wrong-secret", Region: "eu-west-1", Bucket: "e2e-creds"}, nil)
	evs := w.produce(30, 50, "order.created", "invoice.created")
	want := linesOf(evs)

	testenv.WaitFor(t, 60*time.Second, "the integration to stop", func() bool {
		got, err := w.store.GetIntegration(context.Background(), w.tenant, in.ID)
		return err == nil && got.Status == catalog.StatusStopped
	})
	logs := w.logs(in.ID)
	var retries, stops int
	for _, l := range logs {
		switch l.Action {
		case catalog.ActionRetry:
			retries += l.Repeats
			if !strings.HasPrefix(l.Reason, "Upload of s3://e2e-creds/"+w.tenant+"/") ||
				!strings.HasSuffix(l.Reason, "Reason: SignatureDoesNotMatch: Invalid access credentials. (HTTP status code 403)") {
				t.Fatalf("retry log %q", l.Reason)
			}
		case catalog.ActionStopped:
			stops++
			if !strings.HasPrefix(l.Reason, "Stopped after 2 failed retries uploading to S3") {
				t.Fatalf("stop log %q", l.Reason)
			}
		}
	}
	if retries != 2 || stops != 1 {
		t.Fatalf("logs %+v: want 2 retries and 1 stop", logs)
	}
	testenv.WaitFor(t, 30*time.Second, "FAILURE attempt rows", func() bool {
		rows := w.attempts(in.ID)
		for _, a := range rows {
			if a.Status != catalog.AttemptFailure || a.Code == nil || *a.Code != 403 || a.Body == nil || *a.Body != "Invalid access credentials." {
				t.Fatalf("attempt %+v", a)
			}
		}
		return len(rows) >= 3*len(evs)/2 // the first file's events, three tries each
	})
	good := newClient(w.s3.URL(), "AKIAE2E", "right-secret", "eu-west-1")
	if _, err := good.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("e2e-creds")}); err == nil {
		if objs := readAll(t, good, "e2e-creds"); len(objs) != 0 {
			t.Fatalf("objects stored with a wrong secret: %d", len(objs))
		}
	}

	// PATCH the secret, then _start.
	ctx := context.Background()
	if _, err := w.store.UpdateIntegration(ctx, w.tenant, in.ID, func(in *catalog.Integration) error {
		in.S3.SecretAccessKey = "right-secret"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.SetStatus(ctx, w.tenant, in.ID, catalog.StatusRunning, catalog.ActionStarted, "Started via API."); err != nil {
		t.Fatal(err)
	}
	var seen map[int]int
	testenv.WaitFor(t, 60*time.Second, "every event after the fix", func() bool {
		if _, err := good.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("e2e-creds")}); err != nil {
			return false
		}
		seen = checkObjectsOf(t, readAll(t, good, "e2e-creds"), "", w.tenant, want)
		return len(seen) == len(want)
	})
}

// TestE2EKillMidFile: a worker process is killed (SIGKILL) while its file is
// half uploaded (a multipart upload open, no object yet): nothing was
// committed, so the next worker delivers every event.
func TestE2EKillMidFile(t *testing.T) {
	w := newWorld(t)
	in := w.register("s3-kill", catalog.S3Target{AccessKeyID: "k", SecretAccessKey: "s", Region: "eu-west-1", Bucket: "e2e-kill"}, nil)
	evs := w.produce(3000, 2<<10, "order.created", "invoice.created") // ~6.5 MiB: more than one part
	want := linesOf(evs)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		workerEnv+"=1",
		"KAFKA_BROKERS="+strings.Join(w.brokers, ","),
		"DATABASE_URL="+w.db.URL,
		"SECRETS_KEY="+hex.EncodeToString(testenv.TestKey),
		"KAFKA_SESSION_TIMEOUT=1s", "KAFKA_REBALANCE_TIMEOUT=6s", "DELIVERY_COMMIT_INTERVAL=50ms",
		"S3_ENDPOINT="+w.s3.URL(),
		"S3_MAX_FILE_AGE=1h", // the file never completes on its own
		"S3_MAX_FILE_BYTES=50MiB",
		"DELIVERY_ADDR=127.0.0.1:0",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	c := w.client()
	testenv.WaitFor(t, 60*time.Second, "the worker to be mid-file (a multipart upload open)", func() bool {
		select {
		case <-exited:
			t.Fatalf("worker exited early:\n%s", out.String())
		default:
		}
		ups, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("e2e-kill")})
		return err == nil && len(ups.Uploads) == 1
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if objs := readAll(t, c, "e2e-kill"); len(objs) != 0 {
		t.Fatalf("%d objects before the kill; the test wanted the worker mid-file", len(objs))
	}

	w.startWorker(w.s3Config())
	_, seen := w.waitStored("e2e-kill", "", want, 90*time.Second)
	if len(seen) != len(want) {
		t.Fatalf("%d of %d events stored", len(seen), len(want))
	}
	// Offsets move only after objects are stored: the group reaches the end.
	group := fmt.Sprintf("eventstream.%s.%s.%d", in.Tenant, in.ID, in.Generation)
	testenv.WaitFor(t, 30*time.Second, "offsets committed to the end", func() bool {
		ends, err := w.adm.ListEndOffsets(context.Background(), events.TopicName(w.tenant))
		if err != nil {
			return false
		}
		committed, err := w.adm.FetchOffsets(context.Background(), group)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if c, found := committed.Lookup(o.Topic, o.Partition); o.Offset > 0 && (!found || c.At < o.Offset) {
				ok = false
			}
		})
		return ok
	})
}
