package catalog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// s3FileEvents is the events of one S3 file in these benchmarks: an 8 MiB
// file of 1 KiB events.
const s3FileEvents = 8000

// BenchmarkS3AttemptRows: what storing the SUCCESS attempts of S3 files
// costs in Postgres, one op per event, in events/s.
//
//   - layout=row-per-event is today's: one publish_attempts row per event
//     (every row carrying the file's key) through the attempt writer, the way
//     the S3 sink writes them (WriteThen in chunks of 512, waiting until each
//     file's rows are durable).
//   - layout=row-per-file is what the S3 sink writes since issue 11:
//     publish_attempts rows of up to 2,000 of a file's events each
//     (Attempt.FileEvents; the sink's cap), through the attempt writer,
//     waiting until each file's rows are durable, into the schema's indexes
//     (migration 0005's GIN over the arrays among them). rows=1 is the
//     whole file in one row, for comparison.
//   - layout=scratch-row-per-file was the candidate measured before the
//     schema had it: a scratch table with fewer indexes, one COPY per file.
func BenchmarkS3AttemptRows(b *testing.B) {
	b.Run("layout=row-per-event", benchRowPerEvent)
	b.Run("layout=row-per-file", func(b *testing.B) { benchFileRows(b, 2000) })
	b.Run("layout=row-per-file/rows=1", func(b *testing.B) { benchFileRows(b, s3FileEvents) })
	b.Run("layout=scratch-row-per-file", benchRowPerFile)
}

func benchFileRows(b *testing.B, perRow int) {
	db := testenv.NewDB(b)
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	now := time.Now()
	b.ResetTimer()
	for n := 0; n < b.N; {
		k := min(s3FileEvents, b.N-n)
		key := fmt.Sprintf("exports/acme/%d-data-%08d.export", now.UnixMilli(), n)
		var rows []catalog.Attempt
		for i := range k {
			if i%perRow == 0 {
				rows = append(rows, catalog.Attempt{
					Tenant: "acme", IntegrationID: "s3-1", IntegrationType: catalog.TypePermanent, Target: catalog.TargetS3,
					Status: catalog.AttemptSuccess, AttemptedAt: now, RetriesRemaining: 10, Filename: key,
					FileEvents: make([]catalog.FileEvent, 0, perRow),
				})
			}
			r := &rows[len(rows)-1]
			r.FileEvents = append(r.FileEvents, catalog.FileEvent{EventID: fmt.Sprintf("00000000-0000-5000-8000-%012x", n+i),
				DomainEntityID: fmt.Sprintf("ord-%06x", n+i), DomainEntityType: "order", EventName: "order.created"})
		}
		stored := make(chan bool, 1)
		if err := w.WriteThen(context.Background(), func(ok bool) { stored <- ok }, rows...); err != nil {
			b.Fatal(err)
		}
		if !<-stored {
			b.Fatal("file rows not stored")
		}
		n += k
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchRowPerEvent(b *testing.B) {
	const chunk = 512
	db := testenv.NewDB(b)
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	now := time.Now()
	rows := make([]catalog.Attempt, 0, chunk)
	b.ResetTimer()
	for n := 0; n < b.N; {
		key := fmt.Sprintf("exports/acme/%d-data-%08d.export", now.UnixMilli(), n)
		var wg sync.WaitGroup
		for i := 0; i < s3FileEvents && n < b.N; n++ {
			rows = append(rows, catalog.Attempt{
				Tenant: "acme", IntegrationID: "s3-1", IntegrationType: catalog.TypePermanent, Target: catalog.TargetS3,
				Status: catalog.AttemptSuccess, AttemptedAt: now, RetriesRemaining: 10,
				EventID:        fmt.Sprintf("00000000-0000-5000-8000-%012x", n),
				DomainEntityID: fmt.Sprintf("ord-%06x", n), DomainEntityType: "order", EventName: "order.created",
				Filename: key,
			})
			if i++; len(rows) == chunk || i == s3FileEvents || n+1 == b.N {
				wg.Add(1)
				if err := w.WriteThen(context.Background(), func(bool) { wg.Done() }, rows...); err != nil {
					b.Fatal(err)
				}
				rows = make([]catalog.Attempt, 0, chunk)
			}
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchRowPerFile(b *testing.B) {
	db := testenv.NewDB(b)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE bench_s3_files (id bigserial, tenant text NOT NULL,
			integration_id text NOT NULL, integration_type text NOT NULL, status text NOT NULL,
			attempted_at timestamptz NOT NULL, retries_remaining int NOT NULL, filename text NOT NULL,
			event_ids uuid[] NOT NULL, entity_ids text[] NOT NULL, event_names text[] NOT NULL, entity_types text[] NOT NULL);
		CREATE INDEX ON bench_s3_files (tenant, attempted_at DESC, id DESC);
		CREATE INDEX ON bench_s3_files (tenant, integration_id, attempted_at DESC, id DESC);
		CREATE INDEX ON bench_s3_files USING gin (entity_ids);`); err != nil {
		b.Fatal(err)
	}
	cols := []string{"tenant", "integration_id", "integration_type", "status", "attempted_at", "retries_remaining",
		"filename", "event_ids", "entity_ids", "event_names", "entity_types"}
	ids, ents, names, types := make([]string, s3FileEvents), make([]string, s3FileEvents), make([]string, s3FileEvents), make([]string, s3FileEvents)
	now := time.Now()
	b.ResetTimer()
	for n := 0; n < b.N; {
		k := min(s3FileEvents, b.N-n)
		for i := range k {
			ids[i] = fmt.Sprintf("00000000-0000-5000-8000-%012x", n+i)
			ents[i] = fmt.Sprintf("ord-%06x", n+i)
			names[i], types[i] = "order.created", "order"
		}
		row := []any{"acme", "s3-1", catalog.TypePermanent, catalog.AttemptSuccess, now, 10,
			fmt.Sprintf("exports/acme/%d-data-%08d.export", now.UnixMilli(), n), ids[:k], ents[:k], names[:k], types[:k]}
		if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"bench_s3_files"}, cols, pgx.CopyFromRows([][]any{row})); err != nil {
			b.Fatal(err)
		}
		n += k
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
