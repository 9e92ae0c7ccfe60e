package chaos

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The suite's faults must do what their names say, or a passing run proves
// nothing: these tests check the S3 and broker faults on their own.

func TestS3DropCompleteStoresTheObjectAndDropsTheReply(t *testing.T) {
	ctx := context.Background()
	e, err := startS3(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	type answer struct {
		status int
		etag   string
	}
	do := func(method, path string, body []byte) (answer, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, method, e.URL()+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return answer{}, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get("ETag")}, b, nil
	}
	// s3-5xx refuses writes.
	e.setMode(s3Error, http.StatusServiceUnavailable)
	if resp, _, err := do(http.MethodPut, "/b/refused", []byte("x")); err != nil || resp.status != http.StatusServiceUnavailable {
		t.Fatalf("PUT under s3-503: %v, %v; want 503", resp, err)
	}
	e.setMode(s3OK, 0)

	resp, b, err := do(http.MethodPost, "/b/obj?uploads", nil)
	if err != nil || resp.status != http.StatusOK {
		t.Fatalf("CreateMultipartUpload: %v %s", err, b)
	}
	var created struct{ UploadId string }
	if err := xml.Unmarshal(b, &created); err != nil || created.UploadId == "" {
		t.Fatalf("CreateMultipartUpload answer %s: %v", b, err)
	}
	resp, b, err = do(http.MethodPut, "/b/obj?partNumber=1&uploadId="+created.UploadId, []byte("hello"))
	if err != nil || resp.status != http.StatusOK {
		t.Fatalf("UploadPart: %v %s", err, b)
	}
	complete := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + resp.etag + `</ETag></Part></CompleteMultipartUpload>`

	e.setMode(s3DropComplete, 0)
	if _, _, err := do(http.MethodPost, "/b/obj?uploadId="+created.UploadId, []byte(complete)); err == nil {
		t.Fatal("CompleteMultipartUpload under s3-drop-complete got a reply")
	}
	if e.droppedCount() != 1 {
		t.Fatalf("dropped = %d, want 1", e.droppedCount())
	}
	got, err := os.ReadFile(filepath.Join(e.dir, "buckets", "b", "obj"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("stored object = %q, %v; want the completed upload", got, err)
	}
}

func TestBrokerErrorsAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := startBroker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic("t"),
		kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}

	b.setFailing(kmsg.Produce, kerr.NotLeaderForPartition)
	if err := cl.ProduceSync(ctx, kgo.StringRecord("refused")).FirstErr(); err == nil {
		t.Fatal("a produce succeeded while Produce was failing")
	}
	b.setFailing(kmsg.Produce, nil)

	addr := b.addr
	b.stop()
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	if b.addr != addr {
		t.Fatalf("restarted on %s, want %s", b.addr, addr)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("producing after the restart: %v", err)
	}
	// The log survived the restart: both acknowledged records are there.
	rd, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []string
	for len(got) < 2 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading back: %v (got %q)", err, got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 2 || got[0] != "before" || got[1] != "after" {
		t.Fatalf("log after restart = %q, want [before after]", got)
	}
}
