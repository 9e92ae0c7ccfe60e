package observability

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// bucketSizes are the time-series bucket widths the summary chooses from: the
// smallest one giving at most maxBuckets buckets over the window.
var bucketSizes = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour,
}

const maxBuckets = 120

// seriesStart is the earliest time series bucket (the Unix epoch).
var seriesStart = time.Unix(0, 0).UTC()

// bucketFor picks the bucket width for a window of secs seconds (not a
// time.Duration: windows may span millennia, durations only 292 years).
// Windows beyond the largest size get whole days, still at most maxBuckets.
func bucketFor(secs int64) time.Duration {
	for _, b := range bucketSizes {
		if secs <= int64(b/time.Second)*maxBuckets {
			return b
		}
	}
	const day = 24 * 60 * 60
	days := (secs/maxBuckets + day - 1) / day
	return time.Duration(days) * 24 * time.Hour
}

// floorTo rounds t down to a multiple of d since the Unix epoch, as SQL's
// date_bin(d, t, 'epoch') does (time.Truncate counts from year 1 instead).
func floorTo(t time.Time, d time.Duration) time.Time {
	us, du := t.UnixMicro(), d.Microseconds()
	q := us / du
	if us%du < 0 {
		q--
	}
	return time.UnixMicro(q * du).UTC()
}

// Counts are success and failure totals.
type Counts struct {
	Success int64
	Failure int64
}

func (c *Counts) add(status string, n int64) {
	if status == catalog.AttemptSuccess {
		c.Success += n
	} else {
		c.Failure += n
	}
}

// Total is Success + Failure.
func (c Counts) Total() int64 { return c.Success + c.Failure }

// Named is the counts of one integration or event name.
type Named struct {
	Name string
	Counts
}

// Bucket is one time-series point: attempts with attempted_at in
// [Start, Start+width).
type Bucket struct {
	Start time.Time
	Counts
}

// Summary aggregates the attempts matching a filter.
type Summary struct {
	// From and To are the series window: the filter's bounds, or (absent)
	// the first matching attempt's bucket and now.
	From, To      time.Time
	Bucket        time.Duration
	Totals        Counts
	ByIntegration []Named
	ByEventName   []Named
	// Percentiles of response_time_ms (nil when no attempt has one).
	P50, P95, P99 *int
	Series        []Bucket
}

// Summarize aggregates in SQL over the window's partitions, in one read-only
// snapshot so the figures agree with each other and with the list.
func (s *Store) Summarize(ctx context.Context, tenant string, f Filter, now time.Time) (*Summary, error) {
	out := &Summary{}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		from, to := f.From, f.To
		if to.IsZero() {
			to = now.UTC().Truncate(time.Microsecond)
		}
		if from.IsZero() {
			// The series starts at the first matching attempt (an index scan
			// for the oldest row); with none, it covers the last day.
			src, args := f.source(tenant, nil, "", nil)
			var first, last *time.Time
			// Ordered scans stopping at the first event, as min/max over an
			// index would.
			err := tx.QueryRow(ctx, "SELECT (SELECT p.attempted_at "+src+" ORDER BY p.attempted_at LIMIT 1), "+
				"(SELECT p.attempted_at "+src+" ORDER BY p.attempted_at DESC LIMIT 1)", args...).Scan(&first, &last)
			if err != nil {
				return fmt.Errorf("finding the first attempt: %w", err)
			}
			if first == nil {
				from = to.Add(-24 * time.Hour)
			} else {
				from = first.UTC()
			}
			if f.To.IsZero() && last != nil && !last.Before(to) {
				// Attempts stamped ahead of this clock still belong in the series.
				to = last.UTC().Add(time.Microsecond)
			}
		}
		if from.Before(seriesStart) {
			// Nothing is attempted before 1970: the series need not start there.
			from = seriesStart
		}
		if to.Before(from) {
			to = from
		}
		out.Bucket = bucketFor(to.Unix() - from.Unix())
		out.From, out.To = floorTo(from, out.Bucket), to
		return s.aggregate(ctx, tx, tenant, f, out)
	})
	if err != nil {
		return nil, fmt.Errorf("summarizing publish attempts: %w", err)
	}
	return out, nil
}

func (s *Store) aggregate(ctx context.Context, tx pgx.Tx, tenant string, f Filter, out *Summary) error {
	sql, args := summarySQL(tenant, f, out.Bucket)
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("aggregating: %w", err)
	}
	defer rows.Close()
	byInt, byName, byBucket := map[string]*Counts{}, map[string]*Counts{}, map[time.Time]*Counts{}
	get := func(m map[string]*Counts, k string) *Counts {
		c := m[k]
		if c == nil {
			c = &Counts{}
			m[k] = c
		}
		return c
	}
	for rows.Next() {
		var kind int
		var key, status string
		var bk *time.Time
		var n int64
		var p50, p95, p99 *int
		if err := rows.Scan(&kind, &key, &bk, &status, &n, &p50, &p95, &p99); err != nil {
			return fmt.Errorf("reading aggregates: %w", err)
		}
		switch kind {
		case 0:
			out.Totals.add(status, n)
		case 1:
			get(byInt, key).add(status, n)
		case 2:
			get(byName, key).add(status, n)
		case 3:
			t := bk.UTC()
			c := byBucket[t]
			if c == nil {
				c = &Counts{}
				byBucket[t] = c
			}
			c.add(status, n)
		case 9:
			out.P50, out.P95, out.P99 = p50, p95, p99
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("aggregating: %w", err)
	}
	out.ByIntegration, out.ByEventName = sortedNamed(byInt), sortedNamed(byName)
	for t := out.From; t.Before(out.To) || t.Equal(out.From); t = t.Add(out.Bucket) {
		// Every bucket of the window, empty ones included, so a chart needs no gap logic.
		b := Bucket{Start: t}
		if c := byBucket[t]; c != nil {
			b.Counts = *c
		}
		out.Series = append(out.Series, b)
	}
	return nil
}

// summarySQL is the aggregate query of a summary with the given bucket width.
func summarySQL(tenant string, f Filter, bucket time.Duration) (string, []any) {
	c, args := f.conds(tenant, nil, nil)
	args = append(args, fmt.Sprintf("%d seconds", int64(bucket/time.Second)))
	// The matching events: per-event rows as they are (an index-only scan
	// of the covering tenant/time index unless the filter needs other
	// columns), and the events of file rows (event_name is their
	// placeholder '', see migration 0005; a per-event row without a name
	// expands to itself).
	perEvent := "SELECT integration_id, event_name, status, response_time_ms, attempted_at FROM publish_attempts WHERE " + c.common
	files := "SELECT p.integration_id, e.event_name, p.status, p.response_time_ms, p.attempted_at FROM publish_attempts p " +
		expanded + " WHERE " + c.common
	if c.byEvent == "" {
		perEvent += " AND event_name <> ''"
		files += " AND p.event_name = ''"
	} else {
		perEvent += c.byEvent
		files += c.inFiles + " AND " + c.ofEvent
	}
	// One read of the matching events, aggregated twice: the counts by
	// grouping sets, and the percentiles as one extra row (kind 9). Buckets
	// start at multiples of their width since the epoch (floorTo).
	sql := `WITH a AS MATERIALIZED (
			SELECT integration_id, event_name, status, response_time_ms,
				date_bin($` + fmt.Sprint(len(args)) + `::interval, attempted_at, 'epoch'::timestamptz) AS bk
			FROM (` + perEvent + ` UNION ALL ` + files + `) r)
		SELECT CASE WHEN grouping(integration_id) = 0 THEN 1 WHEN grouping(event_name) = 0 THEN 2
				WHEN grouping(bk) = 0 THEN 3 ELSE 0 END,
			coalesce(integration_id, event_name, ''), bk, status, count(*), NULL::int, NULL::int, NULL::int
		FROM a GROUP BY GROUPING SETS ((status), (integration_id, status), (event_name, status), (bk, status))
		UNION ALL
		SELECT 9, '', NULL, '', 0,
			percentile_disc(0.5) WITHIN GROUP (ORDER BY response_time_ms),
			percentile_disc(0.95) WITHIN GROUP (ORDER BY response_time_ms),
			percentile_disc(0.99) WITHIN GROUP (ORDER BY response_time_ms)
		FROM a WHERE response_time_ms IS NOT NULL`
	return sql, args
}

func sortedNamed(m map[string]*Counts) []Named {
	out := make([]Named, 0, len(m))
	for k, c := range m {
		out = append(out, Named{Name: k, Counts: *c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total() != out[j].Total() {
			return out[i].Total() > out[j].Total()
		}
		return out[i].Name < out[j].Name
	})
	return out
}
