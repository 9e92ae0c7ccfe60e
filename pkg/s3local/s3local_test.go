package s3local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/eventstream/eventstream/pkg/s3local"
)

func client(url, key, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		Retryer:      aws.NopRetryer{},
	})
}

func start(t *testing.T, opts ...s3local.Option) (*s3local.Server, string) {
	t.Helper()
	dir := t.TempDir()
	srv, err := s3local.Start(t.Context(), dir, "127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, dir
}

func TestPutGetAutoBucket(t *testing.T) {
	srv, dir := start(t)
	c := client(srv.URL(), "any", "thing")
	ctx := t.Context()
	body := []byte("hello\nworld\n")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("fresh-bucket"), Key: aws.String("p/t/1-data-a.export"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put into a bucket that did not exist: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("fresh-bucket"), Key: aws.String("p/t/1-data-a.export")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("got %q, want %q", got, body)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "buckets", "fresh-bucket", "p", "t", "1-data-a.export"))
	if err != nil || !bytes.Equal(onDisk, body) {
		t.Fatalf("object on disk = %q, %v", onDisk, err)
	}
}

func TestMultipartOnDisk(t *testing.T) {
	srv, dir := start(t)
	c := client(srv.URL(), "k", "s")
	ctx := t.Context()
	bucket, key := aws.String("mp"), aws.String("big.export")
	created, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatalf("creating upload in a new bucket: %v", err)
	}
	var want []byte
	var parts []types.CompletedPart
	for n := int32(1); n <= 3; n++ {
		p := bytes.Repeat([]byte{byte('a' + n)}, 1<<20+int(n))
		want = append(want, p...)
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: created.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(n)})
	}
	// Parts live on disk until completion, not in memory.
	if ents, _ := os.ReadDir(filepath.Join(dir, "multipart", *created.UploadId)); len(ents) != 3 {
		t.Fatalf("part files on disk = %d, want 3", len(ents))
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, want) {
		t.Fatalf("object is %d bytes, want %d (content differs)", len(got), len(want))
	}
	if _, err := os.Stat(filepath.Join(dir, "multipart", *created.UploadId)); !os.IsNotExist(err) {
		t.Fatalf("part files left after completion: %v", err)
	}

	// Aborted uploads are gone: completing them afterwards fails.
	ab, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String("gone")})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String("gone"), UploadId: ab.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String("gone"), UploadId: ab.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String("gone"), UploadId: ab.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}}})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchUpload" {
		t.Fatalf("completing an aborted upload: %v, want NoSuchUpload", err)
	}
}

func TestCredentials(t *testing.T) {
	srv, _ := start(t, s3local.WithCredentials("AKIAGOOD", "good-secret"))
	cases := []struct {
		name, key, secret, wantCode string
	}{
		{"valid", "AKIAGOOD", "good-secret", ""},
		{"unknown key", "AKIABAD", "good-secret", "InvalidAccessKeyId"},
		{"wrong secret", "AKIAGOOD", "bad-secret", "SignatureDoesNotMatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := client(srv.URL(), tc.key, tc.secret)
			_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String("creds-bucket"), Key: aws.String("dir/with space+plus~.export"), Body: bytes.NewReader([]byte("x\n")),
			})
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("signed request refused: %v", err)
				}
				// Query strings are part of the signature too.
				if _, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("creds-bucket"), Prefix: aws.String("dir/")}); err != nil {
					t.Fatalf("signed list refused: %v", err)
				}
				return
			}
			var re interface{ HTTPStatusCode() int }
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.wantCode || apiErr.ErrorMessage() != "Invalid access credentials." {
				t.Fatalf("err = %v, want %s with the credentials message", err, tc.wantCode)
			}
			if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
				t.Fatalf("err = %v, want HTTP 403", err)
			}
		})
	}
}

func TestCloseOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := s3local.Start(ctx, t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	c := client(srv.URL(), "k", "s")
	if _, err := c.ListBuckets(context.Background(), &s3.ListBucketsInput{}); err == nil {
		t.Fatal("server still answering after its context ended")
	}
}
