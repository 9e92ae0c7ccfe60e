package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/backoff"
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
	// BatchSize is the most rows one COPY writes, an S3 file's row counting
	// as many rows as it has events (a file of more events is written
	// alone). Default 1000.
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
	// OnRowDropped is told about a row Postgres refused even in its safe
	// form (see AttemptWriter); the row is not stored. Optional: the writer
	// logs nothing itself.
	OnRowDropped func(Attempt, error)
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
//
// When Postgres is slow or down the queue fills and Write blocks: delivery
// slows down, no row is dropped. A batch Postgres refuses for its content
// (SQLSTATE classes 22, 23, 54) is split in halves until the refused row is
// alone; that row is stored in a safe form (its text emptied), and only if
// even that is refused is it dropped and reported through OnRowDropped. One
// hostile row therefore never holds up the rows queued behind it. Every text
// goes through SafeText first, so this is a last line of defence.
//
// WriteThen tells its caller when its rows are stored, so a delivery worker
// commits an event's offset only once the event's attempt row is durable.
type AttemptWriter struct {
	pool *pgxpool.Pool
	cfg  AttemptWriterConfig
	q    chan queuedAttempt

	// mu makes closing race-free: Write holds it shared while enqueuing, the
	// closer takes it exclusively, so after close no row enters the queue
	// behind the final drain.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	once    sync.Once

	written atomic.Int64
	dropped atomic.Int64
	known   map[string]bool // partition names known to exist (Run goroutine only)
}

type queuedAttempt struct {
	a   Attempt
	ack *attemptAck // nil for Write
}

// attemptAck calls fn once each of its n rows was stored (or dropped as
// unstorable: retrying could not store it either) or given up at shutdown.
type attemptAck struct {
	left   atomic.Int32
	failed atomic.Bool
	fn     func(stored bool)
}

func (k *attemptAck) settle(stored bool) {
	if !stored {
		k.failed.Store(true)
	}
	if k.left.Add(-1) == 0 {
		k.fn(!k.failed.Load())
	}
}

// NewAttemptWriter returns a writer over pool. Call Run to start writing.
func NewAttemptWriter(pool *pgxpool.Pool, cfg AttemptWriterConfig) *AttemptWriter {
	cfg.defaults()
	return &AttemptWriter{
		pool:    pool,
		cfg:     cfg,
		q:       make(chan queuedAttempt, cfg.QueueSize),
		closing: make(chan struct{}),
		known:   map[string]bool{},
	}
}

// Write enqueues attempts, blocking while the queue is full. It returns
// ctx's error if ctx ends first (rows not yet enqueued are not written) and
// ErrWriterClosed after the writer stopped.
func (w *AttemptWriter) Write(ctx context.Context, attempts ...Attempt) error {
	return w.enqueue(ctx, nil, attempts)
}

// WriteThen is Write that also calls after, once, from the writer's
// goroutine, when every row is settled: after(true) once all of them are
// stored (a row Postgres refuses even in its safe form counts as settled:
// storing it again could not succeed), after(false) if the writer stopped
// before storing some of them. after must be quick and must not call the
// writer. When WriteThen returns an error, after is never called.
func (w *AttemptWriter) WriteThen(ctx context.Context, after func(stored bool), attempts ...Attempt) error {
	if len(attempts) == 0 {
		after(true)
		return nil
	}
	k := &attemptAck{fn: after}
	k.left.Store(int32(len(attempts)))
	return w.enqueue(ctx, k, attempts)
}

func (w *AttemptWriter) enqueue(ctx context.Context, k *attemptAck, attempts []Attempt) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrWriterClosed
	}
	for i, a := range attempts {
		select {
		case w.q <- queuedAttempt{a: a, ack: k}:
		case <-ctx.Done():
			w.abandon(k, len(attempts)-i)
			return ctx.Err()
		case <-w.closing:
			w.abandon(k, len(attempts)-i)
			return ErrWriterClosed
		}
	}
	return nil
}

// abandon settles the n rows of k that were never enqueued so the ones
// that were cannot call after: WriteThen reported the error instead.
func (w *AttemptWriter) abandon(k *attemptAck, n int) {
	if k == nil {
		return
	}
	k.fn = func(bool) {}
	for range n {
		k.settle(false)
	}
}

// Queued is how many rows wait to be written (a metric for queue depth).
func (w *AttemptWriter) Queued() int { return len(w.q) }

// Written is how many rows this writer stored.
func (w *AttemptWriter) Written() int64 { return w.written.Load() }

// Dropped is how many rows Postgres refused even in their safe form.
func (w *AttemptWriter) Dropped() int64 { return w.dropped.Load() }

// Run writes queued rows until ctx ends, then stops accepting rows, writes
// what is queued within DrainTimeout and returns. It also keeps partitions
// ahead of time and drops expired ones every MaintenanceInterval.
func (w *AttemptWriter) Run(ctx context.Context) error {
	w.maintain(ctx)
	maint := time.NewTicker(w.cfg.MaintenanceInterval)
	defer maint.Stop()
	batch := make([]queuedAttempt, 0, w.cfg.BatchSize)
	weight := 0 // of batch
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
			weight += a.a.weight()
			// Take whatever else is queued without waiting.
		more:
			for weight < w.cfg.BatchSize {
				select {
				case a := <-w.q:
					batch = append(batch, a)
					weight += a.a.weight()
				default:
					break more
				}
			}
			if weight >= w.cfg.BatchSize {
				flush.Stop()
				if rest := w.store(ctx, batch); rest != nil {
					return w.drain(rest) // ctx ended mid-write: the drain takes them
				}
				batch, weight = batch[:0], 0
			}
		case <-flush.C:
			if len(batch) > 0 {
				if rest := w.store(ctx, batch); rest != nil {
					return w.drain(rest)
				}
				batch, weight = batch[:0], 0
			}
		}
	}
}

func (w *AttemptWriter) drain(batch []queuedAttempt) error {
	w.once.Do(func() { close(w.closing) })
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.DrainTimeout)
	defer cancel()
	for {
		weight := 0
		for _, q := range batch {
			weight += q.a.weight()
		}
	fill:
		for weight < w.cfg.BatchSize {
			select {
			case a := <-w.q:
				batch = append(batch, a)
				weight += a.a.weight()
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return nil
		}
		if rest := w.store(ctx, batch); rest != nil {
			n := len(rest) + len(w.q)
			for _, q := range rest {
				settle(q, false)
			}
			for len(w.q) > 0 {
				settle(<-w.q, false)
			}
			return fmt.Errorf("draining attempt rows: %d rows not written: %w", n, ctx.Err())
		}
		batch = batch[:0]
	}
}

func settle(q queuedAttempt, stored bool) {
	if q.ack != nil {
		q.ack.settle(stored)
	}
}

// store writes batch: retrying with backoff while Postgres is unreachable
// (rows are never dropped because Postgres is slow or briefly down), and
// splitting it when Postgres refuses its content. It settles every row it
// stored or dropped; when ctx ends first it returns the rows it did not
// settle (nil when it settled all), so the caller drains them rather than
// forgetting them.
func (w *AttemptWriter) store(ctx context.Context, batch []queuedAttempt) (rest []queuedAttempt) {
	for n := 0; ; n++ {
		err := w.write(ctx, batch)
		if err == nil {
			w.written.Add(int64(len(batch)))
			for _, q := range batch {
				settle(q, true)
			}
			return nil
		}
		if w.refused(ctx, err) {
			return w.split(ctx, batch)
		}
		if w.cfg.OnError != nil {
			w.cfg.OnError(err)
		}
		if backoff.Catalog.Wait(ctx, n) != nil {
			return batch
		}
	}
}

// split stores a batch Postgres refused for its content: halves are stored
// on their own (and split again if refused), so only the refused rows are
// singled out; a single refused row is stored in its safe form, or dropped.
func (w *AttemptWriter) split(ctx context.Context, batch []queuedAttempt) (rest []queuedAttempt) {
	if len(batch) > 1 {
		mid := len(batch) / 2
		if rest := w.store(ctx, batch[:mid]); rest != nil {
			return append(rest[:len(rest):len(rest)], batch[mid:]...)
		}
		return w.store(ctx, batch[mid:])
	}
	q := batch[0]
	safe := []queuedAttempt{{a: q.a.safeForm()}}
	var err error
	for n := 0; ; n++ {
		err = w.write(ctx, safe)
		if err == nil || w.refused(ctx, err) || ctx.Err() != nil {
			break
		}
		if w.cfg.OnError != nil {
			w.cfg.OnError(err)
		}
		if backoff.Catalog.Wait(ctx, n) != nil {
			return batch
		}
	}
	if err == nil {
		w.written.Add(1)
		settle(q, true)
		return nil
	}
	if ctx.Err() != nil {
		return batch
	}
	w.dropped.Add(1)
	if w.cfg.OnRowDropped != nil {
		w.cfg.OnRowDropped(q.a, err)
	}
	settle(q, true)
	return nil
}

// refused reports whether err means the rows themselves cannot be written:
// Postgres refused their content, or the client could not encode them while
// Postgres answers (a ping succeeds). Anything else (unreachable, timeouts,
// cancelled statements) is retried whole: a slow catalog never drops rows.
func (w *AttemptWriter) refused(ctx context.Context, err error) bool {
	if refusedContent(err) {
		return true
	}
	var pgErr *pgconn.PgError
	var netErr net.Error
	if ctx.Err() != nil || errors.As(err, &pgErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return w.pool.Ping(pctx) == nil
}

// refusedContent reports whether Postgres refused the rows themselves
// (data exceptions, constraint violations, limits): writing them again
// would fail again, so the batch is split rather than retried.
func refusedContent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	// The client could not encode a value and aborted the COPY itself.
	return pgErr.Code == "57014" && strings.HasPrefix(pgErr.Message, "COPY from stdin failed")
}

var attemptColumns = []string{"tenant", "integration_id", "integration_type", "target", "status", "attempted_at",
	"retries_remaining", "event_id", "domain_entity_id", "domain_entity_type", "event_name",
	"url", "filename", "response_code", "response_body", "response_time_ms",
	"event_count", "event_ids", "domain_entity_ids", "domain_entity_types", "event_names"}

// perEventColumns is how many of attemptColumns a per-event row fills.
const perEventColumns = 16

func (w *AttemptWriter) write(ctx context.Context, batch []queuedAttempt) error {
	for i := range batch {
		if name := partitionName(batch[i].a.AttemptedAt); !w.known[name] {
			if err := ensurePartition(ctx, w.pool, batch[i].a.AttemptedAt); err != nil {
				return err
			}
			w.known[name] = true
		}
	}
	// A batch of per-event rows (webhooks) leaves out the columns of file
	// rows: their defaults (one event, no arrays) cost nothing on the wire.
	cols := attemptColumns[:perEventColumns]
	for i := range batch {
		if batch[i].a.FileEvents != nil {
			cols = attemptColumns
			break
		}
	}
	_, err := w.pool.CopyFrom(ctx, pgx.Identifier{"publish_attempts"}, cols,
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			return attemptValues(&batch[i].a)[:len(cols)], nil
		}))
	if err != nil {
		// A partition dropped behind our back (retention elsewhere) must be
		// re-checked on the next try.
		clear(w.known)
		return fmt.Errorf("copying %d attempt rows: %w", len(batch), err)
	}
	return nil
}

// attemptValues is a's row in attemptColumns order. The event ids go as
// binary UUIDs: pgx encoding a string into a uuid column first tries (and
// fails, building an error) every other plan, a few µs per value.
func attemptValues(a *Attempt) []any {
	row := []any{a.Tenant, a.IntegrationID, a.IntegrationType, a.Target, a.Status, a.AttemptedAt,
		int4(a.RetriesRemaining), pgtype.UUID{Bytes: eventUUID(a.EventID), Valid: true},
		SafeText(a.DomainEntityID, maxIDText), SafeText(a.DomainEntityType, maxIDText),
		SafeText(a.EventName, maxIDText), nullString(SafeText(a.URL, 0)), nullString(SafeText(a.Filename, 0)),
		nullInt(int4(a.ResponseCode)), nullBody(a), int4(a.ResponseTimeMS), int32(1), nil, nil, nil, nil}
	if a.FileEvents == nil {
		return row
	}
	// A file row: the arrays are the events; the per-event columns hold
	// placeholders no filter matches (see migration 0005).
	n := len(a.FileEvents)
	ids, ents, types, names := make([][16]byte, n), make([]string, n), make([]string, n), make([]string, n)
	for i := range a.FileEvents {
		e := &a.FileEvents[i]
		ids[i] = eventUUID(e.EventID)
		ents[i] = SafeText(e.DomainEntityID, maxIDText)
		types[i] = SafeText(e.DomainEntityType, maxIDText)
		names[i] = SafeText(e.EventName, maxIDText)
	}
	row[7] = pgtype.UUID{Valid: true}
	row[8], row[9], row[10] = "", "", ""
	row[16], row[17], row[18], row[19], row[20] = int4(n), ids, ents, types, names
	return row
}

// eventUUID is id's bytes, or the nil UUID when id is not a canonical UUID
// (an event id comes from a record; a malformed one must not make the whole
// batch fail).
func eventUUID(id string) [16]byte {
	if !IsUUID(id) {
		return uuid.Nil
	}
	u, err := uuid.Parse(id) // no allocation for a valid id
	if err != nil {
		return uuid.Nil
	}
	return u
}

// nilUUID stands in for an event id Postgres refused in a row's safe form.
const nilUUID = "00000000-0000-0000-0000-000000000000"

// safeForm is a row Postgres refused, with everything taken from outside
// reduced to what cannot be refused: the outcome is kept, the texts go.
func (a Attempt) safeForm() Attempt {
	s := a
	s.DomainEntityID, s.URL, s.Filename, s.ResponseBody = asciiOnly(a.DomainEntityID), "", "", ""
	if !IsUUID(a.EventID) {
		s.EventID = nilUUID
	}
	if a.FileEvents != nil {
		s.FileEvents = make([]FileEvent, len(a.FileEvents))
		for i, e := range a.FileEvents {
			e.DomainEntityID = asciiOnly(e.DomainEntityID)
			s.FileEvents[i] = e
		}
	}
	return s
}

// asciiOnly keeps the printable ASCII of s, at most maxIDText bytes.
func asciiOnly(s string) string {
	out := make([]byte, 0, min(len(s), maxIDText))
	for i := 0; i < len(s) && len(out) < maxIDText; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}

// int4 clamps n to the range of an int column: an out-of-range value would
// fail in the client, not in Postgres, and never be split out of its batch.
func int4(n int) int32 {
	return int32(max(min(n, math.MaxInt32), math.MinInt32))
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int32) any {
	if n == 0 {
		return nil
	}
	return n
}

// nullBody keeps the body, made safe, only when there was a response.
func nullBody(a *Attempt) any {
	if a.ResponseCode == 0 && a.ResponseBody == "" {
		return nil
	}
	return SafeText(a.ResponseBody, MaxResponseText)
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
