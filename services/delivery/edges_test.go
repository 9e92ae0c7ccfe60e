package delivery_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
)

// An integration whose committed offsets vanished (the broker's offsets
// retention expired them while it was stopped) resumes from its offset
// checkpoints, or, for a group without any (it predates them), from when it
// stopped: what it delivered before is not replayed, what was published
// while it was stopped arrives.
func TestLostOffsetsResumeFromTheStopNotTheRegistration(t *testing.T) {
	for _, tc := range []struct {
		name        string
		checkpoints bool
	}{{"from the offset checkpoints", true}, {"by time without checkpoints", false}} {
		t.Run(tc.name, func(t *testing.T) { testLostOffsetsResume(t, tc.checkpoints) })
	}
}

func testLostOffsetsResume(t *testing.T, checkpoints bool) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.OffsetCheckpointInterval = 50 * time.Millisecond
	e.startWorker(cfg)
	first := e.produceN("order.created", 20)
	rcv.waitDelivered(t, 30*time.Second, first)
	e.waitCommittedToEnd(e.group(in))
	testenv.WaitFor(t, 10*time.Second, "the catalog to know the group committed", func() bool {
		st, err := e.store.GetDeliveryState(context.Background(), e.tenant, "erp-1")
		return err == nil && st.OffsetsCommitted
	})

	ctx := context.Background()
	if _, err := e.store.SetStatus(ctx, e.tenant, "erp-1", catalog.StatusStopped, catalog.ActionStopped, "Stopped via API."); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "consumer left", func() bool { return len(e.members(e.group(in))) == 0 })
	// The broker forgets the group's offsets (retention expiry).
	if _, err := e.adm.DeleteGroups(ctx, e.group(in)); err != nil {
		t.Fatal(err)
	}
	if !checkpoints {
		// Once the worker has copied its last commits, the copies go.
		testenv.WaitFor(t, 10*time.Second, "the offset checkpoints of the 20 deliveries", func() bool {
			cps, err := e.store.OffsetCheckpoints(ctx, e.tenant, in.ID, in.Generation, 0)
			return err == nil && cps[0]+cps[1] == int64(len(first))
		})
		if _, err := e.db.Pool.Exec(ctx, `DELETE FROM delivery_offset_checkpoints`); err != nil {
			t.Fatal(err)
		}
	}
	missed := e.produceN("order.created", 10)
	if _, err := e.store.SetStatus(ctx, e.tenant, "erp-1", catalog.StatusRunning, catalog.ActionStarted, "Started via API."); err != nil {
		t.Fatal(err)
	}
	later := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, append(missed, later...))
	e.waitCommittedToEnd(e.group(in))
	for _, ev := range first {
		if n := rcv.okCount(idemKey(ev)); n != 1 {
			t.Fatalf("an event delivered before the stop was delivered %d times: the stream replayed from the registration", n)
		}
	}
}

func TestWorkerWarnsWhenTheBrokerKeepsOffsetsShorter(t *testing.T) {
	store, db := testenv.NewStore(t)
	cluster := testenv.NewKafka(t, kfake.BrokerConfigs(map[string]string{"offsets.retention.minutes": "60"}))
	var logs testenv.SyncBuffer
	cfg := delivery.Config{Brokers: cluster.ListenAddrs(), OffsetRetention: 30 * 24 * time.Hour}
	svc, err := delivery.New(cfg, store, db.Pool, delivery.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, "worker", svc.Run)
	testenv.WaitFor(t, 10*time.Second, "the retention warning", func() bool {
		return strings.Contains(logs.String(), "offsets.retention.minutes on the brokers to at least 43200")
	})
}

// A temporary integration filters records one by one: an in-window record
// that follows a later-stamped one (ingest hosts' clocks differ) is still
// delivered, and the window completes.
func TestTemporaryWindowDeliversALateInWindowRecord(t *testing.T) {
	e := newEnv(t, 1)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	starts, ends := base, base.Add(time.Minute)
	cfg := e.config() // ClockSkew 100ms
	at := func(i int, ts time.Time) *eventspb.Event { return e.event("order.created", i, ts) }
	inWindow := []*eventspb.Event{at(1, base.Add(time.Second)), at(2, ends.Add(-time.Second))}
	early := at(3, ends.Add(cfg.ClockSkew/2))     // just past ends_at, within the skew allowance
	late := at(4, ends.Add(-10*time.Millisecond)) // in the window, appended after it
	after := at(5, ends.Add(time.Hour))           // well past: the window is over
	e.produce(append(inWindow, early, late, after)...)

	rcv := newReceiver(t, nil)
	e.register("replay", catalog.Webhook{CallbackURL: rcv.url()}, func(in *catalog.Integration) {
		in.Type = catalog.TypeTemporary
		in.StartsAt, in.EndsAt = &starts, &ends
	})
	e.startWorker(cfg)
	want := append(inWindow, late)
	rcv.waitDelivered(t, 30*time.Second, want)
	testenv.WaitFor(t, 30*time.Second, "temporary integration completed", func() bool {
		in, err := e.store.GetIntegration(context.Background(), e.tenant, "replay")
		return err == nil && in.Status == catalog.StatusStopped
	})
	if got := rcv.delivered(); got != len(want) {
		t.Fatalf("delivered %d events, want the %d stamped in the window", got, len(want))
	}
}

// A catalog whose connections are all taken (slow attempt writes, say) slows
// delivery down but does not freeze the stop gate: the supervisor reads
// states over a pool of its own, so deliveries go on within their window and
// a _stop still takes effect.
func TestExhaustedCatalogPoolNeitherFreezesDeliveryNorOverrunsAStop(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	e.startWorker(cfg)
	warm := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, warm)

	// Take every connection of the worker's pool.
	ctx := context.Background()
	var held []*pgxpool.Conn
	for range int(e.db.Pool.Config().MaxConns) {
		c, err := e.db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	release := func() {
		for _, c := range held {
			c.Release()
		}
		held = nil
	}
	t.Cleanup(release)
	// A deliberate waiting period, twice the stop bound, with the pool
	// exhausted: a stop gate that needed this pool would have closed by now.
	<-time.After(2 * cfg.StopPropagation)
	busy := e.produceN("order.created", 100)
	testenv.WaitFor(t, 30*time.Second, "deliveries going on while the pool is exhausted", func() bool {
		return rcv.delivered() >= len(warm)+len(busy)
	})
	if e.db.Pool.Stat().AcquiredConns() != int32(len(held)) {
		t.Fatalf("the worker got a connection of the exhausted pool")
	}

	// A stop still takes effect (through another connection).
	other, err := pgxpool.New(ctx, e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := e.store.WithPool(other).SetStatus(ctx, e.tenant, "erp-1", catalog.StatusStopped, catalog.ActionStopped, "Stopped via API."); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	testenv.WaitFor(t, 10*time.Second, "consumer left after the stop", func() bool { return len(e.members(e.group(in))) == 0 })
	afterStop := e.produceN("order.created", 10)
	release()
	// Once the pool is back, the rows queued meanwhile are written.
	testenv.WaitFor(t, 30*time.Second, "the attempt rows of the deliveries made meanwhile", func() bool {
		return len(e.successIDs("erp-1")) >= len(warm)+len(busy)
	})
	for _, r := range rcv.requests() {
		if r.at.After(stoppedAt.Add(cfg.StopPropagation)) {
			t.Fatalf("a request started %s after the stop, beyond the %s bound", r.at.Sub(stoppedAt), cfg.StopPropagation)
		}
	}
	for _, ev := range afterStop {
		if rcv.okCount(idemKey(ev)) != 0 {
			t.Fatal("an event published after the stop was delivered")
		}
	}
}

// A record nobody can decode is recorded as a FAILURE attempt and skipped,
// never silently: the events around it are delivered and the partition is
// committed past it.
func TestUndecodableRecordIsRecordedNotSkippedSilently(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	e.startWorker(e.config())
	before := e.produceN("order.created", 3)
	garbage := &kgo.Record{Topic: e.topic, Value: []byte("\xff\x00 not a protobuf envelope"), Timestamp: time.Now()}
	if err := e.cl.ProduceSync(context.Background(), garbage).FirstErr(); err != nil {
		t.Fatal(err)
	}
	after := e.produceN("order.created", 3)
	rcv.waitDelivered(t, 30*time.Second, append(before, after...))
	e.waitCommittedToEnd(e.group(in))
	var failed []attemptRow
	for _, a := range e.attempts("erp-1") {
		if a.EventName == "undecodable" {
			failed = append(failed, a)
		}
	}
	if len(failed) != 1 || failed[0].Status != catalog.AttemptFailure || failed[0].Body == nil ||
		!strings.Contains(*failed[0].Body, "could not be decoded") {
		t.Fatalf("attempt rows for the undecodable record: %+v", failed)
	}
}

// A group that committed some partitions but never finished a record on
// another starts that partition at the integration's start, not at the
// "lost offsets" resume point: found by the fault-injection suite, where
// a worker restart skipped a partition whose only record was still being
// retried.
func TestPartiallyCommittedGroupStartsUncommittedPartitionsAtTheStart(t *testing.T) {
	e := newEnv(t, 2)
	var healed atomic.Bool
	rcv := newReceiver(t, func(key string, n int) int {
		if strings.HasSuffix(key, ":slow") && !healed.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	manual, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(manual.Close)
	produceTo := func(p int32, evs ...*eventspb.Event) {
		for _, ev := range evs {
			r, err := kafka.EncodeRecord(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			r.Partition = p
			if err := manual.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := e.config()
	cfg.MaxRetries = 1000
	stop := e.startWorker(cfg)
	// Partition 1's only record keeps failing; partition 0's are delivered
	// and committed after it.
	slow := e.event("order.created", 1, time.Now())
	slow.IdempotencyKey = "slow"
	slow.EventId = events.EventID(e.tenant, slow.Name, "slow").String()
	produceTo(1, slow)
	testenv.WaitFor(t, 30*time.Second, "the slow record attempted", func() bool { return len(rcv.requests()) > 0 })
	fast := []*eventspb.Event{e.event("order.created", 2, time.Now()), e.event("order.created", 3, time.Now())}
	produceTo(0, fast...)
	rcv.waitDelivered(t, 30*time.Second, fast)
	testenv.WaitFor(t, 10*time.Second, "partition 0 committed", func() bool {
		st, err := e.store.GetDeliveryState(context.Background(), e.tenant, "erp-1")
		return err == nil && st.OffsetsCommitted
	})
	stop() // a worker restart with partition 1 never committed
	healed.Store(true)
	e.startWorker(cfg)
	rcv.waitDelivered(t, 30*time.Second, []*eventspb.Event{slow})
	e.waitCommittedToEnd(e.group(in))
}

// An integration that never stopped and whose committed offsets vanished
// resumes from its newest attempt; when that read fails the join fails and
// is retried, it never starts over from the registration.
func TestLostOffsetsReadErrorIsRetriedNotReplayedFromRegistration(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.ClockSkew = time.Millisecond // few events share the resume point's millisecond
	stop := e.startWorker(cfg)
	first := e.produceN("order.created", 20)
	rcv.waitDelivered(t, 30*time.Second, first)
	e.waitCommittedToEnd(e.group(in))
	testenv.WaitFor(t, 10*time.Second, "the catalog to know the group committed", func() bool {
		st, err := e.store.GetDeliveryState(context.Background(), e.tenant, "erp-1")
		return err == nil && st.OffsetsCommitted
	})
	testenv.WaitFor(t, 10*time.Second, "every SUCCESS row written", func() bool { return len(e.successIDs("erp-1")) == len(first) })
	stop()
	// Events stamped before the resume point (the newest attempt less the
	// clock-skew allowance) must not come again; those after it may.
	var last time.Time
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT max(attempted_at) FROM publish_attempts
		WHERE tenant = $1 AND integration_id = 'erp-1'`, e.tenant).Scan(&last); err != nil {
		t.Fatal(err)
	}
	resumeMs := last.Add(-cfg.ClockSkew).UnixMilli()
	var before []*eventspb.Event
	for _, ev := range first {
		if ev.GetIngestedAt().AsTime().UnixMilli() < resumeMs {
			before = append(before, ev)
		}
	}
	if len(before) < len(first)/2 {
		t.Fatalf("only %d of %d events before the resume point", len(before), len(first))
	}

	// The broker forgets the group's offsets (no worker ran it for longer
	// than its retention), and the newest attempt cannot be read. No offset
	// checkpoint was written (the group predates them), so the timestamp
	// rule, and its read of the newest attempt, applies.
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `DELETE FROM delivery_offset_checkpoints`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.adm.DeleteGroups(ctx, e.group(in)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `ALTER TABLE publish_attempts RENAME TO publish_attempts_away`); err != nil {
		t.Fatal(err)
	}
	missed := e.produceN("order.created", 10)
	logs, _ := e.startLogged(cfg)
	testenv.WaitFor(t, 30*time.Second, "the failed read of the last attempt", func() bool {
		return strings.Count(logs.String(), "reading the last attempt to resume lost offsets") >= 2
	})
	for _, ev := range before {
		if n := rcv.okCount(idemKey(ev)); n != 1 {
			t.Fatalf("an event delivered before was delivered %d times while the last attempt could not be read: replayed from the registration", n)
		}
	}
	if _, err := e.db.Pool.Exec(ctx, `ALTER TABLE publish_attempts_away RENAME TO publish_attempts`); err != nil {
		t.Fatal(err)
	}
	rcv.waitDelivered(t, 30*time.Second, missed)
	e.waitCommittedToEnd(e.group(in))
	for _, ev := range before {
		if n := rcv.okCount(idemKey(ev)); n != 1 {
			t.Fatalf("an event delivered before was delivered %d times: the stream replayed from the registration", n)
		}
	}
}

// An integration that never stopped, whose committed offsets vanished and
// which has no attempt row at all (whatever it delivered is older than the
// attempt retention, or it filtered everything) resumes from the start of
// the attempt retention window: records stamped within it were never
// attempted and are delivered; older ones, from before the window, are not
// replayed from the registration.
func TestLostOffsetsWithoutAttemptRowsResumeFromTheRetentionWindow(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	ctx := context.Background()
	// Registered 40 days ago; its group committed once (the catalog knows),
	// and the broker has since forgotten the offsets.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE integrations SET created_at = now() - interval '40 days'
		WHERE tenant = $1 AND id = $2`, e.tenant, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.store.MarkOffsetsCommitted(ctx, e.tenant, in.ID, in.Generation, 0); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.AttemptRetention = 30 * 24 * time.Hour
	stamped := func(ago time.Duration, n int) []*eventspb.Event {
		evs := make([]*eventspb.Event, n)
		for i := range evs {
			evs[i] = e.event("order.created", int(e.seq.Add(1)), time.Now().Add(-ago))
		}
		e.produce(evs...)
		return evs
	}
	old := stamped(35*24*time.Hour, 5) // before the window: delivered long ago, rows pruned
	inWindow := stamped(time.Hour, 5)  // within it: never attempted
	e.startWorker(cfg)
	fresh := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, append(inWindow, fresh...))
	e.waitCommittedToEnd(e.group(in))
	for _, ev := range old {
		if n := rcv.okCount(idemKey(ev)); n != 0 {
			t.Fatalf("an event stamped before the attempt retention window was delivered %d times: replayed from the registration", n)
		}
	}
}
