package s3sink

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventstream/eventstream/services/delivery"
)

// file is an export file, open (the sink's file) or sealed (owned by its
// completion goroutine). While a part upload is in flight (inflight
// != nil) its goroutine owns uploadID, parts, minRetries and aborted; the
// lock holder touches them only after wait.
type file struct {
	key     string
	started time.Time
	size    int64
	timer   *time.Timer

	buf part // the part being filled (its chunks come from the sink's pool)

	inflight chan error // the part upload in progress, if any
	uploadID string     // "" until the first part is uploaded
	// creating is set once a CreateMultipartUpload was sent: if its answer
	// is lost (Close cancelled it), the store may hold an upload we do not
	// know the id of, which Close then finds by key and aborts.
	creating bool
	parts    []types.CompletedPart
	aborted  bool

	recs     recordRuns
	traces   traceSet
	meta     metaLog
	partMeta int // meta position where the buffered part's events start

	minRetries int // fewest retries left at any successful request
	closedFull bool
}

// open starts a file with the age timer running.
func (s *Sink) open() *file {
	now := time.Now()
	f := &file{
		key:        ObjectKey(s.in.S3.KeyPrefix, s.in.Tenant, now, randomSuffix()),
		started:    now,
		minRetries: s.cfg.MaxRetries,
	}
	f.timer = time.AfterFunc(s.cfg.MaxFileAge, func() { s.expire(f) })
	s.file = f
	return f
}

// expire closes f when its age limit passes, unless it was closed already.
func (s *Sink) expire(f *file) {
	if err := s.acquire(s.runCtx); err != nil {
		return
	}
	defer s.release()
	if s.file != f {
		return
	}
	if err := s.seal(s.runCtx, f); err != nil && !isStop(err) {
		s.log.Warn("closing S3 file on age", "key", f.key, "err", err)
	}
}

// failed drops f after the sink was interrupted; its records are never Done.
func (s *Sink) failed(f *file, err error) error {
	if errors.Is(err, ErrInterrupted) && s.file == f {
		f.timer.Stop()
		f.buf.release(s.buffers)
		s.file = nil
	}
	return err
}

// recordRuns are a file's records, let go once their lines are in a part:
// one kept record per partition assignment (its event dropped) and the
// offsets of the others as varint deltas, about one byte per record.
type recordRuns struct {
	runs []recordRun
	last map[int32]int // partition → index of its latest run
	n    int
}

type recordRun struct {
	first  delivery.Record
	last   int64  // offset of the newest record
	deltas []byte // offset deltas of the records after first
}

func (rs *recordRuns) add(r *delivery.Record) {
	rs.n++
	if i, ok := rs.last[r.Partition]; ok && r.SameAssignment(&rs.runs[i].first) {
		run := &rs.runs[i]
		run.deltas = binary.AppendUvarint(run.deltas, uint64(r.Offset-run.last))
		run.last = r.Offset
		return
	}
	if rs.last == nil {
		rs.last = map[int32]int{}
	}
	rs.last[r.Partition] = len(rs.runs)
	run := recordRun{first: *r, last: r.Offset}
	run.first.Event = nil
	rs.runs = append(rs.runs, run)
}

// each calls fn with the records rebuilt, in batches of at most batch
// records, each batch in new memory (fn may keep it).
func (rs *recordRuns) each(batch int, fn func([]*delivery.Record)) {
	var recs []delivery.Record
	flush := func() {
		out := make([]*delivery.Record, len(recs))
		for i := range recs {
			out[i] = &recs[i]
		}
		fn(out)
		recs = nil
	}
	put := func(r delivery.Record) {
		if recs == nil {
			recs = make([]delivery.Record, 0, min(batch, rs.n))
		}
		if recs = append(recs, r); len(recs) == cap(recs) {
			flush()
		}
	}
	for _, run := range rs.runs {
		r := run.first
		put(r)
		for b := run.deltas; len(b) > 0; {
			d, n := binary.Uvarint(b)
			b = b[n:]
			r.Offset += int64(d)
			put(r)
		}
	}
	if len(recs) > 0 {
		flush()
	}
}

// traceSet keeps the distinct publish-request traces of a file's events,
// as many as its span uses (a parent and maxFileLinks links).
type traceSet struct {
	ids  map[trace.TraceID]struct{}
	list []trace.SpanContext
}

func (t *traceSet) add(sc trace.SpanContext) {
	if !sc.IsValid() || len(t.list) > maxFileLinks {
		return
	}
	if _, ok := t.ids[sc.TraceID()]; ok {
		return
	}
	if t.ids == nil {
		t.ids = map[trace.TraceID]struct{}{}
	}
	t.ids[sc.TraceID()] = struct{}{}
	t.list = append(t.list, sc)
}
