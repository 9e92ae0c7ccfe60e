package delivery_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
)

// members returns the partitions each member of group is assigned.
func (e *env) members(group string) [][]int32 {
	e.t.Helper()
	described, err := e.adm.DescribeGroups(context.Background(), group)
	if err != nil {
		return nil
	}
	g, ok := described[group]
	if !ok || g.Err != nil {
		return nil
	}
	var out [][]int32
	for _, m := range g.Members {
		var ps []int32
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps = append(ps, t.Partitions...)
			}
		}
		out = append(out, ps)
	}
	return out
}

// clients returns the client ids of group's members.
func (e *env) clients(group string) []string {
	described, err := e.adm.DescribeGroups(context.Background(), group)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range described[group].Members {
		out = append(out, m.ClientID)
	}
	return out
}

// producer publishes events continuously until stopped and returns them all.
type producer struct {
	e    *env
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	evs  []*eventspb.Event
}

func (e *env) startProducer(every time.Duration) *producer {
	p := &producer{e: e, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			evs := e.produceN("order.created", 5)
			p.mu.Lock()
			p.evs = append(p.evs, evs...)
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *producer) finish() []*eventspb.Event {
	close(p.stop)
	<-p.done
	return p.evs
}

func TestStopHaltsAttemptsWithinBoundAndStartResumes(t *testing.T) {
	e := newEnv(t, 3)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	e.startWorker(cfg)
	prod := e.startProducer(5 * time.Millisecond)
	testenv.WaitFor(t, 30*time.Second, "deliveries under way", func() bool { return rcv.delivered() >= 50 })

	ctx := context.Background()
	if _, err := e.store.SetStatus(ctx, e.tenant, "erp-1", catalog.StatusStopped, catalog.ActionStopped, "Stopped via API."); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	testenv.WaitFor(t, 10*time.Second, "the consumer to leave its group", func() bool { return len(e.members(e.group(in))) == 0 })
	// Events keep arriving while it is stopped.
	sinceStop := len(rcv.requests())
	for range 20 {
		e.produceN("order.created", 5)
	}
	// No attempt may start later than the propagation bound after _stop
	// returned. An attempt started just inside the bound may reach the
	// receiver a little later, hence the small slack for the network.
	bound := stoppedAt.Add(cfg.StopPropagation + 200*time.Millisecond)
	for _, r := range rcv.requests() {
		if r.at.After(bound) {
			t.Fatalf("a request arrived %s after _stop returned (bound %s)", r.at.Sub(stoppedAt), cfg.StopPropagation)
		}
	}
	if n := len(rcv.requests()); n != sinceStop {
		t.Fatalf("%d requests while stopped", n-sinceStop)
	}
	t.Logf("requests arriving after _stop returned: %d", countAfter(rcv.requests(), stoppedAt))

	// Start again: everything published meanwhile arrives, nothing lost.
	if _, err := e.store.SetStatus(ctx, e.tenant, "erp-1", catalog.StatusRunning, catalog.ActionStarted, "Started via API."); err != nil {
		t.Fatal(err)
	}
	all := prod.finish()
	rcv.waitDelivered(t, 60*time.Second, all)
	e.waitCommittedToEnd(e.group(in))
	t.Logf("stop/start: %d events, %d duplicate deliveries", rcv.delivered(), rcv.duplicates())
}

func countAfter(reqs []received, t time.Time) int {
	n := 0
	for _, r := range reqs {
		if r.at.After(t) {
			n++
		}
	}
	return n
}

func TestTemporaryReplayDeliversExactlyItsWindowThenCompletes(t *testing.T) {
	e := newEnv(t, 3)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	batch := func(name string, from int, at time.Time) []*eventspb.Event {
		evs := make([]*eventspb.Event, 15)
		for i := range evs {
			evs[i] = e.event(name, from+i, at.Add(time.Duration(i)*time.Millisecond))
		}
		e.produce(evs...)
		return evs
	}
	batch("order.created", 0, base) // before the window
	inWindow := batch("order.created", 100, base.Add(time.Hour))
	after := batch("order.created", 200, base.Add(2*time.Hour))

	tmp := newReceiver(t, nil)
	perm := newReceiver(t, nil)
	starts, ends := base.Add(time.Hour-time.Second), base.Add(time.Hour+time.Second)
	in := e.register("replay", catalog.Webhook{CallbackURL: tmp.url()}, func(in *catalog.Integration) {
		in.Type = catalog.TypeTemporary
		in.StartsAt, in.EndsAt = &starts, &ends
	})
	pin := e.register("since", catalog.Webhook{CallbackURL: perm.url()}, func(in *catalog.Integration) {
		in.StartsAt = &starts // a permanent replay from starts_at
	})
	cfg := e.config()
	cfg.TemporaryRetention = 2 * time.Second
	e.startWorker(cfg)
	now := e.produceN("order.created", 5) // published after registration

	testenv.WaitFor(t, 30*time.Second, "temporary integration completed", func() bool {
		in, err := e.store.GetIntegration(context.Background(), e.tenant, "replay")
		return err == nil && in.Status == catalog.StatusStopped
	})
	logs := e.logs("replay")
	wantReason := "Completed: all events up to " + events.FormatTime(ends) + " were delivered."
	if logs[0].Action != catalog.ActionCompleted || logs[0].Reason != wantReason {
		t.Fatalf("newest log %+v, want %s %q", logs[0], catalog.ActionCompleted, wantReason)
	}
	if got := tmp.delivered(); got != len(inWindow) {
		t.Fatalf("temporary delivered %d events, want exactly the %d in its window", got, len(inWindow))
	}
	tmp.waitDelivered(t, time.Second, inWindow)

	// The permanent replay gets everything from starts_at on.
	want := append(append(append([]*eventspb.Event{}, inWindow...), after...), now...)
	perm.waitDelivered(t, 30*time.Second, want)
	e.waitCommittedToEnd(e.group(pin))
	if got := perm.delivered(); got != len(want) {
		t.Fatalf("permanent replay delivered %d, want %d (nothing before starts_at)", got, len(want))
	}

	// After the retention the completed temporary integration and its
	// consumer group are deleted.
	testenv.WaitFor(t, 30*time.Second, "completed temporary integration deleted", func() bool {
		_, err := e.store.GetIntegration(context.Background(), e.tenant, "replay")
		return errors.Is(err, catalog.ErrNotFound)
	})
	testenv.WaitFor(t, 30*time.Second, "its consumer group deleted", func() bool {
		groups, err := e.adm.ListGroups(context.Background())
		if err != nil {
			return false
		}
		_, exists := groups[e.group(in)]
		return !exists
	})
}

func TestRestartAfterOffsetRetentionStartsFromRestart(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.OffsetRetention = 1500 * time.Millisecond
	e.startWorker(cfg)
	first := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, first)
	e.waitCommittedToEnd(e.group(in))

	ctx := context.Background()
	stopped, err := e.store.SetStatus(ctx, e.tenant, "erp-1", catalog.StatusStopped, catalog.ActionStopped, "Stopped via API.")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "consumer left", func() bool { return len(e.members(e.group(in))) == 0 })
	missed := e.produceN("order.created", 5)
	testenv.WaitFor(t, 10*time.Second, "the offset retention to pass", func() bool {
		return time.Since(*stopped.StoppedAt) > cfg.OffsetRetention+100*time.Millisecond
	})
	if _, err := e.store.SetStatus(ctx, e.tenant, "erp-1", catalog.StatusRunning, catalog.ActionStarted, "Started via API."); err != nil {
		t.Fatal(err)
	}
	later := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, later)
	e.waitCommittedToEnd(e.group(in) + ".1") // the new epoch's group
	for _, ev := range missed {
		if rcv.okCount(idemKey(ev)) != 0 {
			t.Fatalf("event published while stopped past the retention was delivered")
		}
	}
	logs := e.logs("erp-1")
	found := false
	for _, l := range logs {
		if l.Action == catalog.ActionStarted && strings.Contains(l.Reason, "delivering events published from this start on") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no log says the restart starts from now: %+v", logs)
	}
}

func TestTwoWorkersSplitPartitionsAndHandOver(t *testing.T) {
	e := newEnv(t, 4)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	stop1 := e.startWorker(e.config())
	e.startWorker(e.config())
	testenv.WaitFor(t, 30*time.Second, "two members sharing the partitions", func() bool {
		m := e.members(e.group(in))
		return len(m) == 2 && len(m[0]) > 0 && len(m[1]) > 0 && len(m[0])+len(m[1]) == 4
	})
	prod := e.startProducer(3 * time.Millisecond)
	testenv.WaitFor(t, 30*time.Second, "deliveries under way", func() bool { return rcv.delivered() >= 200 })
	stop1() // graceful: drains, commits, leaves
	testenv.WaitFor(t, 30*time.Second, "one member with every partition", func() bool {
		m := e.members(e.group(in))
		return len(m) == 1 && len(m[0]) == 4
	})
	testenv.WaitFor(t, 30*time.Second, "more deliveries", func() bool { return rcv.delivered() >= 400 })
	all := prod.finish()
	rcv.waitDelivered(t, 60*time.Second, all)
	e.waitCommittedToEnd(e.group(in))
	t.Logf("handover: %d events delivered, %d duplicate deliveries", len(all), rcv.duplicates())
}

// workerProcess starts a delivery worker as a separate process (this test
// binary re-executed) and returns it with its captured output. env entries
// (NAME=value) override the test defaults.
func (e *env) workerProcess(env ...string) (*exec.Cmd, *bytes.Buffer) {
	e.t.Helper()
	return e.process(exec.Command(os.Args[0], "-test.run=^$"), env...)
}

// process starts cmd (a delivery worker: this test binary re-executed, or
// the built binary) with the test defaults in its environment, overridden
// by env.
func (e *env) process(cmd *exec.Cmd, env ...string) (*exec.Cmd, *bytes.Buffer) {
	e.t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(),
		workerEnv+"=1",
		"DATABASE_URL="+e.db.URL,
		"SECRETS_KEY="+hex.EncodeToString(testenv.TestKey),
		"KAFKA_BROKERS="+strings.Join(e.brokers, ","),
		"WEBHOOK_ALLOW_CIDRS=127.0.0.0/8",
		"KAFKA_SESSION_TIMEOUT=1s",
		"KAFKA_REBALANCE_TIMEOUT=6s",
		"DELIVERY_COMMIT_INTERVAL=50ms",
		"DELIVERY_STOP_PROPAGATION=1s",
		"DELIVERY_DRAIN_TIMEOUT=2s",
		"DELIVERY_RETRY_BASE=5ms",
		"DELIVERY_RETRY_MAX=40ms",
		"DELIVERY_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if e.t.Failed() {
			e.t.Logf("worker %d output:\n%s", cmd.Process.Pid, out.String())
		}
	})
	return cmd, &out
}

func TestSIGKILLedWorkerProcessLosesNothing(t *testing.T) {
	e := newEnv(t, 3)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	a, _ := e.workerProcess()
	prod := e.startProducer(3 * time.Millisecond)
	testenv.WaitFor(t, 60*time.Second, "worker A delivering", func() bool { return rcv.delivered() >= 300 })
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	killedAt := rcv.delivered()

	b, _ := e.workerProcess()
	testenv.WaitFor(t, 60*time.Second, "worker B delivering", func() bool { return rcv.delivered() >= killedAt+300 })
	all := prod.finish()
	rcv.waitDelivered(t, 60*time.Second, all)
	e.waitCommittedToEnd(e.group(in))
	t.Logf("SIGKILL mid-stream: %d events, all delivered at least once; %d duplicate deliveries (delivered by A, not yet committed when it died)",
		len(all), rcv.duplicates())
	// Nothing lost includes the observability record: an offset is committed
	// only once its attempt row is durable, so every event has a SUCCESS row
	// even though A died with rows queued.
	success := e.successIDs("erp-1")
	missing := 0
	for _, ev := range all {
		if !success[ev.GetEventId()] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d delivered events have no SUCCESS attempt row after the SIGKILL", missing, len(all))
	}

	// A graceful stop of B exits cleanly.
	if err := b.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("worker B exit: %v", err)
	}
}

func TestDeleteRemovesConsumerGroup(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	e.startWorker(e.config())
	evs := e.produceN("order.created", 5)
	producedAt := time.Now() // every old event is stamped before this
	rcv.waitDelivered(t, 30*time.Second, evs)
	e.waitCommittedToEnd(e.group(in))
	if err := e.store.DeleteIntegration(context.Background(), e.tenant, "erp-1"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the consumer group deleted", func() bool {
		groups, err := e.adm.ListGroups(context.Background())
		if err != nil {
			return false
		}
		_, exists := groups[e.group(in)]
		return !exists
	})
	// Re-registering the id starts a new generation: nothing is inherited,
	// it starts from its registration. A registration also takes events from
	// the ClockSkew allowance before it, so register once the old events are
	// outside that allowance: any redelivery is then an inherited position.
	testenv.WaitFor(t, 5*time.Second, "the old events to fall outside the clock-skew allowance", func() bool {
		return time.Since(producedAt) > 2*e.config().ClockSkew
	})
	again := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	if again.Generation == in.Generation {
		t.Fatal("re-registration kept the generation")
	}
	more := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, more)
	e.waitCommittedToEnd(e.group(again))
	if d := rcv.duplicates(); d != 0 {
		t.Fatalf("re-registered integration redelivered %d old events", d)
	}
}

func TestPoolsServeOnlyTheirTenants(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	star := e.config() // the "*" pool
	stopStar := e.startWorker(star)
	first := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, first)
	if c := e.clients(e.group(in)); len(c) != 1 || c[0] != "eventstream-delivery.default" {
		t.Fatalf("group members %v, want the * pool's worker", c)
	}

	big := e.config()
	big.Pool, big.PoolTenants = "big", []string{e.tenant}
	e.startWorker(big)
	// The claim moves the tenant: the "*" worker's consumer leaves, the big
	// pool's stays; stopping the "*" worker then changes nothing.
	testenv.WaitFor(t, 30*time.Second, "the big pool alone in the group", func() bool {
		c := e.clients(e.group(in))
		return len(c) == 1 && c[0] == "eventstream-delivery.big"
	})
	stopStar()
	second := e.produceN("order.created", 5)
	rcv.waitDelivered(t, 30*time.Second, second)
	e.waitCommittedToEnd(e.group(in))

	// A second pool claiming the same tenant is refused at start.
	other := e.config()
	other.Pool, other.PoolTenants = "other", []string{e.tenant}
	svc, err := delivery.New(other, e.store, e.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("second claim: Run = %v, want ErrConflict", err)
	}
}

// TestNewIntegrationAtTheLiveEdgeMissesNothing registers an integration while
// events stream in: everything published from the registration on arrives,
// nothing published before it.
func TestNewIntegrationAtTheLiveEdgeMissesNothing(t *testing.T) {
	for round := range 2 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			e := newEnv(t, 3)
			rcv := newReceiver(t, nil)
			e.startWorker(e.config())
			prod := e.startProducer(2 * time.Millisecond)
			testenv.WaitFor(t, 10*time.Second, "events flowing", func() bool {
				prod.mu.Lock()
				defer prod.mu.Unlock()
				return len(prod.evs) > 50
			})
			in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
			testenv.WaitFor(t, 30*time.Second, "deliveries", func() bool { return rcv.delivered() > 100 })
			all := prod.finish()
			var want []*eventspb.Event
			for _, ev := range all {
				if !ev.GetIngestedAt().AsTime().Before(in.CreatedAt) {
					want = append(want, ev)
				}
			}
			rcv.waitDelivered(t, 30*time.Second, want)
			e.waitCommittedToEnd(e.group(in))
			// Events stamped before the registration less the clock-skew
			// allowance are never delivered.
			startMs := in.CreatedAt.Add(-e.config().ClockSkew).UnixMilli()
			for _, ev := range all {
				if ev.GetIngestedAt().AsTime().UnixMilli() < startMs && rcv.okCount(idemKey(ev)) > 0 {
					t.Fatalf("event published %s before registration was delivered", in.CreatedAt.Sub(ev.GetIngestedAt().AsTime()))
				}
			}
		})
	}
}
