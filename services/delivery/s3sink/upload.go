package s3sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/eventstream/eventstream/pkg/backoff"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/services/delivery"
)

const contentType = "application/x-ndjson"

// wait waits for f's part upload in flight, if any.
func (s *Sink) wait(f *file) error {
	if f.inflight == nil {
		return nil
	}
	err := <-f.inflight
	f.inflight = nil
	return err
}

// ship starts uploading f's filled part in the background, after the
// previous part's upload finished (at most one in flight per file). The
// part's chunks go back to the pool when its upload ends.
func (s *Sink) ship(f *file) error {
	if err := s.wait(f); err != nil {
		return err
	}
	p, view, n := f.buf, f.meta.since(f.partMeta), int32(len(f.parts)+1)
	f.buf = part{}
	f.partMeta = f.meta.mark()
	done := make(chan error, 1)
	f.inflight = done
	go func() {
		err := s.uploadPart(f, n, &p, view)
		p.release(s.buffers)
		done <- err
	}()
	return nil
}

// uploadPart stores p as part n of f's multipart upload (starting the
// upload for part 1). Run by the part's goroutine, or by f's completion
// goroutine for the last part.
func (s *Sink) uploadPart(f *file, n int32, p *part, view metaView) error {
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
			PartNumber: aws.Int32(n), Body: p.reader(), ContentLength: aws.Int64(p.size),
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

// seal closes f for writing and completes it in the background: the sink
// moves on to a new file at once. It waits (ctx, Close) only while
// maxCompleting files are still completing. The lock is held.
func (s *Sink) seal(ctx context.Context, f *file) error {
	select {
	case s.completing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.runCtx.Done():
		return errClosed
	}
	f.timer.Stop()
	s.file = nil
	go func() {
		defer func() { <-s.completing }()
		if err := s.complete(f); err != nil && !isStop(err) {
			s.log.Warn("completing S3 file", "key", f.key, "err", err)
			s.errMu.Lock()
			s.completeErr = err
			s.errMu.Unlock()
		}
	}()
	return nil
}

// complete stores the sealed file f (its part in flight, its last part and
// the Complete, or one PutObject), then writes its SUCCESS attempts and
// marks its records Done. Run by f's completion goroutine, which owns f.
// Files complete independently: the core commits per partition only the
// contiguous Done prefix, so a later file done first commits nothing early.
func (s *Sink) complete(f *file) error {
	stored, err := s.store(f)
	f.buf.release(s.buffers)
	if err != nil {
		if errors.Is(err, errClosed) {
			// Close cancelled the requests: abort the upload so no parts
			// are left behind; the records are redelivered.
			if aerr := s.abandon(context.Background(), f); aerr != nil {
				s.log.Warn("aborting S3 upload while closing", "key", f.key, "err", aerr)
			}
		}
		return err
	}
	s.recordStored(f)
	return s.report(f, stored)
}

// store uploads what is left of f and completes its object.
func (s *Sink) store(f *file) (stored time.Time, err error) {
	if err := s.wait(f); err != nil {
		return stored, err
	}
	bucket, key := aws.String(s.in.S3.Bucket), aws.String(f.key)
	if f.uploadID == "" {
		// Smaller than a part: one request.
		err = s.try(f, f.meta.since(0), func(ctx context.Context) error {
			stored = time.Now()
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: bucket, Key: key, ContentType: aws.String(contentType),
				Body: f.buf.reader(), ContentLength: aws.Int64(f.buf.size),
			})
			return err
		})
		return stored, err
	}
	if f.buf.size > 0 {
		if err := s.uploadPart(f, int32(len(f.parts)+1), &f.buf, f.meta.since(f.partMeta)); err != nil {
			return stored, err
		}
	}
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
	return stored, err
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
