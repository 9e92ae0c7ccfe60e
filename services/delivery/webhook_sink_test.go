package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// The window (MaxInFlight) bounds the records waiting for the endpoint, not
// those waiting for their attempt row: while the catalog cannot take rows,
// deliveries go on past the window, and no offset is committed until the
// rows are durable. (Holding the window until the row was stored capped the
// throughput at MaxInFlight per attempt-writer round trip.)
func TestWindowFreesOnOutcomeNotOnAttemptRow(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.MaxInFlight = 4
	e.startWorker(cfg)
	warm := e.produceN("order.created", 3)
	rcv.waitDelivered(t, 30*time.Second, warm)
	e.waitCommittedToEnd(e.group(in))
	ctx := context.Background()
	committed := func() int64 {
		offs, err := e.adm.FetchOffsets(ctx, e.group(in))
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup(e.topic, 0)
		return o.At
	}
	before := committed()

	// Take every connection of the worker's pool: no attempt row can be
	// written until they are released.
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

	busy := e.produceN("order.created", 10*cfg.MaxInFlight)
	rcv.waitDelivered(t, 20*time.Second, busy)
	// A deliberate waiting period of several commit intervals: an offset
	// committed ahead of its attempt row would show by now.
	<-time.After(5 * cfg.CommitInterval)
	if got := committed(); got != before {
		t.Fatalf("committed offset %d while the attempt rows were not stored, want %d", got, before)
	}
	// Read through a pool of the test's own: the worker's is held.
	other, err := pgxpool.New(ctx, e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var rows int
	if err := other.QueryRow(ctx, `SELECT count(*) FROM publish_attempts WHERE tenant = $1 AND integration_id = $2`,
		e.tenant, in.ID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(warm) {
		t.Fatalf("%d attempt rows while the pool was held, want the %d of the warm-up", rows, len(warm))
	}

	release()
	e.waitCommittedToEnd(e.group(in))
	got := e.successIDs("erp-1")
	for _, ev := range busy {
		if !got[ev.GetEventId()] {
			t.Fatalf("event %s committed without its attempt row", ev.GetEventId())
		}
	}
}
