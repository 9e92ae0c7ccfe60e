package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrWriterClosed is returned by AttemptWriter.Write once the writer stopped.
var ErrWriterClosed = errors.New("attempt writer closed")

// partitionLock is the advisory lock key serialising partition DDL between
// the writers of several worker processes.
const partitionLock = 0x65766e7461747470

// AttemptWriterConfig tunes an AttemptWriter. Zero fields take the defaults.
type AttemptWriterConfig struct {
	// QueueSize bounds the rows waiting to be written; Write blocks when it
	// is full. Default 10000.
	QueueSize int
	// BatchSize is the most rows one COPY writes. Default 1000.
	BatchSize int
	// FlushInterval is how long a partial batch may wait for more rows.
	// Default 100ms.
	FlushInterval time.Duration
	// Retention drops day partitions whose whole day is older than this.
	// Default 30 days; negative keeps everything.
	Retention time.Duration
	// DaysAhead is how many future day partitions exist ahead of time.
	// Default 2.
	DaysAhead int
	// MaintenanceInterval is how often partitions are created ahead and
	// expired ones dropped. Default 1h.
	MaintenanceInterval time.Duration
	// DrainTimeout bounds writing what is queued when Run's ctx ends.
	// Default 10s.
	DrainTimeout time.Duration
	// OnError is told about failed writes (they are retried). Optional.
	OnError func(error)
}

func (c *AttemptWriterConfig) defaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 10000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.DaysAhead <= 0 {
		c.DaysAhead = 2
	}
	if c.MaintenanceInterval <= 0 {
		c.MaintenanceInterval = time.Hour
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// AttemptWriter stores attempt rows in batches with COPY into the
// day-partitioned publish_attempts table. Write only enqueues; Run writes.
// When Postgres is slow or down the queue fills and Write blocks: delivery
// slows down, no row is dropped. The only rows ever lost are those still
// queued when the drain bound passes at shutdown with Postgres unreachable.
type AttemptWriter struct {
	pool *pgxpool.Pool
	cfg  AttemptWriterConfig
	q    chan Attempt

	// mu makes closing race-free: Write holds it shared while enqueuing, the
	// closer takes it exclusively, so after close no row enters the queue
	// behind the final drain.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	once    sync.Once

	written atomic.Int64
	known   map[string]bool // partition names known to exist (Run goroutine only)
}

// NewAttemptWriter returns a writer over pool. Call Run to start writing.
func NewAttemptWriter(pool *pgxpool.Pool, cfg AttemptWriterConfig) *AttemptWriter {
	cfg.defaults()
	return &AttemptWriter{
		pool:    pool,
		cfg:     cfg,
		q:       make(chan Attempt, cfg.QueueSize),
		closing: make(chan struct{}),
		known:   map[string]bool{},
	}
}

// Write enqueues attempts, blocking while the queue is full. It returns
// ctx's error if ctx ends first (rows not yet enqueued are not written) and
// ErrWriterClosed after the writer stopped.
func (w *AttemptWriter) Write(ctx context.Context, attempts ...Attempt) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrWriterClosed
	}
	for _, a := range attempts {
		select {
		case w.q <- a:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.closing:
			return ErrWriterClosed
		}
	}
	return nil
}

// Queued is how many rows wait to be written (a metric for queue depth).
func (w *AttemptWriter) Queued() int { return len(w.q) }

// Written is how many rows this writer stored.
func (w *AttemptWriter) Written() int64 { return w.written.Load() }

// Run writes queued rows until ctx ends, then stops accepting rows, writes
// what is queued within DrainTimeout and returns. It also keeps partitions
// ahead of time and drops expired ones every MaintenanceInterval.
func (w *AttemptWriter) Run(ctx context.Context) error {
	w.maintain(ctx)
	maint := time.NewTicker(w.cfg.MaintenanceInterval)
	defer maint.Stop()
	batch := make([]Attempt, 0, w.cfg.BatchSize)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return w.drain(batch)
		case <-maint.C:
			w.maintain(ctx)
		case a := <-w.q:
			if len(batch) == 0 {
				flush.Reset(w.cfg.FlushInterval)
			}
			batch = append(batch, a)
			// Take whatever else is queued without waiting.
		more:
			for len(batch) < w.cfg.BatchSize {
				select {
				case a := <-w.q:
					batch = append(batch, a)
				default:
					break more
				}
			}
			if len(batch) >= w.cfg.BatchSize {
				flush.Stop()
				w.writeRetrying(ctx, batch)
				batch = batch[:0]
			}
		case <-flush.C:
			if len(batch) > 0 {
				w.writeRetrying(ctx, batch)
				batch = batch[:0]
			}
		}
	}
}

func (w *AttemptWriter) drain(batch []Attempt) error {
	w.once.Do(func() { close(w.closing) })
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.DrainTimeout)
	defer cancel()
	for {
	fill:
		for len(batch) < w.cfg.BatchSize {
			select {
			case a := <-w.q:
				batch = append(batch, a)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return nil
		}
		w.writeRetrying(ctx, batch)
		if ctx.Err() != nil {
			return fmt.Errorf("draining attempt rows: %d rows not written: %w", len(batch)+len(w.q), ctx.Err())
		}
		batch = batch[:0]
	}
}

// writeRetrying writes batch, retrying with backoff until it succeeds or ctx
// ends: rows are never dropped because Postgres is slow or briefly down.
func (w *AttemptWriter) writeRetrying(ctx context.Context, batch []Attempt) {
	backoff := 50 * time.Millisecond
	for {
		err := w.write(ctx, batch)
		if err == nil {
			w.written.Add(int64(len(batch)))
			return
		}
		if w.cfg.OnError != nil {
			w.cfg.OnError(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

var attemptColumns = []string{"tenant", "integration_id", "integration_type", "target", "status", "attempted_at",
	"retries_remaining", "event_id", "domain_entity_id", "domain_entity_type", "event_name",
	"url", "filename", "response_code", "response_body", "response_time_ms"}

func (w *AttemptWriter) write(ctx context.Context, batch []Attempt) error {
	for i := range batch {
		if name := partitionName(batch[i].AttemptedAt); !w.known[name] {
			if err := ensurePartition(ctx, w.pool, batch[i].AttemptedAt); err != nil {
				return err
			}
			w.known[name] = true
		}
	}
	_, err := w.pool.CopyFrom(ctx, pgx.Identifier{"publish_attempts"}, attemptColumns,
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			a := &batch[i]
			return []any{a.Tenant, a.IntegrationID, a.IntegrationType, a.Target, a.Status, a.AttemptedAt,
				a.RetriesRemaining, a.EventID, a.DomainEntityID, a.DomainEntityType, a.EventName,
				nullString(a.URL), nullString(a.Filename), nullInt(a.ResponseCode), nullBody(a),
				a.ResponseTimeMS}, nil
		}))
	if err != nil {
		// A partition dropped behind our back (retention elsewhere) must be
		// re-checked on the next try.
		clear(w.known)
		return fmt.Errorf("copying %d attempt rows: %w", len(batch), err)
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// nullBody keeps the body only when there was a response.
func nullBody(a *Attempt) any {
	if a.ResponseCode == 0 && a.ResponseBody == "" {
		return nil
	}
	return a.ResponseBody
}

func (w *AttemptWriter) maintain(ctx context.Context) {
	err := MaintainAttemptPartitions(ctx, w.pool, time.Now(), w.cfg.DaysAhead, w.cfg.Retention)
	if err != nil && ctx.Err() == nil && w.cfg.OnError != nil {
		w.cfg.OnError(err)
	}
}

func dayStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func partitionName(t time.Time) string { return "publish_attempts_p" + dayStart(t).Format("20060102") }

// ensurePartition creates the day partition holding t if it does not exist.
func ensurePartition(ctx context.Context, pool *pgxpool.Pool, t time.Time) error {
	from := dayStart(t)
	to := from.AddDate(0, 0, 1)
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// IF NOT EXISTS alone still races on the catalog between sessions.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return fmt.Errorf("locking partitions: %w", err)
		}
		sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF publish_attempts FOR VALUES FROM ('%s') TO ('%s')`,
			partitionName(t), from.Format(time.RFC3339), to.Format(time.RFC3339))
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating partition %s: %w", partitionName(t), err)
		}
		return nil
	})
}

// MaintainAttemptPartitions creates the day partitions of publish_attempts
// from today through daysAhead days after now, and drops every partition
// whose whole day ended more than retention before now (a negative retention
// keeps everything). It is safe to run from several processes at once.
func MaintainAttemptPartitions(ctx context.Context, pool *pgxpool.Pool, now time.Time, daysAhead int, retention time.Duration) error {
	for d := 0; d <= daysAhead; d++ {
		if err := ensurePartition(ctx, pool, now.AddDate(0, 0, d)); err != nil {
			return err
		}
	}
	if retention < 0 {
		return nil
	}
	_, err := DropAttemptPartitions(ctx, pool, now.Add(-retention))
	return err
}

// DropAttemptPartitions drops the day partitions of publish_attempts whose
// day ends at or before cutoff and returns their names.
func DropAttemptPartitions(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time) ([]string, error) {
	var dropped []string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return fmt.Errorf("locking partitions: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_inherits i
			JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
			WHERE p.relname = 'publish_attempts'`)
		if err != nil {
			return fmt.Errorf("listing attempt partitions: %w", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("listing attempt partitions: %w", err)
		}
		for _, n := range names {
			day, err := time.Parse("20060102", strings.TrimPrefix(n, "publish_attempts_p"))
			if err != nil {
				continue // not one of ours
			}
			if day.AddDate(0, 0, 1).After(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{n}.Sanitize()); err != nil {
				return fmt.Errorf("dropping partition %s: %w", n, err)
			}
			dropped = append(dropped, n)
		}
		return nil
	})
	return dropped, err
}
