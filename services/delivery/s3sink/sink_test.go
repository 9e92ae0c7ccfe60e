package s3sink_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/s3local"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

// testConfig is the default config pointed at endpoint, with fast retries.
func testConfig(endpoint string) s3sink.Config {
	c := s3sink.DefaultConfig()
	c.Endpoint = endpoint
	c.UsePathStyle = true
	c.RetryBase = time.Millisecond
	c.RetryMax = 5 * time.Millisecond
	c.RequestTimeout = 10 * time.Second
	return c
}

func newSink(t testing.TB, f *s3sink.Factory, c *core, in *catalog.Integration) delivery.Sink {
	t.Helper()
	s, err := f.NewSink(context.Background(), c.env(in))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func factory(t testing.TB, cfg s3sink.Config) *s3sink.Factory {
	t.Helper()
	f, err := s3sink.NewFactory(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func deliverAll(t testing.TB, s delivery.Sink, recs []*delivery.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Deliver(context.Background(), r); err != nil {
			t.Fatalf("delivering: %v", err)
		}
	}
}

func TestObjectKey(t *testing.T) {
	at := time.UnixMilli(1773479406750)
	cases := []struct{ prefix, want string }{
		{"", "acme/1773479406750-data-1234a.export"},
		{"exports", "exports/acme/1773479406750-data-1234a.export"},
		{"exports/", "exports/acme/1773479406750-data-1234a.export"},
		{"a/b//", "a/b/acme/1773479406750-data-1234a.export"},
		{"/tmp", "tmp/acme/1773479406750-data-1234a.export"},
		{"//tmp/x/", "tmp/x/acme/1773479406750-data-1234a.export"},
		{"/", "acme/1773479406750-data-1234a.export"},
	}
	for _, tc := range cases {
		t.Run(tc.prefix, func(t *testing.T) {
			if got := s3sink.ObjectKey(tc.prefix, "acme", at, "1234a"); got != tc.want {
				t.Fatalf("ObjectKey(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
}

// TestDeliver covers the basic flow for several key prefixes: one file per
// flush, every line the exact envelope, attempts and Done for every event.
func TestDeliver(t *testing.T) {
	srv := startS3(t)
	for i, prefix := range []string{"", "exports", "exports/", "/tmp/x/"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			bucket := fmt.Sprintf("deliver-%d", i)
			c := &core{}
			in := integration(bucket, prefix, "k", "s")
			s := newSink(t, factory(t, testConfig(srv.URL())), c, in)
			recs := makeRecords(200, 100)
			want := expectedLines(recs)
			ids := map[string]bool{}
			for _, r := range recs {
				ids[r.Event.GetEventId()] = true
			}
			deliverAll(t, s, recs)
			if n := c.doneCount(); n != 0 {
				t.Fatalf("%d records Done before the file was stored", n)
			}
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			objs := readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), bucket)
			if len(objs) != 1 {
				t.Fatalf("%d objects, want 1", len(objs))
			}
			seen := checkObjects(t, objs, prefix, want)
			if len(seen) != len(recs) {
				t.Fatalf("%d distinct events in S3, want %d", len(seen), len(recs))
			}
			done, interrupts, attempts, logs := c.snapshot()
			if len(done) != len(recs) || len(interrupts) != 0 || len(logs) != 0 {
				t.Fatalf("done=%d interrupts=%v logs=%v", len(done), interrupts, logs)
			}
			if len(attempts) != len(recs) {
				t.Fatalf("%d attempts, want %d", len(attempts), len(recs))
			}
			if n := len(c.rowsWritten()); n != 1 {
				t.Fatalf("%d attempt rows, want one for the file (issue 11)", n)
			}
			for _, a := range attempts {
				if a.Status != catalog.AttemptSuccess || a.Target != catalog.TargetS3 || a.Filename != objs[0].Key ||
					a.RetriesRemaining != 10 || a.Tenant != tenant || a.IntegrationID != in.ID || a.IntegrationType != catalog.TypePermanent ||
					!ids[a.EventID] || a.EventName == "" || a.DomainEntityType == "" || !strings.HasPrefix(a.DomainEntityID, "e-") {
					t.Fatalf("attempt row %+v", a)
				}
				delete(ids, a.EventID)
			}
			if len(ids) != 0 {
				t.Fatalf("%d events without an attempt row", len(ids))
			}
			// Flushing with no open file writes nothing.
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if objs := readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), bucket); len(objs) != 1 {
				t.Fatalf("an empty flush wrote a file: %d objects", len(objs))
			}
		})
	}
}

func TestRotationBySize(t *testing.T) {
	srv := startS3(t)
	cfg := testConfig(srv.URL())
	cfg.MaxFileBytes = 4 << 10
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("rotate-size", "p", "k", "s"))
	recs := makeRecords(100, 200) // ~330 bytes a line: 12 lines a file
	want := expectedLines(recs)
	deliverAll(t, s, recs)
	// Files close on size by themselves; only the last one waits for more.
	if n := c.doneCount(); n < 50 {
		t.Fatalf("only %d of 100 records Done before flush; size rotation did not happen", n)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	objs := readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), "rotate-size")
	if len(objs) < 8 {
		t.Fatalf("%d files, want at least 8 at 4 KiB each", len(objs))
	}
	for _, o := range objs {
		if o.Size > cfg.MaxFileBytes {
			t.Fatalf("file %s has %d bytes, over the %d limit", o.Key, o.Size, cfg.MaxFileBytes)
		}
	}
	seen := checkObjects(t, objs, "p", want)
	for i := range recs {
		if seen[i] != 1 {
			t.Fatalf("event %d appears %d times", i, seen[i])
		}
	}
	if n := c.doneCount(); n != len(recs) {
		t.Fatalf("%d Done, want %d", n, len(recs))
	}
}

func TestRotationByAge(t *testing.T) {
	testenv.InstallMetrics()
	ages := func() (n uint64, sum float64) {
		for _, p := range testenv.Metrics(t, "eventstream.delivery.s3.file_age", map[string]string{"tenant": tenant}) {
			n, sum = n+p.Count, sum+p.Value
		}
		return n, sum
	}
	n0, sum0 := ages()
	srv := startS3(t)
	cfg := testConfig(srv.URL())
	cfg.MaxFileAge = 100 * time.Millisecond
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("rotate-age", "", "k", "s"))
	recs := makeRecords(6, 10)
	want := expectedLines(recs)
	client := newClient(srv.URL(), "k", "s", "eu-west-1")

	deliverAll(t, s, recs[:3])
	testenv.WaitFor(t, 10*time.Second, "the first file to close on age", func() bool { return c.doneCount() == 3 })
	if objs := readAll(t, client, "rotate-age"); len(objs) != 1 {
		t.Fatalf("%d files after the first age limit, want 1", len(objs))
	}
	deliverAll(t, s, recs[3:])
	testenv.WaitFor(t, 10*time.Second, "the second file to close on age", func() bool { return c.doneCount() == 6 })
	objs := readAll(t, client, "rotate-age")
	if len(objs) != 2 {
		t.Fatalf("%d files, want 2", len(objs))
	}
	seen := checkObjects(t, objs, "", want)
	if len(seen) != 6 {
		t.Fatalf("events seen: %v", seen)
	}
	// The file-age histogram saw both files, each open at least MaxFileAge.
	if n, sum := ages(); n-n0 != 2 || sum-sum0 < 2*cfg.MaxFileAge.Seconds() || sum-sum0 > 20 {
		t.Fatalf("file age histogram: %d files, %.3fs in total; want 2 files of about %s", n-n0, sum-sum0, cfg.MaxFileAge)
	}
	// Each file's key carries the time its first event arrived; the second
	// started after the first closed.
	m0, m1 := keyPattern.FindStringSubmatch(objs[0].Key), keyPattern.FindStringSubmatch(objs[1].Key)
	if m0[3] > m1[3] {
		t.Fatalf("keys out of time order: %s, %s", objs[0].Key, objs[1].Key)
	}
}

// TestMultipart streams files larger than a part as multipart uploads (the
// sink holds a part, not a file); a last file smaller than a part is one
// PutObject.
func TestMultipart(t *testing.T) {
	srv := startS3(t)
	proxy := newFaultProxy(t, srv.URL())
	var mu sync.Mutex
	calls := map[string]int{}
	proxy.setHook(func(r *http.Request) {
		q := r.URL.Query()
		op := r.Method
		switch {
		case q.Has("partNumber"):
			op = "UploadPart"
		case q.Has("uploads"):
			op = "CreateMultipartUpload"
		case q.Has("uploadId") && r.Method == http.MethodPost:
			op = "CompleteMultipartUpload"
		case r.Method == http.MethodPut:
			op = "PutObject"
		}
		mu.Lock()
		calls[op]++
		mu.Unlock()
	})
	cfg := testConfig(proxy.URL)
	cfg.PartSize = s3sink.MinPartSize
	cfg.MaxFileBytes = 12 << 20
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("multipart", "big", "k", "s"))
	recs := makeRecords(3300, 8<<10) // ~26 MiB: two full files and a partial one
	want := expectedLines(recs)
	deliverAll(t, s, recs)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	objs := readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), "multipart")
	if len(objs) != 3 {
		t.Fatalf("%d objects, want 3", len(objs))
	}
	for _, o := range objs {
		if o.Size > cfg.MaxFileBytes {
			t.Fatalf("%s is %d bytes, over the limit", o.Key, o.Size)
		}
	}
	mu.Lock()
	got := fmt.Sprint(calls)
	mu.Unlock()
	if want := "map[CompleteMultipartUpload:2 CreateMultipartUpload:2 PutObject:1 UploadPart:6]"; got != want {
		t.Fatalf("S3 calls %s, want %s", got, want)
	}
	seen := checkObjects(t, objs, "big", want)
	if len(seen) != len(recs) {
		t.Fatalf("%d events in S3, want %d", len(seen), len(recs))
	}
	if n := c.doneCount(); n != len(recs) {
		t.Fatalf("%d Done, want %d", n, len(recs))
	}
}

// TestBadCredentials: every failed upload is a FAILURE row per event and a
// retry log; after the retries the integration is interrupted with nothing
// Done. A new run with fixed keys (a PATCH changes updated_at, so the cached
// client is rebuilt) delivers everything.
func TestBadCredentials(t *testing.T) {
	srv := startS3(t, s3local.WithCredentials("AKIAGOOD", "good-secret"))
	cfg := testConfig(srv.URL())
	cfg.MaxRetries = 3
	f := factory(t, cfg)
	c := &core{}
	in := integration("creds", "", "AKIAGOOD", "wrong-secret")
	s := newSink(t, f, c, in)
	recs := makeRecords(5, 10)
	want := expectedLines(recs)
	deliverAll(t, s, recs)
	if err := s.Flush(context.Background()); !errors.Is(err, s3sink.ErrInterrupted) {
		t.Fatalf("Flush = %v, want ErrInterrupted", err)
	}
	if err := s.Deliver(context.Background(), recs[0]); !errors.Is(err, s3sink.ErrInterrupted) {
		t.Fatalf("Deliver after interrupt = %v, want ErrInterrupted", err)
	}
	done, interrupts, attempts, logs := c.snapshot()
	if len(done) != 0 {
		t.Fatalf("%d records Done although nothing was stored", len(done))
	}
	if len(interrupts) != 1 || !strings.HasPrefix(interrupts[0], "Stopped after 3 failed retries uploading to S3 (s3://creds/acme/") ||
		!strings.Contains(interrupts[0], "Invalid access credentials. (HTTP status code 403)") {
		t.Fatalf("interrupts = %q", interrupts)
	}
	if len(logs) != 3 {
		t.Fatalf("logs = %q, want 3 retries", logs)
	}
	for _, l := range logs {
		if !strings.HasPrefix(l, catalog.ActionRetry+": Upload of s3://creds/acme/") ||
			!strings.HasSuffix(l, ".export failed. Reason: SignatureDoesNotMatch: Invalid access credentials. (HTTP status code 403)") {
			t.Fatalf("log %q", l)
		}
	}
	if len(attempts) != 4*len(recs) {
		t.Fatalf("%d attempt rows, want %d (4 tries × 5 events)", len(attempts), 4*len(recs))
	}
	perRemaining := map[int]int{}
	for _, a := range attempts {
		if a.Status != catalog.AttemptFailure || a.ResponseCode != 403 || a.ResponseBody != "Invalid access credentials." ||
			!strings.HasSuffix(a.Filename, ".export") {
			t.Fatalf("attempt %+v", a)
		}
		perRemaining[a.RetriesRemaining]++
	}
	for r := 0; r <= 3; r++ {
		if perRemaining[r] != len(recs) {
			t.Fatalf("rows per retries_remaining = %v, want %d each for 3..0", perRemaining, len(recs))
		}
	}
	good := newClient(srv.URL(), "AKIAGOOD", "good-secret", "eu-west-1")
	if _, err := good.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("creds")}); err == nil {
		if objs := readAll(t, good, "creds"); len(objs) != 0 {
			t.Fatalf("objects stored with bad credentials: %v", objs)
		}
	}
	_ = s.Close(context.Background())

	// Fix the secret (as PATCH + _start do) and run again with the same
	// records, as the consumer would redeliver them.
	fixed := *in
	fixed.S3 = &catalog.S3Target{AccessKeyID: "AKIAGOOD", SecretAccessKey: "good-secret", Region: "eu-west-1", Bucket: "creds"}
	fixed.UpdatedAt = in.UpdatedAt.Add(time.Second)
	c2 := &core{}
	s2 := newSink(t, f, c2, &fixed)
	deliverAll(t, s2, makeRecords(5, 10))
	if err := s2.Flush(context.Background()); err != nil {
		t.Fatalf("flush with fixed credentials: %v", err)
	}
	seen := checkObjects(t, readAll(t, good, "creds"), "", want)
	if len(seen) != 5 || c2.doneCount() != 5 {
		t.Fatalf("after the fix: seen %v, done %d", seen, c2.doneCount())
	}
}

// TestTimeoutRetried: a request that gets no answer within RequestTimeout
// counts as a failure (no HTTP status) and is retried.
func TestTimeoutRetried(t *testing.T) {
	srv := startS3(t)
	proxy := newFaultProxy(t, srv.URL())
	var held atomic.Int32
	release := make(chan struct{})
	proxy.setHook(func(r *http.Request) {
		if r.Method == http.MethodPut && held.Add(1) == 1 {
			<-release // the first upload hangs past the timeout
		}
	})
	t.Cleanup(func() { close(release) })
	cfg := testConfig(proxy.URL)
	cfg.RequestTimeout = 200 * time.Millisecond
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("timeouts", "", "k", "s"))
	recs := makeRecords(3, 10)
	deliverAll(t, s, recs)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, interrupts, attempts, logs := c.snapshot()
	if len(interrupts) != 0 || len(logs) != 1 || !strings.Contains(logs[0], "Reason: RequestTimeout: no response before the request timeout") {
		t.Fatalf("interrupts %q, logs %q", interrupts, logs)
	}
	var fails, oks int
	for _, a := range attempts {
		switch {
		case a.Status == catalog.AttemptFailure && a.ResponseCode == 0 && a.RetriesRemaining == 10:
			fails++
		case a.Status == catalog.AttemptSuccess && a.RetriesRemaining == 9:
			oks++
		default:
			t.Fatalf("attempt %+v", a)
		}
	}
	if fails != 3 || oks != 3 || c.doneCount() != 3 {
		t.Fatalf("fails %d, successes %d, done %d", fails, oks, c.doneCount())
	}
}

// TestBackpressure: a full part uploads in the background while the next
// one fills; when that one is full too, Deliver blocks (also for other
// partitions) until the upload finishes. Memory stays at two parts.
func TestBackpressure(t *testing.T) {
	srv := startS3(t)
	proxy := newFaultProxy(t, srv.URL())
	gate := make(chan struct{})
	proxy.setHook(func(r *http.Request) {
		if r.URL.Query().Get("partNumber") == "1" {
			<-gate
		}
	})
	cfg := testConfig(proxy.URL)
	cfg.PartSize = s3sink.MinPartSize
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("backpressure", "", "k", "s"))
	recs := makeRecords(2000, 8<<10)
	lines := expectedLines(recs)
	// blockAt is the record that completes the second part: its Deliver
	// waits for part 1's upload.
	blockAt, filled, parts := -1, 0, 0
	for i := range recs {
		filled += len(lines[i]) + 1
		if filled >= s3sink.MinPartSize {
			filled, parts = 0, parts+1
			if parts == 2 {
				blockAt = i
				break
			}
		}
	}
	var delivered atomic.Int32
	feedCtx, revoke := context.WithCancel(context.Background())
	defer revoke()
	errc := make(chan error, 1)
	go func() {
		for _, r := range recs[:blockAt+10] {
			if err := s.Deliver(feedCtx, r); err != nil {
				errc <- err
				return
			}
			delivered.Add(1)
		}
		errc <- nil
	}()
	testenv.WaitFor(t, 30*time.Second, "the second part to fill", func() bool { return int(delivered.Load()) == blockAt })
	other := make(chan error, 1)
	go func() { other <- s.Deliver(context.Background(), recs[1999]) }()
	select {
	case err := <-other:
		t.Fatalf("Deliver returned (%v) with two parts buffered and one upload held", err)
	case err := <-errc:
		t.Fatalf("delivery went past two parts (%v) while part 1 was held", err)
	case <-time.After(100 * time.Millisecond): // the window of the check, not a wait for progress
	}
	// The blocked record's partition is revoked: its Deliver gives up
	// without taking it.
	revoke()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Deliver after its ctx ended = %v", err)
	}
	close(gate)
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	done, _, _, _ := c.snapshot()
	if len(done) != blockAt+1 {
		t.Fatalf("%d Done, want %d", len(done), blockAt+1)
	}
	for _, r := range done {
		if r == recs[blockAt] {
			t.Fatal("the abandoned record was delivered")
		}
	}
	seen := checkObjects(t, readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), "backpressure"), "", lines)
	if len(seen) != blockAt+1 || seen[blockAt] != 0 || seen[1999] != 1 {
		t.Fatalf("%d events stored (abandoned one %d times)", len(seen), seen[blockAt])
	}
}

// TestAbandonedAndClose: a record whose ctx ended is not taken; Close aborts
// an upload in progress and leaves its records un-Done, with no object.
func TestAbandonedAndClose(t *testing.T) {
	srv := startS3(t)
	cfg := testConfig(srv.URL())
	cfg.PartSize = s3sink.MinPartSize
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("closing", "", "k", "s"))
	recs := makeRecords(800, 8<<10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Deliver(ctx, recs[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver with an ended ctx = %v", err)
	}
	deliverAll(t, s, recs) // over one part: a multipart upload opens (its first part uploads in the background)
	client := newClient(srv.URL(), "k", "s", "eu-west-1")
	testenv.WaitFor(t, 30*time.Second, "the multipart upload to open", func() bool {
		ups, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("closing")})
		if err != nil || len(ups.Uploads) > 1 {
			t.Fatalf("open uploads = %v, %v; want 1", ups, err)
		}
		return len(ups.Uploads) == 1
	})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ups, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("closing")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("uploads after Close = %v, %v; want none", ups.Uploads, err)
	}
	if objs := readAll(t, client, "closing"); len(objs) != 0 || c.doneCount() != 0 {
		t.Fatalf("objects %d, done %d after Close; want none", len(objs), c.doneCount())
	}
	if err := s.Deliver(context.Background(), recs[0]); err == nil {
		t.Fatal("Deliver after Close succeeded")
	}
}

// An upload whose creation was answered too late (Close cancelled the
// request after the store created it) is found by its key and aborted:
// Close leaves no upload behind, whatever the timing.
func TestCloseAbortsAnUploadWhoseCreationAnswerWasLost(t *testing.T) {
	srv := startS3(t)
	target, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	created := make(chan struct{}, 1)
	release := make(chan struct{})
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodPost && resp.Request.URL.Query().Has("uploads") {
			select {
			case created <- struct{}{}:
			default:
			}
			<-release // the store created the upload; its answer is held back
		}
		return nil
	}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	cfg := testConfig(proxy.URL)
	cfg.PartSize = s3sink.MinPartSize
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("lost-create", "", "k", "s"))
	deliverAll(t, s, makeRecords(800, 8<<10)) // over one part: the upload is being created
	select {
	case <-created:
	case <-time.After(30 * time.Second):
		t.Fatal("no CreateMultipartUpload reached the store")
	}
	// Close cancels the creation request while its answer is held back.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := newClient(srv.URL(), "k", "s", "eu-west-1")
	ups, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("lost-create")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("uploads after Close = %v, %v; want none", ups.Uploads, err)
	}
}

// A file's SUCCESS attempts are rows of at most FileRowEvents events each,
// together the file's events in the order of its lines (issue 11: one row
// per event was more than Postgres could write).
func TestAttemptRowsPerFile(t *testing.T) {
	srv := startS3(t)
	c := &core{}
	cfg := testConfig(srv.URL())
	cfg.MaxFileBytes = 64 << 20 // one file
	s := newSink(t, factory(t, cfg), c, integration("rows", "", "k", "s"))
	recs := makeRecords(2*s3sink.FileRowEvents+17, 1)
	deliverAll(t, s, recs)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := c.rowsWritten()
	if len(rows) != 3 {
		t.Fatalf("%d attempt rows for %d events, want 3", len(rows), len(recs))
	}
	var ids []string // domain entity ids, unique per record ("e-<n>")
	for _, r := range rows {
		if len(r.FileEvents) == 0 || len(r.FileEvents) > s3sink.FileRowEvents || r.Filename != rows[0].Filename ||
			r.Status != catalog.AttemptSuccess || r.EventID != "" {
			t.Fatalf("row of %d events, file %q, status %s, event %q", len(r.FileEvents), r.Filename, r.Status, r.EventID)
		}
		for _, e := range r.FileEvents {
			ids = append(ids, e.DomainEntityID)
		}
	}
	objs := readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), "rows")
	if len(objs) != 1 {
		t.Fatalf("%d objects, want 1", len(objs))
	}
	lines := strings.Split(strings.TrimSuffix(string(objs[0].Body), "\n"), "\n")
	if len(lines) != len(ids) {
		t.Fatalf("%d lines, %d events in attempt rows", len(lines), len(ids))
	}
	for i, l := range lines {
		if !strings.Contains(l, `"`+ids[i]+`"`) {
			t.Fatalf("line %d %.80s is not event %s: rows out of file order", i, l, ids[i])
		}
	}
}
