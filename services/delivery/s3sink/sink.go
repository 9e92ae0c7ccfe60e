// Package s3sink delivers an integration's events to its S3 bucket as
// newline-delimited JSON files, one event per line (the webhook body), named
// {key_prefix}/{tenant}/{epoch_millis}-data-{random}.export.
//
// A file starts with its first event and is closed at Config.MaxFileBytes or
// Config.MaxFileAge after it started, whichever comes first; no event, no file.
// An open file is streamed as a multipart upload: a full part uploads in the
// background while the next one fills, so an open file holds at most two
// parts in memory (plus a few dozen bytes per event for its attempt rows),
// never the whole file; files that end smaller than a part are written with
// one PutObject. Events are reported Done (their offsets committable)
// only after the object is complete, so a crash mid-file re-delivers them
// into a later file: at least once, never lost.
//
// Failed requests are retried with exponential backoff and jitter; each
// failure is written as FAILURE attempt rows and each retry logged
// (retry_triggered). After Config.MaxRetries failures in a row the sink
// interrupts the integration; its events stay un-Done and a restart resumes
// with them.
package s3sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/eventstream/eventstream/pkg/backoff"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/services/delivery"
)

// ErrInterrupted is returned by Deliver and Flush once the sink has stopped
// its integration after failed retries.
var ErrInterrupted = errors.New("s3 sink: integration interrupted")

// errClosed is returned once Close has been called.
var errClosed = errors.New("s3 sink: closed")

const contentType = "application/x-ndjson"

// attemptBatch is how many attempt rows go to the writer in one call.
const attemptBatch = 512

// Factory builds S3 sinks that share one configuration and one client cache
// (per-integration S3 clients, rebuilt when an integration changes).
type Factory struct {
	cfg     Config
	clients *clientCache
	log     *slog.Logger
	metrics *instruments
}

// NewFactory validates cfg and returns a Factory. Its NewSink method is a
// delivery.NewSinkFunc.
func NewFactory(cfg Config, log *slog.Logger) (*Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	m, err := newInstruments()
	if err != nil {
		return nil, fmt.Errorf("creating s3 metrics: %w", err)
	}
	return &Factory{cfg: cfg, clients: newClientCache(cfg), log: log, metrics: m}, nil
}

// Option registers the factory's sinks with a delivery service:
//
//	svc, err := delivery.New(cfg, store, pool, factory.Option())
func (f *Factory) Option() delivery.Option { return delivery.WithSink(catalog.TargetS3, f.NewSink) }

// NewSink builds the sink of one run of one S3 integration (a
// delivery.NewSinkFunc).
func (f *Factory) NewSink(_ context.Context, env delivery.SinkEnv) (delivery.Sink, error) {
	return f.newSink(env)
}

// New builds one sink with a client cache of its own; workers with many
// integrations use a Factory instead.
func New(cfg Config, env delivery.SinkEnv) (*Sink, error) {
	f, err := NewFactory(cfg, nil)
	if err != nil {
		return nil, err
	}
	return f.newSink(env)
}

func (f *Factory) newSink(env delivery.SinkEnv) (*Sink, error) {
	in := env.Integration
	if in == nil || in.S3 == nil {
		return nil, errors.New("s3 sink: integration has no S3 target")
	}
	if env.Done == nil || env.Interrupt == nil || env.Attempts == nil || env.Logs == nil {
		return nil, errors.New("s3 sink: incomplete SinkEnv")
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sink{
		cfg:     f.cfg,
		env:     env,
		in:      in,
		client:  f.clients.get(in),
		log:     f.log.With("tenant", in.Tenant, "integration", in.ID, "bucket", in.S3.Bucket),
		metrics: f.metrics,
		runCtx:  ctx,
		cancel:  cancel,
		lock:    make(chan struct{}, 1),
	}, nil
}

// Sink writes one integration's records to S3. It implements delivery.Sink.
type Sink struct {
	cfg     Config
	env     delivery.SinkEnv
	in      *catalog.Integration
	client  *s3.Client
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
	// held while a record is appended and while a file is completed.
	lock chan struct{}
	// Guarded by lock:
	file      *file
	line      []byte     // scratch for one encoded event
	spares    [][]byte   // part buffers of the last file, kept while traffic is high
	reporting chan error // the stored file whose attempts and Done are being reported, if any
}

// file is the open export file. While a part upload is in flight (inflight
// != nil) its goroutine owns uploadID, parts, minRetries, aborted and free;
// the lock holder touches them only after wait.
type file struct {
	key     string
	started time.Time
	size    int64
	timer   *time.Timer

	buf  []byte // the part being filled
	free []byte // a buffer whose upload finished, to fill next

	inflight chan error // the part upload in progress, if any
	uploadID string     // "" until the first part is uploaded
	// creating is set once a CreateMultipartUpload was sent: if its answer
	// is lost (Close cancelled it), the store may hold an upload we do not
	// know the id of, which Close then finds by key and aborts.
	creating bool
	parts    []types.CompletedPart
	aborted  bool

	recs     []*delivery.Record
	meta     metaLog
	partMeta int // meta position where the buffered part's events start

	minRetries int // fewest retries left at any successful request
	closedFull bool
}

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
// completed in the background; Deliver blocks (backpressure) when the next
// part is full while the previous one still uploads, and while a file is
// being completed. Every wait ends with ctx, and then r is not taken.
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
			// r starts the next file once this one is stored.
			f.closedFull = true
			s.finishAsync(f)
			continue
		}
		err := s.add(ctx, r)
		if !errors.Is(err, errFinishing) {
			s.release()
		}
		if errors.Is(err, errFinishing) {
			return nil
		}
		return err
	}
}

// errFinishing tells Deliver that add handed the lock to a file completion.
var errFinishing = errors.New("s3 sink: completing a file")

// add puts the encoded line of r into the open file. The lock is held.
func (s *Sink) add(ctx context.Context, r *delivery.Record) error {
	f := s.file
	if f == nil {
		f = s.open()
	}
	if f.inflight != nil && int64(len(f.buf)+len(s.line)) >= s.cfg.PartSize {
		// Both part buffers would be full: wait for the upload first.
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
	f.buf = appendLine(f.buf, s.line, s.cfg.PartSize)
	f.size += int64(len(s.line))
	f.recs = append(f.recs, r)
	f.meta.add(r.Event)
	// The record stays referenced until its file is stored (minutes, tens of
	// thousands of records); its decoded event and payload are not needed
	// any more: the line is in the part buffer and what attempts need is in
	// meta. Dropping them keeps an open file's memory at its part buffers.
	// (The core's Done reads only the record's partition and offset.)
	r.Event = nil
	if int64(len(f.buf)) >= s.cfg.PartSize {
		if err := s.ship(f); err != nil {
			return s.failed(f, err)
		}
	}
	if f.size >= s.cfg.MaxFileBytes {
		f.closedFull = true
		s.finishAsync(f)
		return errFinishing
	}
	return nil
}

// finishAsync completes f in the background; the lock, held by the caller,
// passes to that goroutine, which releases it when f is stored (or failed).
func (s *Sink) finishAsync(f *file) {
	go func() {
		defer s.release()
		if err := s.finish(f); err != nil && !errors.Is(err, ErrInterrupted) && !errors.Is(err, errClosed) {
			s.log.Warn("completing S3 file", "key", f.key, "err", err)
		}
	}()
}

// appendLine appends line to a part buffer, doubling its capacity when it
// must grow (append's gentler growth would copy a part many times) up to
// about one part.
func appendLine(buf, line []byte, partSize int64) []byte {
	if need := len(buf) + len(line); need > cap(buf) {
		n := max(need, min(2*cap(buf), int(partSize)+64<<10))
		grown := make([]byte, len(buf), n)
		copy(grown, buf)
		buf = grown
	}
	return append(buf, line...)
}

// Flush completes the open file now and waits until its records are Done.
// If ctx ends first it returns ctx's error; the upload goes on and its
// records become Done when it completes.
func (s *Sink) Flush(ctx context.Context) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		defer s.release()
		if f := s.file; f != nil {
			if err := s.finish(f); err != nil {
				done <- err
				return
			}
		}
		if err := s.waitReported(); err != nil {
			done <- err
			return
		}
		if s.stopped.Load() {
			done <- ErrInterrupted
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close aborts the open file's upload (its records are not Done and will be
// redelivered) and stops every retry in progress.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(s.cancel)
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer s.release()
	s.spares = nil
	if s.reporting != nil {
		select {
		case err := <-s.reporting: // quick: runCtx is cancelled
			if err != nil && !errors.Is(err, errClosed) {
				s.log.Warn("reporting a stored file while closing", "err", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		s.reporting = nil
	}
	f := s.file
	if f == nil {
		return nil
	}
	s.file = nil
	f.timer.Stop()
	if f.inflight != nil {
		select {
		case err := <-f.inflight: // quick: runCtx is cancelled
			if err != nil && !errors.Is(err, errClosed) && !errors.Is(err, ErrInterrupted) {
				s.log.Warn("uploading a part while closing", "key", f.key, "err", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		f.inflight = nil
	}
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

// open starts a file with the age timer running.
func (s *Sink) open() *file {
	now := time.Now()
	f := &file{
		key:        ObjectKey(s.in.S3.KeyPrefix, s.in.Tenant, now, randomSuffix()),
		started:    now,
		minRetries: s.cfg.MaxRetries,
	}
	if n := len(s.spares); n > 0 {
		f.buf = s.spares[n-1][:0]
		s.spares = s.spares[:n-1]
		if n > 1 {
			f.free = s.spares[0][:0]
		}
		s.spares = nil
	} else {
		// Grown as events come; a quiet integration never holds a part.
		f.buf = make([]byte, 0, min(s.cfg.PartSize, 64<<10))
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
	if err := s.finish(f); err != nil && !errors.Is(err, ErrInterrupted) && !errors.Is(err, errClosed) {
		s.log.Warn("closing S3 file on age", "key", f.key, "err", err)
	}
}

// failed drops f after the sink was interrupted; its records are never Done.
func (s *Sink) failed(f *file, err error) error {
	if errors.Is(err, ErrInterrupted) && s.file == f {
		f.timer.Stop()
		s.file = nil
	}
	return err
}

// wait waits for f's part upload in flight, if any.
func (s *Sink) wait(f *file) error {
	if f.inflight == nil {
		return nil
	}
	err := <-f.inflight
	f.inflight = nil
	return err
}

// ship starts uploading f's full part in the background, after the previous
// part's upload finished (at most one in flight: memory stays at two parts).
func (s *Sink) ship(f *file) error {
	if err := s.wait(f); err != nil {
		return err
	}
	part, view, n := f.buf, f.meta.since(f.partMeta), int32(len(f.parts)+1)
	f.buf, f.free = f.free, nil
	if f.buf == nil {
		f.buf = make([]byte, 0, cap(part))
	}
	f.partMeta = f.meta.mark()
	done := make(chan error, 1)
	f.inflight = done
	go func() {
		err := s.uploadPart(f, n, part, view)
		if err == nil {
			f.free = part[:0]
		}
		done <- err
	}()
	return nil
}

// uploadPart stores part as part n of f's multipart upload (starting the
// upload for part 1). Run by the part's goroutine, or by the lock holder
// for the last part.
func (s *Sink) uploadPart(f *file, n int32, part []byte, view metaView) error {
	if f.uploadID == "" {
		f.creating = true
		err := s.try(f, view, func(ctx context.Context) error {
			out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
				Bucket: aws.String(s.in.S3.Bucket), Key: aws.String(f.key), ContentType: aws.String(contentType),
			})
			if err == nil {
				f.uploadID = aws.ToString(out.UploadId)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	var etag *string
	err := s.try(f, view, func(ctx context.Context) error {
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.in.S3.Bucket), Key: aws.String(f.key), UploadId: aws.String(f.uploadID),
			PartNumber: aws.Int32(n), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
		})
		if err == nil {
			etag = out.ETag
		}
		return err
	})
	if err != nil {
		return err
	}
	f.parts = append(f.parts, types.CompletedPart{ETag: etag, PartNumber: aws.Int32(n)})
	return nil
}

// finish stores f completely, writes its SUCCESS attempts and marks its
// records Done.
func (s *Sink) finish(f *file) error {
	f.timer.Stop()
	if err := s.wait(f); err != nil {
		return s.failed(f, err)
	}
	var (
		err    error
		stored time.Time
		bucket = aws.String(s.in.S3.Bucket)
		key    = aws.String(f.key)
	)
	if f.uploadID == "" {
		// Smaller than a part: one request.
		err = s.try(f, f.meta.since(0), func(ctx context.Context) error {
			stored = time.Now()
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: bucket, Key: key, ContentType: aws.String(contentType),
				Body: bytes.NewReader(f.buf), ContentLength: aws.Int64(int64(len(f.buf))),
			})
			return err
		})
	} else {
		if len(f.buf) > 0 {
			err = s.uploadPart(f, int32(len(f.parts)+1), f.buf, f.meta.since(f.partMeta))
		}
		if err == nil {
			err = s.try(f, f.meta.since(0), func(ctx context.Context) error {
				stored = time.Now()
				_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
					Bucket: bucket, Key: key, UploadId: aws.String(f.uploadID),
					MultipartUpload: &types.CompletedMultipartUpload{Parts: f.parts},
				})
				if err != nil && describe(err, false).uploadLost() && s.exists(ctx, f) {
					// An earlier Complete did succeed; only its answer was lost.
					return nil
				}
				return err
			})
		}
	}
	if err != nil {
		return s.failed(f, err)
	}
	s.file = nil
	s.recordStored(f)
	if f.closedFull {
		s.spares = append(s.spares[:0], f.buf)
		if f.free != nil {
			s.spares = append(s.spares, f.free)
		}
	}
	f.buf, f.free = nil, nil

	// Attempt rows and Done are reported in the background while the next
	// file fills (the attempt writer may be slow; it applies backpressure),
	// one stored file at a time so only one file's records wait in memory.
	if err := s.waitReported(); err != nil {
		return err
	}
	done := make(chan error, 1)
	s.reporting = done
	go func() { done <- s.report(f, stored) }()
	return nil
}

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
	for i := 0; i < len(f.recs); i += attemptBatch {
		s.env.Done(f.recs[i:min(i+attemptBatch, len(f.recs))]...)
	}
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

// exists reports whether f's object is stored with f's size.
func (s *Sink) exists(ctx context.Context, f *file) bool {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.in.S3.Bucket), Key: aws.String(f.key)})
	return err == nil && aws.ToInt64(out.ContentLength) == f.size
}

func (s *Sink) abort(ctx context.Context, f *file) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.in.S3.Bucket), Key: aws.String(f.key), UploadId: aws.String(f.uploadID),
	})
	if err == nil {
		f.aborted = true
	}
	return err
}

// abortUnknown aborts the uploads of f's key whose creation's answer was
// lost (keys are unique per file, so every upload of it is f's).
func (s *Sink) abortUnknown(ctx context.Context, f *file) error {
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.in.S3.Bucket), Prefix: aws.String(f.key),
	})
	if err != nil {
		return fmt.Errorf("listing uploads of s3://%s/%s: %w", s.in.S3.Bucket, f.key, err)
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != f.key {
			continue
		}
		f.uploadID = aws.ToString(u.UploadId)
		if err := s.abort(ctx, f); err != nil {
			return fmt.Errorf("aborting upload of s3://%s/%s: %w", s.in.S3.Bucket, f.key, err)
		}
	}
	return nil
}

// try runs one S3 request until it succeeds, retrying with backoff. Each
// failure writes FAILURE attempts for the events of view (the part or file
// the request carries) and logs the retry; after MaxRetries retries it
// interrupts the integration and returns ErrInterrupted. The caller owns
// f's upload state (the part goroutine or the lock holder).
func (s *Sink) try(f *file, view metaView, req func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		remaining := s.cfg.MaxRetries - attempt
		ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.RequestTimeout)
		start := time.Now()
		err := req(ctx)
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			f.minRetries = min(f.minRetries, remaining)
			return nil
		}
		if s.runCtx.Err() != nil {
			return errClosed
		}
		fl := describe(err, timedOut)
		s.recordFailure(fl)
		if err := s.writeAttempts(f, view, catalog.Attempt{
			Status: catalog.AttemptFailure, AttemptedAt: start, RetriesRemaining: remaining,
			ResponseCode: fl.status, ResponseBody: fl.message,
			ResponseTimeMS: int(time.Since(start).Milliseconds()),
		}, nil); err != nil {
			return err
		}
		where := fmt.Sprintf("s3://%s/%s", s.in.S3.Bucket, f.key)
		if fl.uploadLost() {
			s.interrupt(f, fmt.Sprintf("Stopped: the upload of %s was lost (%s); starting the integration again re-delivers its events.", where, fl.reason()))
			return ErrInterrupted
		}
		if remaining <= 0 {
			s.interrupt(f, fmt.Sprintf("Stopped after %d failed retries uploading to S3 (%s). Reason: %s", s.cfg.MaxRetries, where, fl.reason()))
			return ErrInterrupted
		}
		reason := fmt.Sprintf("Upload of %s failed. Reason: %s", where, fl.reason())
		if err := s.env.Logs.AddLog(s.runCtx, s.in.Tenant, s.in.ID, catalog.ActionRetry, reason); err != nil {
			s.log.Warn("logging S3 retry", "err", err)
		}
		if (backoff.Policy{Base: s.cfg.RetryBase, Max: s.cfg.RetryMax}).Wait(s.runCtx, attempt) != nil {
			return errClosed
		}
	}
}

// interrupt stops the integration: new records are refused, the upload is
// aborted and the core told. The file's records are never Done, so they are
// consumed again when the integration restarts. Called by whoever owns f's
// upload state; the lock holder drops the file when it sees ErrInterrupted.
func (s *Sink) interrupt(f *file, reason string) {
	s.stopped.Store(true)
	if f.uploadID != "" {
		ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.RequestTimeout)
		if err := s.abort(ctx, f); err != nil {
			s.log.Warn("aborting S3 upload", "key", f.key, "err", err)
		}
		cancel()
	}
	s.log.Warn("S3 delivery stopped", "reason", reason)
	s.env.Interrupt(delivery.StopS3Failed, reason)
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
