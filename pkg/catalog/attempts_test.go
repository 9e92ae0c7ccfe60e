package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func attempt(i int, at time.Time) catalog.Attempt {
	return catalog.Attempt{
		Tenant: "acme", IntegrationID: "erp-1", IntegrationType: catalog.TypePermanent, Target: catalog.TargetWebhook,
		Status: catalog.AttemptSuccess, AttemptedAt: at, RetriesRemaining: 10,
		EventID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		DomainEntityID: fmt.Sprintf("o-%d", i), DomainEntityType: "order", EventName: "order.created",
		URL: "https://example.com/hook", ResponseCode: 200, ResponseBody: "ok", ResponseTimeMS: 12,
	}
}

func countAttempts(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM publish_attempts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func runWriter(t *testing.T, w *catalog.AttemptWriter) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestAttemptWriterCopiesBatchesIntoDayPartitions(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDB(t)
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{BatchSize: 50, FlushInterval: 10 * time.Millisecond})
	stop := runWriter(t, w)
	now := time.Now()
	var rows []catalog.Attempt
	for i := 0; i < 500; i++ {
		rows = append(rows, attempt(i, now))
	}
	// A late row for a day without a partition yet is written too.
	old := attempt(500, now.AddDate(0, 0, -5))
	old.Status, old.ResponseCode, old.ResponseBody, old.URL = catalog.AttemptFailure, 0, "", ""
	rows = append(rows, old)
	if err := w.Write(ctx, rows...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "501 rows", func() bool { return countAttempts(t, db.Pool) == 501 })
	var code, url, body *string
	if err := db.Pool.QueryRow(ctx, `SELECT response_code::text, url, response_body FROM publish_attempts
		WHERE event_id = $1`, old.EventID).Scan(&code, &url, &body); err != nil {
		t.Fatal(err)
	}
	if code != nil || url != nil || body != nil {
		t.Fatalf("row without a response stored code=%v url=%v body=%v, want NULLs", code, url, body)
	}
	var parts int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'publish_attempts'`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts < 4 { // today + 2 ahead + the late day
		t.Fatalf("%d partitions, want at least 4", parts)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, attempt(1, now)); !errors.Is(err, catalog.ErrWriterClosed) {
		t.Fatalf("Write after stop: %v, want ErrWriterClosed", err)
	}
}

func TestAttemptWriterBackpressureNeverDrops(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDB(t)
	// Make sure today's partition exists, then hold a lock that stalls COPY:
	// Postgres is "slow".
	if err := catalog.MaintainAttemptPartitions(ctx, db.Pool, time.Now(), 1, -1); err != nil {
		t.Fatal(err)
	}
	lockTx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockTx.Exec(ctx, `LOCK TABLE publish_attempts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{QueueSize: 10, BatchSize: 5, FlushInterval: time.Millisecond})
	runWriter(t, w)
	now := time.Now()
	// The writer holds one batch stuck in COPY; the queue then fills and a
	// Write must block rather than drop.
	written := 0
	for ; written < 100; written++ {
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := w.Write(wctx, attempt(written, now))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if written >= 100 || written < 10 {
		t.Fatalf("Write blocked after %d rows, want it to block once queue (10) and a batch are full", written)
	}
	// Release Postgres: everything accepted is written.
	if err := lockTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "all accepted rows", func() bool { return countAttempts(t, db.Pool) == written })
}

func TestAttemptWriterDrainsOnShutdownAndRetention(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDB(t)
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{FlushInterval: time.Hour, BatchSize: 10000})
	stop := runWriter(t, w)
	now := time.Now()
	for i := 0; i < 300; i++ {
		if err := w.Write(ctx, attempt(i, now.AddDate(0, 0, -40))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(ctx, attempt(1000, now)); err != nil {
		t.Fatal(err)
	}
	// The flush interval is an hour: only the shutdown drain writes them.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := countAttempts(t, db.Pool); n != 301 {
		t.Fatalf("after drain %d rows, want 301", n)
	}
	dropped, err := catalog.DropAttemptPartitions(ctx, db.Pool, now.Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 {
		t.Fatalf("dropped %v, want the one 40-day-old partition", dropped)
	}
	if n := countAttempts(t, db.Pool); n != 1 {
		t.Fatalf("after retention %d rows, want 1", n)
	}
}

func TestPoolClaimsAndDeliveryStates(t *testing.T) {
	ctx := context.Background()
	store, db := testenv.NewStore(t)
	for _, tn := range []string{"a", "b", "c"} {
		if err := store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		in := &catalog.Integration{Tenant: tn, ID: "hook", Type: catalog.TypePermanent,
			Webhook: &catalog.Webhook{CallbackURL: "https://example.com/" + tn}}
		if err := store.CreateIntegration(ctx, in, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.ClaimPoolTenants(ctx, "big", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := store.ClaimPoolTenants(ctx, "other", []string{"b", "a"}); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("double claim: %v, want ErrConflict", err)
	}
	tenantsOf := func(list []*catalog.Integration) []string {
		var out []string
		for _, in := range list {
			out = append(out, in.Tenant)
		}
		return out
	}
	star, err := store.ListRunningForPool(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tenantsOf(star)); got != "[b c]" {
		t.Fatalf(`"*" pool serves %s, want [b c]`, got)
	}
	big, err := store.ListRunningForPool(ctx, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tenantsOf(big)); got != "[a]" {
		t.Fatalf("big pool serves %s, want [a]", got)
	}
	// Re-claiming with a different list releases the old tenants.
	if err := store.ClaimPoolTenants(ctx, "big", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	states, err := store.DeliveryStates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[0].Tenant != "a" || states[1].Tenant != "c" {
		t.Fatalf(`"*" states after re-claim = %+v`, states)
	}

	// A start more than the retention after the stop resets once.
	if _, err := store.SetStatus(ctx, "c", "hook", catalog.StatusStopped, catalog.ActionStopped, "Stopped via API."); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE integrations SET stopped_at = now() - interval '31 days' WHERE tenant = 'c'`); err != nil {
		t.Fatal(err)
	}
	in, err := store.SetStatus(ctx, "c", "hook", catalog.StatusRunning, catalog.ActionStarted, "Started via API.")
	if err != nil {
		t.Fatal(err)
	}
	st, reset, err := store.ResetExpiredOffsets(ctx, "c", "hook", in.Generation, 30*24*time.Hour)
	if err != nil || !reset || st.GroupEpoch != 1 || st.OffsetsResetAt == nil {
		t.Fatalf("first reset = %+v, %v, %v", st, reset, err)
	}
	st, reset, err = store.ResetExpiredOffsets(ctx, "c", "hook", in.Generation, 30*24*time.Hour)
	if err != nil || reset || st.GroupEpoch != 1 {
		t.Fatalf("second reset = %+v, %v, %v; want no new reset", st, reset, err)
	}

	// Completed temporary integrations are deleted after the retention.
	start, end := time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	tmp := &catalog.Integration{Tenant: "c", ID: "replay", Type: catalog.TypeTemporary, StartsAt: &start, EndsAt: &end,
		Webhook: &catalog.Webhook{CallbackURL: "https://example.com/r"}}
	if err := store.CreateIntegration(ctx, tmp, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetStatus(ctx, "c", "replay", catalog.StatusStopped, catalog.ActionCompleted, "Completed."); err != nil {
		t.Fatal(err)
	}
	gone, err := store.DeleteCompletedTemporary(ctx, nil, time.Now().Add(-time.Minute))
	if err != nil || len(gone) != 0 {
		t.Fatalf("fresh completion deleted: %v, %v", gone, err)
	}
	gone, err = store.DeleteCompletedTemporary(ctx, nil, time.Now().Add(time.Minute))
	if err != nil || len(gone) != 1 || gone[0].ID != "replay" {
		t.Fatalf("old completion: %+v, %v", gone, err)
	}
	if _, err := store.GetIntegration(ctx, "c", "replay"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("deleted temporary still there: %v", err)
	}
}
