package s3sink_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"
)

// TestDeliverWhileFilesComplete: a full file is stored in the background, so
// Deliver fills the next files while the earlier ones' uploads are held by
// the S3 server; their records are Done only once they are stored. Deliver
// waits when two files are completing, and a record whose ctx ends while it
// waits is not taken.
func TestDeliverWhileFilesComplete(t *testing.T) {
	srv := startS3(t)
	proxy := newFaultProxy(t, srv.URL())
	gate := make(chan struct{})
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the proxy closes: it waits for held requests
	var held atomic.Int32
	proxy.setHook(func(r *http.Request) {
		// Object writes: a PutObject, or a CompleteMultipartUpload.
		object := strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
		complete := r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
		if object && (r.Method == http.MethodPut || complete) {
			held.Add(1)
			<-gate
		}
	})
	cfg := testConfig(proxy.URL)
	cfg.MaxFileBytes = 4 << 10
	c := &core{}
	s := newSink(t, factory(t, cfg), c, integration("completing", "p", "k", "s"))
	recs := makeRecords(100, 200) // ~330 bytes a line: 12 lines a file
	lines := expectedLines(recs)
	// blockAt is the record whose Deliver seals a third file while the
	// first two are still being stored.
	blockAt, size, sealed := -1, int64(0), 0
	for i := range recs {
		n := int64(len(lines[i]) + 1)
		if size > 0 && size+n > cfg.MaxFileBytes {
			if sealed++; sealed == 3 {
				blockAt = i
				break
			}
			size = 0
		}
		if size += n; size >= cfg.MaxFileBytes {
			if sealed++; sealed == 3 {
				blockAt = i
				break
			}
			size = 0
		}
	}
	if blockAt < 0 {
		t.Fatal("the records do not fill three files")
	}
	var delivered atomic.Int32
	feedCtx, revoke := context.WithCancel(context.Background())
	defer revoke()
	errc := make(chan error, 1)
	go func() {
		for _, r := range recs[:blockAt+1] {
			if err := s.Deliver(feedCtx, r); err != nil {
				errc <- err
				return
			}
			delivered.Add(1)
		}
		errc <- nil
	}()
	testenv.WaitFor(t, 30*time.Second, "Deliver to fill a third file while two are held", func() bool {
		return int(delivered.Load()) == blockAt && held.Load() == 2
	})
	if n := c.doneCount(); n != 0 {
		t.Fatalf("%d records Done while their files were not stored", n)
	}
	select {
	case err := <-errc:
		t.Fatalf("Deliver sealed a third file (%v) while two were completing", err)
	case <-time.After(100 * time.Millisecond): // the window of the check, not a wait for progress
	}
	revoke()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Deliver after its ctx ended = %v", err)
	}
	release()
	deliverAll(t, s, recs[blockAt+1:])
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, want := c.doneCount(), len(recs)-1; n != want {
		t.Fatalf("%d Done, want %d", n, want)
	}
	seen := checkObjects(t, readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), "completing"), "p", lines)
	for i := range recs {
		if want := map[bool]int{true: 0, false: 1}[i == blockAt]; seen[i] != want {
			t.Fatalf("event %d stored %d times, want %d", i, seen[i], want)
		}
	}
}
