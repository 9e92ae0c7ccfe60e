package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// Migration 0005 applies to a catalog already holding attempt rows (S3 ones
// among them, one per event), which stay as they were next to the file rows
// written after it: one row per S3 file, its events as arrays in file order.
func TestFileRowsMigrateOverExistingRows(t *testing.T) {
	db := testenv.NewDB(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%.60s: %v", sql, err)
		}
	}
	// The schema as it was before 0005.
	exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`)
	versions, sqls, err := catalog.MigrationSQL(5)
	if err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	for i, sql := range sqls {
		exec(sql)
		exec(`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, versions[i], fmt.Sprint(versions[i]))
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	exec(`CREATE TABLE publish_attempts_p20240501 PARTITION OF publish_attempts FOR VALUES FROM ('2024-05-01') TO ('2024-05-02')`)
	old := "00000000-0000-5000-8000-000000000001"
	exec(`INSERT INTO publish_attempts (tenant, integration_id, integration_type, target, status, attempted_at, retries_remaining,
		event_id, domain_entity_id, domain_entity_type, event_name, filename, response_time_ms)
		VALUES ('acme', 's3-1', 'permanent', 's3', 'SUCCESS', $1, 10, $2, 'ord-1', 'order', 'order.created', 'old.export', 0)`, at, old)

	applied, err := catalog.Migrate(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	// 0005 and the migrations after it, nothing before.
	if len(applied) == 0 || applied[0] != "0005_s3_file_attempts.sql" {
		t.Fatalf("applied %v, want 0005 first", applied)
	}

	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{Retention: -1, FlushInterval: 10 * time.Millisecond})
	stop := testenv.Start(t, "attempt writer", w.Run)
	file := catalog.Attempt{Tenant: "acme", IntegrationID: "s3-1", IntegrationType: catalog.TypePermanent, Target: catalog.TargetS3,
		Status: catalog.AttemptSuccess, AttemptedAt: at.Add(time.Minute), RetriesRemaining: 10, Filename: "new.export"}
	for i := range 3 {
		file.FileEvents = append(file.FileEvents, catalog.FileEvent{EventID: fmt.Sprintf("00000000-0000-5000-8000-00000000001%d", i),
			DomainEntityID: fmt.Sprint("ord-", i, "\x00"), DomainEntityType: "order", EventName: "order.created"})
	}
	file.FileEvents[1].EventID = "not-a-uuid"
	stored := make(chan bool, 1)
	if err := w.WriteThen(ctx, func(ok bool) { stored <- ok }, file); err != nil {
		t.Fatal(err)
	}
	if !<-stored {
		t.Fatal("file row not stored")
	}
	stop()

	type row struct {
		filename, eventID string
		count             int
		ids, ents         []string
	}
	rows, err := db.Pool.Query(ctx, `SELECT filename, event_id::text, event_count, coalesce(event_ids::text[], '{}'),
		coalesce(domain_entity_ids, '{}') FROM publish_attempts ORDER BY attempted_at`)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.filename, &r.eventID, &r.count, &r.ids, &r.ents); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"old.export", old, 1, []string{}, []string{}},
		{"new.export", "00000000-0000-0000-0000-000000000000", 3,
			[]string{"00000000-0000-5000-8000-000000000010", "00000000-0000-0000-0000-000000000000", "00000000-0000-5000-8000-000000000012"},
			[]string{"ord-0\uFFFD", "ord-1\uFFFD", "ord-2\uFFFD"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows\n %v\nwant\n %v", got, want)
	}
}

// A file's row carries texts from events: each stored as valid UTF-8 without
// NUL within the id cap, and a file row Postgres refuses is singled out and
// dropped (reported) without holding up the rows queued with it.
func TestFileRowsHostileEvents(t *testing.T) {
	ctx := context.Background()
	db := testenv.NewDB(t)
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE publish_attempts ADD CONSTRAINT poison CHECK (integration_id <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int32
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{Retention: -1, FlushInterval: 5 * time.Millisecond,
		OnRowDropped: func(a catalog.Attempt, _ error) {
			if a.IntegrationID == "poison" {
				dropped.Add(1)
			}
		}})
	stop := testenv.Start(t, "attempt writer", w.Run)
	defer stop()
	hostile := []string{"nul\x00byte", "bad \xff\xfe utf8", strings.Repeat("€", 2000), ""}
	var rows []catalog.Attempt
	for f := range 5 {
		r := catalog.Attempt{Tenant: "acme", IntegrationID: "s3-1", IntegrationType: catalog.TypePermanent, Target: catalog.TargetS3,
			Status: catalog.AttemptSuccess, AttemptedAt: time.Now(), RetriesRemaining: 10, Filename: fmt.Sprint("f\x00", f, ".export")}
		if f == 2 {
			r.IntegrationID = "poison"
		}
		for i, h := range hostile {
			r.FileEvents = append(r.FileEvents, catalog.FileEvent{EventID: fmt.Sprintf("00000000-0000-5000-8000-0000000000%d%d", f, i),
				DomainEntityID: h, DomainEntityType: h, EventName: h})
		}
		rows = append(rows, r)
	}
	settled := make(chan bool, 1)
	if err := w.WriteThen(ctx, func(ok bool) { settled <- ok }, rows...); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-settled:
		if !ok {
			t.Fatal("WriteThen reported the rows not stored")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not settle file rows holding hostile events within 30s")
	}
	if dropped.Load() != 1 {
		t.Fatalf("%d poison rows dropped, want 1", dropped.Load())
	}
	res, err := db.Pool.Query(ctx, `SELECT filename, e.t FROM publish_attempts p,
		unnest(p.domain_entity_ids || p.domain_entity_types || p.event_names) AS e(t)`)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	n := 0
	for res.Next() {
		var file, text string
		if err := res.Scan(&file, &text); err != nil {
			t.Fatal(err)
		}
		files[file] = true
		n++
		for _, s := range []string{file, text} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || len(s) > 512 {
				t.Fatalf("stored text %.40q (%d bytes) is not valid UTF-8 without NUL within the cap", s, len(s))
			}
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 || n != 4*3*len(hostile) {
		t.Fatalf("%d files, %d texts stored; want 4 files (all but the poison one), %d texts", len(files), n, 4*3*len(hostile))
	}
}
