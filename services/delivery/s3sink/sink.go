// Package s3sink delivers an integration's events to its S3 bucket as
// newline-delimited JSON files, one event per line (the webhook body), named
// {key_prefix}/{tenant}/{epoch_millis}-data-{random}.export.
//
// A file starts with its first event and is closed at Config.MaxFileBytes or
// Config.MaxFileAge after it started, whichever comes first; no event, no file.
// An open file is streamed as a multipart upload: a full part uploads in the
// background while the next one fills, never the whole file in memory; files
// that end smaller than a part are written with one PutObject. A closed
// file is sealed and completed (last part, Complete, attempt rows, Done) in
// the background while the next file fills, at most maxCompleting at once.
//
// Memory: part buffers are 1 MiB chunks lent by a pool shared by every sink
// of a Factory (a worker), so a quiet file holds one chunk and a full part
// is never copied to grow. While the chunks lent out exceed
// Config.BufferBytes (at most a quarter of GOMEMLIMIT), files ship parts at
// S3's minimum size and wait for their previous part before buffering more:
// about one minimum part per writing file, plus up to two parts of each
// sealed file still completing. A record is let go as soon as its
// line is in a part; a file keeps its records as runs of offsets (for Done)
// and a few dozen bytes per event for its attempt rows.
//
// Events are reported Done (their offsets committable) only after the object
// is complete and its attempt rows are durable, so a crash mid-file
// re-delivers them into a later file: at least once, never lost.
//
// Failed requests are retried with exponential backoff and jitter; each
// failure is written as FAILURE attempt rows and each retry logged
// (retry_triggered). After Config.MaxRetries failures in a row the sink
// interrupts the integration; its events stay un-Done and a restart resumes
// with them.
//
// Files: factory.go builds sinks; sink.go (this file) takes records;
// file.go and buffer.go are the open file and its part buffers; upload.go
// stores parts and files with retries; report.go writes attempt rows and
// marks records Done; metrics.go counts and traces stored files.
package s3sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/services/delivery"
)

// ErrInterrupted is returned by Deliver and Flush once the sink has stopped
// its integration after failed retries.
var ErrInterrupted = errors.New("s3 sink: integration interrupted")

// errClosed is returned once Close has been called.
var errClosed = errors.New("s3 sink: closed")

// isStop reports whether err only says the sink stopped (nothing to log).
func isStop(err error) bool { return errors.Is(err, ErrInterrupted) || errors.Is(err, errClosed) }

// Sink writes one integration's records to S3. It implements delivery.Sink.
type Sink struct {
	cfg     Config
	env     delivery.SinkEnv
	in      *catalog.Integration
	client  *s3.Client
	buffers *bufferPool
	log     *slog.Logger
	metrics *instruments

	// runCtx lives until Close; every S3 request and retry wait uses it, not
	// the caller's ctx, because a file mixes records of several partitions
	// and one partition's revocation must not cancel the others' upload.
	runCtx    context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	stopped   atomic.Bool // interrupted

	// lock is a one-slot semaphore (a mutex callers can stop waiting for)
	// held while a record is appended and while a file is sealed.
	lock chan struct{}
	// Guarded by lock:
	file *file
	line []byte // scratch for one encoded event

	// completing holds a slot per sealed file being completed in the
	// background (last part, Complete, attempt rows, Done): Deliver waits
	// only when maxCompleting files are, and Flush and Close take every
	// slot to wait for them all.
	completing  chan struct{}
	errMu       sync.Mutex
	completeErr error // the latest failed completion's error, for Flush
}

// maxCompleting is how many sealed files of one sink may be completing in
// the background at once: enough that Deliver fills the next file while
// the previous one's last part and Complete round trip (issue 11), few
// enough that only that many files' parts and event metadata wait in memory.
const maxCompleting = 2

func (s *Sink) acquire(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
		if s.runCtx.Err() != nil {
			<-s.lock
			return errClosed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.runCtx.Done():
		return errClosed
	}
}

func (s *Sink) release() { <-s.lock }

// Deliver appends r to the open file (starting one if needed). A full part
// is uploaded in the background while the next one fills, and a full file is
// sealed and completed in the background while the next file fills; Deliver
// blocks (backpressure) when the next part is full while the previous one
// still uploads, and when maxCompleting files are still being completed.
// Every wait ends with ctx, and then r is not taken.
func (s *Sink) Deliver(ctx context.Context, r *delivery.Record) error {
	for {
		if err := s.acquire(ctx); err != nil {
			return err
		}
		if s.stopped.Load() {
			s.release()
			return ErrInterrupted
		}
		// A record whose partition was revoked while it waited is
		// abandoned: whoever consumes the partition next delivers it.
		if err := ctx.Err(); err != nil {
			s.release()
			return err
		}
		s.line = append(events.AppendBody(s.line[:0], r.Event), '\n')
		f := s.file
		if f != nil && f.size+int64(len(s.line)) > s.cfg.MaxFileBytes {
			// r starts the next file.
			f.closedFull = true
			err := s.seal(ctx, f)
			s.release()
			if err != nil {
				return err
			}
			continue
		}
		err := s.add(ctx, r)
		s.release()
		return err
	}
}

// add puts the encoded line of r into the open file. The lock is held.
func (s *Sink) add(ctx context.Context, r *delivery.Record) error {
	f := s.file
	if f == nil {
		f = s.open()
	}
	n := len(s.line)
	full := f.buf.size+int64(n) >= s.cfg.PartSize
	short := f.buf.needsChunk(n) && s.buffers.over()
	if f.inflight != nil && (full || short) {
		// Two full parts would be held, or more memory taken while buffers
		// are short: wait for the upload first.
		select {
		case err := <-f.inflight:
			f.inflight = nil
			if err != nil {
				return s.failed(f, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.buf.write(s.buffers, s.line)
	f.size += int64(n)
	f.meta.add(r.Event)
	f.traces.add(r.TraceContext())
	// The record itself is not kept: its line is in the part, what its
	// attempt rows need is in meta, and Done needs only its offset (runs).
	f.recs.add(r)
	if f.buf.size >= s.cfg.PartSize || (f.buf.size >= s.cfg.shortPartSize() && s.buffers.over()) {
		if err := s.ship(f); err != nil {
			return s.failed(f, err)
		}
	}
	if f.size >= s.cfg.MaxFileBytes {
		f.closedFull = true
		if err := s.seal(ctx, f); err != nil && !errors.Is(err, ctx.Err()) {
			return err
		}
		// r is taken either way: if ctx ended first, the full file stays
		// open and the next Deliver seals it.
	}
	return nil
}

// Flush completes the open file now and waits until its records, and those
// of every file sealed before, are Done. If ctx ends first it returns ctx's
// error; the uploads go on and their records become Done when they complete.
func (s *Sink) Flush(ctx context.Context) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if f := s.file; f != nil {
		if err := s.seal(ctx, f); err != nil {
			return err
		}
	}
	if err := s.waitCompleted(ctx); err != nil {
		return err
	}
	if s.stopped.Load() {
		return ErrInterrupted
	}
	s.errMu.Lock()
	err := s.completeErr
	s.completeErr = nil
	s.errMu.Unlock()
	return err
}

// waitCompleted waits until no sealed file is being completed, by taking
// every completion slot; the lock is held, so no file is sealed meanwhile.
func (s *Sink) waitCompleted(ctx context.Context) error {
	taken := 0
	defer func() {
		for range taken {
			<-s.completing
		}
	}()
	for taken < cap(s.completing) {
		select {
		case s.completing <- struct{}{}:
			taken++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close aborts the open file's upload and those of sealed files still being
// completed (their records are not Done and will be redelivered), stops every
// retry in progress, and waits for the background completions to end.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(s.cancel)
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer s.release()
	var err error
	if f := s.file; f != nil {
		s.file = nil
		f.timer.Stop()
		f.buf.release(s.buffers)
		if f.inflight != nil {
			select {
			case err := <-f.inflight: // quick: runCtx is cancelled
				if err != nil && !isStop(err) {
					s.log.Warn("uploading a part while closing", "key", f.key, "err", err)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
			f.inflight = nil
		}
		err = s.abandon(ctx, f)
	}
	// Quick: runCtx is cancelled, so each completion only aborts its upload.
	if werr := s.waitCompleted(ctx); werr != nil {
		return werr
	}
	return err
}

// abandon aborts f's multipart upload, if it has one, within
// RequestTimeout even when ctx has ended. Its parts' uploads have ended.
func (s *Sink) abandon(ctx context.Context, f *file) error {
	if f.aborted || (f.uploadID == "" && !f.creating) {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	if f.uploadID == "" {
		return s.abortUnknown(actx, f)
	}
	if err := s.abort(actx, f); err != nil {
		return fmt.Errorf("aborting upload of s3://%s/%s: %w", s.in.S3.Bucket, f.key, err)
	}
	return nil
}
