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

// report writes the SUCCESS attempt row of a stored file, then marks its
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

// waitReported waits for the previous stored file's report. The lock is held.
func (s *Sink) waitReported() error {
	if s.reporting == nil {
		return nil
	}
	err := <-s.reporting
	s.reporting = nil
	return err
}

// writeAttempts writes one attempt row for the events of view (the whole
// file, or the part an upload request carried): a copy of base with the
// integration's fields and the events, in file order, filled in. One row per
// file rather than per event: Postgres could not keep up with the S3 path
// otherwise (issue 11); the observability API shows one element per event.
//
// With durable set, the row is written with WriteThen and the callback
// durable returns; if WriteThen fails the callback is settled as not stored.
func (s *Sink) writeAttempts(f *file, view metaView, base catalog.Attempt, durable func() func(stored bool)) error {
	base.Tenant = s.in.Tenant
	base.IntegrationID = s.in.ID
	base.IntegrationType = s.in.Type
	base.Target = catalog.TargetS3
	base.Filename = f.key
	base.FileEvents = make([]catalog.FileEvent, 0, len(view.buf)/24) // an event takes at least 24 bytes of meta
	view.each(func(m eventMeta) {
		base.FileEvents = append(base.FileEvents, catalog.FileEvent{EventID: m.EventID, DomainEntityID: m.DomainEntityID,
			DomainEntityType: m.DomainEntityType, EventName: m.Name})
	})
	if len(base.FileEvents) == 0 {
		if durable != nil {
			durable()(true)
		}
		return nil
	}
	var werr error
	if durable == nil {
		werr = s.env.Attempts.Write(s.runCtx, base)
	} else {
		after := durable()
		if werr = s.env.Attempts.WriteThen(s.runCtx, after, base); werr != nil {
			after(false)
		}
	}
	if werr != nil {
		if s.runCtx.Err() != nil {
			return errClosed
		}
		return fmt.Errorf("writing attempt records: %w", werr)
	}
	return nil
}
