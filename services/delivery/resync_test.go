package delivery_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
)

// queryCounter counts the catalog queries of a pool by kind.
type queryCounter struct {
	oneIntegration atomic.Int64 // one integration's configuration (GetIntegration)
	states         atomic.Int64 // the supervisor's state polls (DeliveryStates)
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	sql := strings.Join(strings.Fields(d.SQL), " ")
	switch {
	case strings.Contains(sql, "FROM integrations WHERE tenant = $1 AND id = $2") && strings.Contains(sql, "callback_url"):
		q.oneIntegration.Add(1)
	case strings.Contains(sql, "FROM integrations WHERE") && strings.Contains(sql, "ORDER BY tenant, id") &&
		strings.Contains(sql, "group_epoch") && !strings.Contains(sql, "callback_url"):
		q.states.Add(1)
	}
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// tracedStore is a catalog store over its own pool whose queries q counts
// (the supervisor's own pool copies its configuration, tracer included).
func (e *env) tracedStore(q *queryCounter) (*catalog.Store, *pgxpool.Pool) {
	e.t.Helper()
	cfg, err := pgxpool.ParseConfig(e.db.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = q
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	ring, err := secrets.NewRing([][]byte{testenv.TestKey})
	if err != nil {
		e.t.Fatal(err)
	}
	return catalog.New(pool, ring), pool
}

// The supervisor's reads do not grow with integrations times polls: a worker
// starting many integrations and every full resync read their
// configurations in one query, not one each. (One read per integration made
// a resync of 1,000 integrations outlast the stop bound: no poll confirmed
// anything meanwhile, so every delivery paused for seconds each resync.) A
// configuration changed behind the API's back is still picked up by the
// resync.
func TestResyncReadsConfigurationsInOneQuery(t *testing.T) {
	const n = 10 // the per-tenant limit register uses
	e := newEnv(t, 1)
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	for i := range n {
		e.register(fmt.Sprintf("hook-%d", i), catalog.Webhook{CallbackURL: a.url()}, nil)
	}
	var q queryCounter
	store, pool := e.tracedStore(&q)
	cfg := e.config()
	cfg.ResyncInterval = 100 * time.Millisecond // a full resync at nearly every poll
	svc, err := delivery.New(cfg, store, pool)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, "worker", svc.Run)

	e.produceN("order.created", 1)
	testenv.WaitFor(t, 60*time.Second, "every integration delivering", func() bool { return len(a.requests()) >= n })
	if got := q.oneIntegration.Load(); got >= n {
		t.Errorf("starting %d integrations read a configuration alone %d times, want their configurations read together", n, got)
	}
	// Twenty more polls, most of them full resyncs (the poll and resync
	// tickers are 250 and 100 ms).
	reads, polls := q.oneIntegration.Load(), q.states.Load()
	testenv.WaitFor(t, 60*time.Second, "twenty more state polls", func() bool { return q.states.Load() >= polls+20 })
	if got := q.oneIntegration.Load() - reads; got >= n {
		t.Errorf("twenty polls with full resyncs of %d integrations read a configuration alone %d times, want none", n, got)
	}

	// A change that bypassed the API (no status change, so no new run) is
	// found by the resync: the consumer restarts with the new endpoint.
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE integrations SET callback_url = $1 WHERE tenant = $2 AND id = 'hook-0'`,
		b.url(), e.tenant); err != nil {
		t.Fatal(err)
	}
	var produced time.Time
	testenv.WaitFor(t, 30*time.Second, "hook-0 delivering to its new endpoint", func() bool {
		if time.Since(produced) > 100*time.Millisecond { // an event now and then until one arrives there
			e.produceN("order.created", 1)
			produced = time.Now()
		}
		return len(b.requests()) > 0
	})
}
