package s3sink_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

var bucketSeq atomic.Int64

// uniqueBucket names a bucket no earlier test (or -count run) of this
// binary used on the shared MinIO server.
func uniqueBucket(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, bucketSeq.Add(1))
}

// minioClient is the independent client of the MinIO tier: minio-go, not the
// AWS SDK the sink uses.
func minioClient(t testing.TB, srv *testenv.MinIOServer) *minio.Client {
	t.Helper()
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds: miniocreds.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Secure: false, Region: srv.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// minioObjects lists and reads every object of bucket with minio-go.
func minioObjects(t testing.TB, mc *minio.Client, bucket string) []s3Object {
	t.Helper()
	ctx := context.Background()
	var out []s3Object
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s: %v", bucket, o.Err)
		}
		obj, err := mc.GetObject(ctx, bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatalf("reading %s: %v", o.Key, err)
		}
		out = append(out, s3Object{Key: o.Key, Size: o.Size, ETag: o.ETag, Body: body})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func minioConfig(srv *testenv.MinIOServer) s3sink.Config {
	cfg := testConfig(srv.Endpoint)
	cfg.PartSize = s3sink.MinPartSize
	cfg.MaxFileBytes = 11 << 20
	cfg.MaxRetries = 2
	return cfg
}

func minioIntegration(srv *testenv.MinIOServer, bucket, prefix, secret string) *catalog.Integration {
	in := integration(bucket, prefix, srv.AccessKey, secret)
	in.S3.Region = srv.Region
	return in
}

// TestMinIODeliver runs the sink against a real MinIO server and reads the
// result back with minio-go: multipart objects (S3's "-N" ETags) and a
// single-part one, key pattern, exact lines, every event once.
func TestMinIODeliver(t *testing.T) {
	srv := testenv.MinIO(t)
	mc := minioClient(t, srv)
	bucket := uniqueBucket("s3sink-deliver")
	if err := mc.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{Region: srv.Region}); err != nil {
		t.Fatal(err)
	}
	c := &core{}
	s := newSink(t, factory(t, minioConfig(srv)), c, minioIntegration(srv, bucket, "exports/", srv.SecretKey))
	recs := makeRecords(2000, 8<<10) // ~16 MiB: one 11 MiB file of 3 parts, one of 1 part
	want := expectedLines(recs)
	deliverAll(t, s, recs)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	objs := minioObjects(t, mc, bucket)
	if len(objs) != 2 {
		t.Fatalf("%d objects, want 2", len(objs))
	}
	etags := []string{strings.Trim(objs[0].ETag, `"`), strings.Trim(objs[1].ETag, `"`)}
	if !strings.HasSuffix(etags[0], "-3") || strings.Contains(etags[1], "-") {
		t.Fatalf("etags %v: want a 3-part multipart object then a single PutObject", etags)
	}
	seen := checkObjects(t, objs, "exports", want)
	for i := range recs {
		if seen[i] != 1 {
			t.Fatalf("event %d appears %d times", i, seen[i])
		}
	}
	if c.doneCount() != len(recs) {
		t.Fatalf("%d Done, want %d", c.doneCount(), len(recs))
	}
}

// TestMinIOFailures: a wrong secret (403) and a missing bucket (404) are
// retried, logged and recorded, then stop the integration with nothing
// stored or Done; with the problem fixed, a new run delivers everything.
func TestMinIOFailures(t *testing.T) {
	srv := testenv.MinIO(t)
	mc := minioClient(t, srv)
	cases := []struct {
		name, bucket, secret string
		status               int
		reason               string
	}{
		{
			name: "bad secret", bucket: "s3sink-badsecret", secret: "not-the-secret", status: 403,
			reason: "SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided. Check your key and signing method. (HTTP status code 403)",
		},
		{
			name: "missing bucket", bucket: "s3sink-missing", secret: srv.SecretKey, status: 404,
			reason: "NoSuchBucket: The specified bucket does not exist (HTTP status code 404)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tc.bucket = uniqueBucket(tc.bucket)
			if tc.status != 404 {
				if err := mc.MakeBucket(ctx, tc.bucket, minio.MakeBucketOptions{Region: srv.Region}); err != nil {
					t.Fatal(err)
				}
			}
			cfg := minioConfig(srv)
			f := factory(t, cfg)
			c := &core{}
			in := minioIntegration(srv, tc.bucket, "", tc.secret)
			s := newSink(t, f, c, in)
			recs := makeRecords(700, 8<<10) // over one part: the multipart path fails
			want := expectedLines(recs)
			var err error
			for _, r := range recs {
				if err = s.Deliver(ctx, r); err != nil {
					break
				}
			}
			if err == nil {
				err = s.Flush(ctx)
			}
			if !errors.Is(err, s3sink.ErrInterrupted) {
				t.Fatalf("got %v, want ErrInterrupted", err)
			}
			done, interrupts, attempts, logs := c.snapshot()
			if len(done) != 0 || len(interrupts) != 1 || !strings.HasSuffix(interrupts[0], "Reason: "+tc.reason) {
				t.Fatalf("done %d, interrupts %q", len(done), interrupts)
			}
			if len(logs) != cfg.MaxRetries {
				t.Fatalf("logs %q, want %d retries", logs, cfg.MaxRetries)
			}
			for _, l := range logs {
				if !strings.HasPrefix(l, catalog.ActionRetry+": Upload of s3://"+tc.bucket+"/acme/") || !strings.HasSuffix(l, "failed. Reason: "+tc.reason) {
					t.Fatalf("log %q", l)
				}
			}
			if len(attempts) == 0 {
				t.Fatal("no FAILURE attempt rows")
			}
			for _, a := range attempts {
				if a.Status != catalog.AttemptFailure || a.ResponseCode != tc.status || !strings.Contains(tc.reason, a.ResponseBody) {
					t.Fatalf("attempt %+v", a)
				}
			}
			_ = s.Close(ctx)

			// Fix it, as PATCH + _start would, and run again from the start.
			if tc.status == 404 {
				if err := mc.MakeBucket(ctx, tc.bucket, minio.MakeBucketOptions{Region: srv.Region}); err != nil {
					t.Fatal(err)
				}
			}
			fixed := *in
			fixed.S3 = &catalog.S3Target{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Region: srv.Region, Bucket: tc.bucket}
			fixed.UpdatedAt = in.UpdatedAt.Add(1)
			c2 := &core{}
			s2 := newSink(t, f, c2, &fixed)
			deliverAll(t, s2, makeRecords(700, 8<<10))
			if err := s2.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			seen := checkObjects(t, minioObjects(t, mc, tc.bucket), "", want)
			if len(seen) != len(recs) || c2.doneCount() != len(recs) {
				t.Fatalf("after the fix: %d events stored, %d Done", len(seen), c2.doneCount())
			}
			for u := range mc.ListIncompleteUploads(ctx, tc.bucket, "", true) {
				t.Fatalf("incomplete upload left behind: %+v", u)
			}
		})
	}
}
