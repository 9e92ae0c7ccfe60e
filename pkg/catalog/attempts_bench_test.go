package catalog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// BenchmarkAttemptWriterS3File: the attempt rows of S3 files (one SUCCESS
// row per event, every row of a file carrying its key) written through the
// attempt writer the way the S3 sink writes them (WriteThen in chunks of
// 512), waiting until each file's rows are durable. One op is one event's
// row; files hold 8,000 events (an 8 MiB file of 1 KiB events).
func BenchmarkAttemptWriterS3File(b *testing.B) {
	const perFile, chunk = 8000, 512
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
		for i := 0; i < perFile && n < b.N; n++ {
			rows = append(rows, catalog.Attempt{
				Tenant: "acme", IntegrationID: "s3-1", IntegrationType: catalog.TypePermanent, Target: catalog.TargetS3,
				Status: catalog.AttemptSuccess, AttemptedAt: now, RetriesRemaining: 10,
				EventID:        fmt.Sprintf("00000000-0000-5000-8000-%012x", n),
				DomainEntityID: fmt.Sprintf("ord-%06x", n), DomainEntityType: "order", EventName: "order.created",
				Filename: key,
			})
			if i++; len(rows) == chunk || i == perFile || n+1 == b.N {
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
