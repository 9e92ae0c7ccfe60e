package s3sink

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/services/delivery"
)

// attemptBatch is how many records to Done in one call.
const attemptBatch = 512

// report writes the SUCCESS attempt rows of a stored file, then marks its
// records Done.
//
// The records are Done only once every row is durable, so no offset is
// committed ahead of its attempt record. If the rows cannot be stored (the
// worker is stopping), the object is stored but its records are not Done:
// they are delivered again (into another file) after a restart.
func (s *Sink) report(f *file, stored time.Time) error {
	s.traceFile(f, stored)
	var (
		wg      sync.WaitGroup
		lost    atomic.Bool
		pending = func(stored bool) {
			if !stored {
				lost.Store(true)
			}
			wg.Done()
		}
	)
	err := s.writeAttempts(f, f.meta.since(0), catalog.Attempt{
		Status: catalog.AttemptSuccess, AttemptedAt: stored, RetriesRemaining: f.minRetries,
	}, func() func(bool) { wg.Add(1); return pending })
	wg.Wait()
	if err != nil {
		return err
	}
	if lost.Load() {
		return fmt.Errorf("writing attempt records of %s: %w", f.key, errClosed)
	}
	f.recs.each(attemptBatch, func(recs []*delivery.Record) { s.env.Done(recs...) })
	return nil
}

// fileRowEvents caps the events of one attempt row. A file of more events
// is stored as several rows, each a run of the file's events in order, so
// neither the sink nor a COPY holds a whole large file's events at once (a
// 50 MiB file of small events has a quarter of a million), and a page of
// the observability list never reads (detoasts) more than one cap's arrays
// per row it touches.
const fileRowEvents = 2000

// writeAttempts writes the attempt rows of the events of view (the whole
// file, or the part an upload request carried): copies of base with the
// integration's fields and the events, in file order, filled in, at most
// fileRowEvents each. Rows per file rather than per event: Postgres could
// not keep up with the S3 path otherwise (issue 11); the observability API
// shows one element per event.
//
// With durable set, each row is written with WriteThen and the callback
// durable returns (called once per row, before the row is enqueued); a row
// whose WriteThen fails is settled as not stored.
func (s *Sink) writeAttempts(f *file, view metaView, base catalog.Attempt, durable func() func(stored bool)) error {
	base.Tenant = s.in.Tenant
	base.IntegrationID = s.in.ID
	base.IntegrationType = s.in.Type
	base.Target = catalog.TargetS3
	base.Filename = f.key
	var werr error
	row := base
	flush := func() {
		if durable == nil {
			werr = s.env.Attempts.Write(s.runCtx, row)
		} else {
			after := durable()
			if werr = s.env.Attempts.WriteThen(s.runCtx, after, row); werr != nil {
				after(false)
			}
		}
		// A fresh slice per row: the writer keeps the one it is given.
		row.FileEvents = nil
	}
	view.each(func(m eventMeta) {
		if werr != nil {
			return
		}
		if row.FileEvents == nil {
			row.FileEvents = make([]catalog.FileEvent, 0, min(fileRowEvents, len(view.buf)/minMetaBytes+1))
		}
		row.FileEvents = append(row.FileEvents, catalog.FileEvent{EventID: m.EventID, DomainEntityID: m.DomainEntityID,
			DomainEntityType: m.DomainEntityType, EventName: m.Name})
		if len(row.FileEvents) == fileRowEvents {
			flush()
		}
	})
	if werr == nil && len(row.FileEvents) > 0 {
		flush()
	}
	if werr != nil {
		if s.runCtx.Err() != nil {
			return errClosed
		}
		return fmt.Errorf("writing attempt records: %w", werr)
	}
	return nil
}

// minMetaBytes is the fewest bytes an event takes in a metaLog (a UUID and
// four one-byte lengths or indexes).
const minMetaBytes = 21
