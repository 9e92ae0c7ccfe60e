package catalog_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// Hostile texts from endpoints reach Postgres as valid UTF-8 without NUL, and
// a row Postgres refuses anyway holds up nothing queued behind it.
func TestAttemptWriterStoresHostileRowsAndNeverStalls(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDB(t)
	// A row Postgres refuses whatever its texts: it must be singled out and
	// dropped (reported), and every other row stored.
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE publish_attempts ADD CONSTRAINT poison CHECK (integration_id <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	var dropped []catalog.Attempt
	var mu sync.Mutex
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{
		BatchSize: 64, FlushInterval: 5 * time.Millisecond, OnError: func(err error) { t.Log("write error:", err) },
		OnRowDropped: func(a catalog.Attempt, err error) {
			mu.Lock()
			dropped = append(dropped, a)
			mu.Unlock()
		},
	})
	runWriter(t, w)
	now := time.Now()
	euro := "€"
	hostile := map[int]string{
		3:  "nul\x00byte",
		10: "bad \xff\xfe utf8",
		20: strings.Repeat("x", 1023) + euro[:1], // a character cut by the sender's 1 KiB cap
		30: strings.Repeat(euro, 2000),           // longer than the cap
	}
	var rows []catalog.Attempt
	for i := range 200 {
		a := attempt(i, now)
		if body, ok := hostile[i]; ok {
			a.ResponseBody, a.ResponseCode = body, 500
			a.DomainEntityID = "id\x00" + body[:3]
		}
		if i == 50 {
			a.EventID = "not-a-uuid" // the uuid column cannot hold it: stored with the nil UUID
		}
		if i == 60 {
			a.URL = strings.Repeat("u", 3<<20) // past Postgres's limit for an index entry
		}
		if i == 70 {
			a.IntegrationID = "poison"
		}
		rows = append(rows, a)
	}
	var stored atomic.Bool
	settled := make(chan bool, 1)
	if err := w.WriteThen(ctx, func(ok bool) { settled <- ok }, rows...); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-settled:
		stored.Store(ok)
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not settle a batch holding hostile rows within 30s: it is stalled")
	}
	if !stored.Load() {
		t.Fatal("WriteThen reported the rows not stored")
	}
	// Settled means durable: the rows are there now, without waiting.
	if n := countAttempts(t, db.Pool); n != 199 {
		t.Fatalf("%d rows stored, want 199 (all but the poison row)", n)
	}
	if len(dropped) != 1 || dropped[0].IntegrationID != "poison" || w.Dropped() != 1 {
		t.Fatalf("dropped %+v (count %d), want only the poison row", dropped, w.Dropped())
	}
	rowsDB, err := db.Pool.Query(ctx, `SELECT event_id::text, domain_entity_id, coalesce(response_body, '') FROM publish_attempts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rowsDB.Close()
	var sawNil bool
	for rowsDB.Next() {
		var id, entity, body string
		if err := rowsDB.Scan(&id, &entity, &body); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{entity, body} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("stored text %q is not valid UTF-8 without NUL", s)
			}
		}
		if len(body) > catalog.MaxResponseText {
			t.Fatalf("stored a %d-byte body, cap %d", len(body), catalog.MaxResponseText)
		}
		if strings.HasPrefix(body, "xxx") && body != strings.Repeat("x", 1023) {
			t.Fatalf("the cut character was not dropped: body ends %q", body[len(body)-4:])
		}
		sawNil = sawNil || id == "00000000-0000-0000-0000-000000000000"
	}
	if err := rowsDB.Err(); err != nil {
		t.Fatal(err)
	}
	if !sawNil {
		t.Fatal("the row with a malformed event id was not stored in its safe form")
	}

	// The writer still works for everyone after the hostile batch.
	if err := w.WriteThen(ctx, func(ok bool) { settled <- ok }, attempt(999, now)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-settled:
	case <-time.After(30 * time.Second):
		t.Fatal("the writer stalled after a hostile batch")
	}
	if n := countAttempts(t, db.Pool); n != 200 {
		t.Fatalf("%d rows after the next write, want 200", n)
	}
}

func TestWriteThenOnAClosedWriterFailsWithoutCallingBack(t *testing.T) {
	db := testenv.NewDB(t)
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{})
	stop := runWriter(t, w)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	called := false
	err := w.WriteThen(context.Background(), func(bool) { called = true }, attempt(1, time.Now()))
	if err == nil || called {
		t.Fatalf("WriteThen after close: err %v, called back %v; want ErrWriterClosed and no call", err, called)
	}
}

// Rows a worker was still retrying when it was told to stop (SIGTERM during
// a catalog outage) are written by the drain, not forgotten.
func TestAttemptWriterDrainsTheBatchItWasRetrying(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDB(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "200"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var failures atomic.Int64
	w := catalog.NewAttemptWriter(pool, catalog.AttemptWriterConfig{
		FlushInterval: 5 * time.Millisecond, DrainTimeout: 20 * time.Second,
		OnError: func(error) { failures.Add(1) },
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(cancel)
	// Warm up: the day partition exists before the table is locked.
	settled := make(chan bool, 2)
	if err := w.WriteThen(ctx, func(ok bool) { settled <- ok }, attempt(0, time.Now())); err != nil {
		t.Fatal(err)
	}
	<-settled

	// The catalog stops taking rows: every COPY times out.
	lock, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `LOCK TABLE publish_attempts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var rows []catalog.Attempt
	for i := 1; i <= 50; i++ {
		rows = append(rows, attempt(i, time.Now()))
	}
	if err := w.WriteThen(ctx, func(ok bool) { settled <- ok }, rows...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the writer retrying the batch", func() bool { return failures.Load() >= 1 })
	cancel() // SIGTERM while retrying
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ok := <-settled; !ok {
		t.Fatal("the batch being retried was reported not stored")
	}
	if n := countAttempts(t, db.Pool); n != 51 {
		t.Fatalf("%d rows stored, want 51: the batch being retried at shutdown was lost", n)
	}
}
