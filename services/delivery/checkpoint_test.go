package delivery_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// An integration that lags (a slow endpoint: records wait in Kafka long
// after they were ingested) and whose committed offsets vanish while its
// worker is down resumes exactly where its group was, from the offset
// checkpoints in the catalog: every record is delivered, none skipped, and
// those delivered before are not delivered again. The timestamp rule alone
// (newest attempt less the clock skew) would skip every record ingested
// before the newest attempt but not yet delivered.
func TestCheckpointResumesALaggingIntegrationExactly(t *testing.T) {
	e := newEnv(t, 1) // one partition: every record behind the one checkpoint
	slow := func(string, int) int {
		// A slow endpoint, one request at a time (MaxConcurrency 1).
		<-time.After(40 * time.Millisecond)
		return http.StatusOK
	}
	rcv := newReceiver(t, slow)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.ClockSkew = 10 * time.Millisecond
	cfg.MaxConcurrency, cfg.InitialConcurrency = 1, 1
	cfg.OffsetCheckpointInterval = 100 * time.Millisecond
	stop := e.startWorker(cfg)
	all := e.produceN("order.created", 150)

	ctx := context.Background()
	testenv.WaitFor(t, 30*time.Second, "a periodic offset checkpoint after some deliveries", func() bool {
		cps, err := e.store.OffsetCheckpoints(ctx, e.tenant, in.ID, in.Generation, 0)
		return err == nil && cps[0] >= 10
	})
	stop() // drains, commits, writes the final checkpoints

	var before []*eventspb.Event
	for _, ev := range all {
		if rcv.okCount(idemKey(ev)) > 0 {
			before = append(before, ev)
		}
	}
	if len(before) == len(all) {
		t.Fatalf("test setup: all %d events were delivered before the stop, none lags", len(all))
	}
	committed, err := e.adm.FetchOffsets(ctx, e.group(in))
	if err != nil {
		t.Fatal(err)
	}
	at, ok := committed.Lookup(e.topic, 0)
	cps, err := e.store.OffsetCheckpoints(ctx, e.tenant, in.ID, in.Generation, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || at.At != cps[0] {
		t.Fatalf("checkpoint after the drain = %d, want the offset committed last (%d)", cps[0], at.At)
	}
	t.Logf("%d of %d delivered before the stop; committed and checkpointed offset %d", len(before), len(all), cps[0])

	// The broker forgets the group's offsets (retention expiry).
	if _, err := e.adm.DeleteGroups(ctx, e.group(in)); err != nil {
		t.Fatal(err)
	}
	rcv.setRespond(nil) // the endpoint is fast again
	e.startWorker(cfg)
	rcv.waitDelivered(t, 30*time.Second, all)
	e.waitCommittedToEnd(e.group(in))
	for _, ev := range before {
		if n := rcv.okCount(idemKey(ev)); n > 2 {
			t.Fatalf("an event delivered before the stop was delivered %d times", n)
		}
	}
	// Only a request the drain gave up on (answered by the endpoint after
	// the worker stopped waiting, so never committed) may come again.
	if d := rcv.duplicates(); d > 1 {
		t.Fatalf("%d duplicate deliveries after resuming from the checkpoint, want at most 1", d)
	}
}
