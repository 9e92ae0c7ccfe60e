package delivery

import (
	"sort"
	"sync"
	"time"
)

// tracker follows the records of one partition handed to a sink, in offset
// order, and computes the commit point: one past the newest offset such that
// it and every tracked offset before it are done. Offsets need not be
// contiguous (compaction, transaction markers); only tracked ones count.
type tracker struct {
	mu      sync.Mutex
	entries []trackEntry // ascending offsets; entries[head:] are live
	head    int
	// next is the commit point: every tracked offset below it is done.
	// -1 until the first record completes.
	next int64
}

type trackEntry struct {
	offset int64
	// ts is the record timestamp (unix ms), for the lag-in-seconds gauge.
	ts   int64
	done bool
}

func newTracker() *tracker { return &tracker{next: -1} }

// add tracks offset, stamped ts, which must be above every offset tracked
// before.
func (t *tracker) add(offset int64, ts time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head > 0 && t.head >= len(t.entries)/2 {
		// Compact so the slice never grows beyond twice the live entries.
		n := copy(t.entries, t.entries[t.head:])
		t.entries = t.entries[:n]
		t.head = 0
	}
	t.entries = append(t.entries, trackEntry{offset: offset, ts: ts.UnixMilli()})
}

// done marks offset done and advances the commit point over the done prefix.
// Unknown offsets are ignored.
func (t *tracker) done(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.entries[t.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if i == len(live) || live[i].offset != offset {
		return
	}
	live[i].done = true
	for t.head < len(t.entries) && t.entries[t.head].done {
		t.next = t.entries[t.head].offset + 1
		t.head++
	}
}

// commitPoint returns the offset to commit (the next record to consume), or
// -1 when nothing is done yet.
func (t *tracker) commitPoint() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next
}

// pending reports how many tracked records are not yet committable.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries) - t.head
}

// oldest returns the timestamp of the oldest tracked record not yet done
// (the one holding the commit point back), false when every tracked record
// is done. Timestamps need not grow with offsets (several ingest hosts), so
// this is the oldest by offset, which is what the commit waits for.
func (t *tracker) oldest() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head >= len(t.entries) {
		return time.Time{}, false
	}
	return time.UnixMilli(t.entries[t.head].ts), true
}
