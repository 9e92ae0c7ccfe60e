package observability

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// Benchmark shape (OBS_BENCH_ROWS overrides the row count, e.g. for a quick
// run on a small machine): 10 million attempts over 30 day partitions and 20
// tenants, 10 integrations each (one S3), the 42 event names, 2% failures.
const (
	benchDays    = 30
	benchTenants = 20
)

func benchRows(b *testing.B) int {
	if s := os.Getenv("OBS_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < benchTenants*benchDays {
			b.Fatalf("OBS_BENCH_ROWS=%q is not a row count", s)
		}
		return n
	}
	return 10_000_000
}

// loadBench fills a fresh database: the day partitions, then the rows
// generated inside Postgres in 1M-row statements with the table's indexes
// dropped, then the same indexes rebuilt (much faster than maintaining them
// row by row) and statistics gathered.
func loadBench(b *testing.B, db *testenv.DB, rows int, end time.Time) {
	ctx := context.Background()
	start := end.AddDate(0, 0, -benchDays)
	if err := catalog.MaintainAttemptPartitions(ctx, db.Pool, start, benchDays+1, -1); err != nil {
		b.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string, args ...any) {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("%.80s: %v", sql, err)
		}
	}
	exec("SET maintenance_work_mem = '256MB'")
	r, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'publish_attempts'`)
	if err != nil {
		b.Fatal(err)
	}
	type index struct{ name, def string }
	indexes, err := pgx.CollectRows(r, func(row pgx.CollectableRow) (index, error) {
		var i index
		return i, row.Scan(&i.name, &i.def)
	})
	if err != nil || len(indexes) < 6 {
		b.Fatalf("reading the indexes (%d): %v", len(indexes), err)
	}
	for _, i := range indexes {
		exec("DROP INDEX " + pgx.Identifier{i.name}.Sanitize())
	}
	t0 := time.Now()
	const chunk = 1_000_000
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		exec(`INSERT INTO publish_attempts (tenant, integration_id, integration_type, target, status, attempted_at,
			retries_remaining, event_id, domain_entity_id, domain_entity_type, event_name, url, filename,
			response_code, response_body, response_time_ms)
		SELECT 'tenant-' || (g % 20), 'int-' || (g / 20 % 10), 'permanent',
			CASE WHEN g / 20 % 10 = 9 THEN 's3' ELSE 'webhook' END,
			CASE WHEN (g * 2654435761) % 50 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END,
			$1::timestamptz + (g::float8 / $2) * interval '30 days',
			10, md5(g::text)::uuid, 'ent-' || ((g::bigint * 7919) % 1000000),
			split_part(($3::text[])[1 + (g / 7) % 42], '.', 1), ($3::text[])[1 + (g / 7) % 42],
			CASE WHEN g / 20 % 10 = 9 THEN NULL ELSE 'https://hooks.example.com/' || (g % 20) END,
			CASE WHEN g / 20 % 10 = 9 THEN 'exports/' || (g % 20) || '/' || g || '-data.export' END,
			CASE WHEN g / 20 % 10 = 9 THEN NULL WHEN (g * 2654435761) % 50 = 0 THEN 503 ELSE 200 END,
			CASE WHEN g / 20 % 10 = 9 THEN NULL WHEN (g * 2654435761) % 50 = 0 THEN 'Temporary unavailable' ELSE 'ok' END,
			(g * 40503) % 900 + 5
		FROM generate_series($4::bigint, $5::bigint) g`, start, rows, events.Names(), lo, hi-1)
	}
	b.Logf("loaded %d rows in %v", rows, time.Since(t0).Round(time.Second))
	t0 = time.Now()
	for _, i := range indexes {
		// pg_indexes shows a partitioned index as "ON ONLY" (the parent
		// alone); without ONLY it is built on every partition, as the
		// migration made it.
		exec(strings.Replace(i.def, " ON ONLY ", " ON ", 1))
	}
	exec("VACUUM ANALYZE publish_attempts")
	b.Logf("indexed and analyzed in %v", time.Since(t0).Round(time.Second))
}

// countingWriter is a ResponseWriter that keeps only counts, so an export
// of millions of rows measures the server, not a buffer.
type countingWriter struct {
	h     http.Header
	code  int
	bytes int64
	lines int64
}

func (w *countingWriter) Header() http.Header { return w.h }
func (w *countingWriter) WriteHeader(c int)   { w.code = c }
func (w *countingWriter) Flush()              {}
func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	w.bytes += int64(len(p))
	for _, c := range p {
		if c == '\n' {
			w.lines++
		}
	}
	return len(p), nil
}

// BenchmarkObservability reports p50/p99 latency (through the HTTP handler:
// parsing, SQL, JSON) of every filter alone, every pair, the first and the
// hundredth page, the summary over 24 h, and rows/s of the NDJSON export.
func BenchmarkObservability(b *testing.B) {
	rows := benchRows(b)
	db := testenv.NewDB(b)
	end := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	loadBench(b, db, rows, end)
	cfg := Config{DatabaseURL: db.URL, Auth: auth.Config{HS256Secret: testHS256Secret}}
	verifier, err := auth.NewVerifier(context.Background(), cfg.Auth)
	if err != nil {
		b.Fatal(err)
	}
	pool, err := OpenPool(context.Background(), db.URL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	srv, err := New(cfg, pool, verifier)
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	tok, err := auth.Mint(testHS256Secret, "tenant-7", []string{auth.ScopeEventsRead}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	get := func(b *testing.B, path string, accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
		}
		return rec
	}
	latency := func(b *testing.B, path string) {
		b.Helper()
		get(b, path, "") // warm
		samples := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			get(b, path, "")
			samples = append(samples, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(samples)
		pct := func(p float64) float64 {
			return float64(samples[min(len(samples)-1, int(p*float64(len(samples))))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
	}
	day := end.AddDate(0, 0, -2) // a full day in the middle of recent data
	filters := []struct{ name, query string }{
		{"from", "from=" + day.Format(time.RFC3339)},
		{"to", "to=" + day.Add(24*time.Hour).Format(time.RFC3339)},
		{"event_name", "event_name=invoice.created"},
		{"integration_id", "integration_id=int-3"},
		{"status=failure", "status=failure"},
		{"status=success", "status=success"},
		{"domain_entity_id", "domain_entity_id=ent-4647"},
		{"domain_entity_type", "domain_entity_type=gift_card"},
	}
	b.Run("list/none", func(b *testing.B) { latency(b, BasePath) })
	for _, f := range filters {
		b.Run("list/"+f.name, func(b *testing.B) { latency(b, BasePath+"?"+f.query) })
	}
	for i, f := range filters {
		for _, g := range filters[i+1:] {
			if strings.HasPrefix(f.name, "status") && strings.HasPrefix(g.name, "status") {
				continue
			}
			b.Run("pair/"+f.name+"+"+g.name, func(b *testing.B) { latency(b, BasePath+"?"+f.query+"&"+g.query) })
		}
	}
	b.Run("page/1st", func(b *testing.B) { latency(b, BasePath+"?limit=100") })
	b.Run("page/100th", func(b *testing.B) {
		path := BasePath + "?limit=100"
		for range 99 {
			l := get(b, path, "").Header().Get("Link")
			if l == "" {
				b.Fatal("fewer than 100 pages")
			}
			path = strings.TrimPrefix(strings.SplitN(l, ">", 2)[0], "<")
		}
		latency(b, path)
	})
	b.Run("summary/24h", func(b *testing.B) {
		now := end.Add(-time.Hour)
		latency(b, BasePath+"/summary?"+url.Values{"from": {now.Add(-24 * time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}}.Encode())
	})
	b.Run("export/ndjson", func(b *testing.B) {
		var lines int64
		b.ResetTimer()
		for range b.N {
			req := httptest.NewRequest(http.MethodGet, BasePath+"?from="+end.AddDate(0, 0, -7).Format(time.RFC3339), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Accept", MIMENDJSON)
			w := &countingWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK || w.lines == 0 {
				b.Fatalf("export: %d, %d lines", w.code, w.lines)
			}
			lines += w.lines
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(lines)/float64(b.N), "rows/op")
	})
}
