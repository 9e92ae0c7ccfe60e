package s3sink

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/services/delivery"
)

// attemptBatch is how many attempt rows go to the writer in one call, and
// how many records to Done in one call.
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

// waitReported waits for the previous stored file's report. The lock is held.
func (s *Sink) waitReported() error {
	if s.reporting == nil {
		return nil
	}
	err := <-s.reporting
	s.reporting = nil
	return err
}

// writeAttempts writes one row per event of view, each a copy of base with
// the event's and integration's fields filled in.
//
// With durable set, each chunk of rows is written with WriteThen and the
// callback durable returns (called once per chunk, before the chunk is
// enqueued); a chunk whose WriteThen fails is settled as not stored.
func (s *Sink) writeAttempts(f *file, view metaView, base catalog.Attempt, durable func() func(stored bool)) error {
	base.Tenant = s.in.Tenant
	base.IntegrationID = s.in.ID
	base.IntegrationType = s.in.Type
	base.Target = catalog.TargetS3
	base.Filename = f.key
	var (
		werr  error
		batch []catalog.Attempt
	)
	flush := func() {
		// A fresh slice per call: the writer may keep the one it is given.
		if durable == nil {
			werr = s.env.Attempts.Write(s.runCtx, batch...)
		} else {
			after := durable()
			if werr = s.env.Attempts.WriteThen(s.runCtx, after, batch...); werr != nil {
				after(false)
			}
		}
		batch = nil
	}
	view.each(func(m eventMeta) {
		if werr != nil {
			return
		}
		if batch == nil {
			batch = make([]catalog.Attempt, 0, attemptBatch)
		}
		a := base
		a.EventID, a.EventName, a.DomainEntityID, a.DomainEntityType = m.EventID, m.Name, m.DomainEntityID, m.DomainEntityType
		batch = append(batch, a)
		if len(batch) == attemptBatch {
			flush()
		}
	})
	if werr == nil && len(batch) > 0 {
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
