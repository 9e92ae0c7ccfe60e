package s3sink_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"weak"

	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

// An open file does not keep its records: once a record's line is in a
// part it can be collected, and the file's records are still all Done,
// exactly the delivered offsets (gaps, such as records the integration's
// filter skipped, are never Done on the sink's behalf).
func TestRecordsLetGoOnceInAPart(t *testing.T) {
	srv := startS3(t)
	c := &core{}
	s := newSink(t, factory(t, testConfig(srv.URL())), c, integration("released", "", "k", "s"))
	all := makeRecords(600, 50)
	type key struct {
		p int32
		o int64
	}
	want := map[key]bool{}
	var refs []weak.Pointer[delivery.Record]
	lines := map[int]string{}
	for i, r := range all {
		if i%7 == 3 {
			continue // filtered out: never handed to the sink
		}
		want[key{r.Partition, r.Offset}] = true
		lines[i] = expectedLines(all[i : i+1])[0]
		refs = append(refs, weak.Make(r))
		if err := s.Deliver(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	all = nil
	runtime.GC()
	for i, p := range refs {
		if p.Value() != nil {
			t.Fatalf("record %d is still held by the open file", i)
		}
	}
	if n := c.doneCount(); n != 0 {
		t.Fatalf("%d records Done before the file was stored", n)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	done, _, _, _ := c.snapshot()
	got := map[key]bool{}
	for _, r := range done {
		k := key{r.Partition, r.Offset}
		if !want[k] || got[k] {
			t.Fatalf("Done for partition %d offset %d: not delivered, or twice", r.Partition, r.Offset)
		}
		got[k] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%d records Done, %d delivered", len(got), len(want))
	}
	seen := checkObjects(t, readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), "released"), "", lines)
	if len(seen) != len(lines) {
		t.Fatalf("%d events stored, %d delivered", len(seen), len(lines))
	}
}

// Sinks of one factory share its part buffers: past BufferBytes, files ship
// minimum-size parts and wait for their previous part before buffering
// more, so several busy files with large parts hold about one minimum part
// each, not two large parts each, and every file is still stored whole.
func TestSinksShareBoundedBuffers(t *testing.T) {
	srv := startS3(t)
	cfg := testConfig(srv.URL())
	cfg.PartSize = 16 << 20
	cfg.MaxFileBytes = 24 << 20
	cfg.BufferBytes = s3sink.MinPartSize
	f := factory(t, cfg)
	const sinks, perSink = 3, 2000 // 2000 events of ~12 KiB: a 24 MiB file each
	var wg sync.WaitGroup
	cores := make([]*core, sinks)
	wants := make([]map[int]string, sinks)
	for i := range sinks {
		cores[i] = &core{}
		in := integration(fmt.Sprintf("shared-%d", i), "", "k", "s")
		in.ID = fmt.Sprintf("s3-%d", i)
		s := newSink(t, f, cores[i], in)
		recs := makeRecords(perSink, 12<<10)
		wants[i] = expectedLines(recs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range recs {
				if err := s.Deliver(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
			if err := s.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range sinks {
		objs := readAll(t, newClient(srv.URL(), "k", "s", "eu-west-1"), fmt.Sprintf("shared-%d", i))
		if seen := checkObjects(t, objs, "", wants[i]); len(seen) != perSink {
			t.Fatalf("sink %d: %d events stored, want %d", i, len(seen), perSink)
		}
		if n := cores[i].doneCount(); n != perSink {
			t.Fatalf("sink %d: %d Done, want %d", i, n, perSink)
		}
	}
	// Each file: a minimum part uploading while at most a minimum part
	// (and the chunk its last line crossed into) fills; two 16 MiB parts
	// each without sharing.
	bound := int64(sinks) * (2*s3sink.MinPartSize + 2*s3sink.ChunkSize)
	if peak := f.BufferPeak(); peak > bound {
		t.Fatalf("part buffers peaked at %d MiB, want at most %d MiB", peak>>20, bound>>20)
	}
	t.Logf("part buffers peaked at %d MiB for %d files with 16 MiB parts", f.BufferPeak()>>20, sinks)
}
