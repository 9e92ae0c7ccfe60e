package s3sink

import (
	"bytes"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"testing"
)

// A part read back (and seeked, as the SDK does to sign and to retry) gives
// exactly the bytes written, however lines fall across chunks.
func TestPartReaderMatchesWrittenBytes(t *testing.T) {
	pool := newBufferPool(8 * chunkSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sizes := range [][]int{{0}, {1}, {chunkSize}, {chunkSize - 1, 2}, {100, chunkSize + 5, 3 * chunkSize, 7}} {
		var b part
		var want []byte
		for _, n := range sizes {
			line := make([]byte, n)
			for i := range line {
				line[i] = byte(rng.IntN(256))
			}
			b.write(pool, line)
			want = append(want, line...)
		}
		if b.size != int64(len(want)) {
			t.Fatalf("size %d, wrote %d", b.size, len(want))
		}
		r := b.reader()
		if r.Len() != len(want) {
			t.Fatalf("Len %d, want %d", r.Len(), len(want))
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes (err %v), want the %d written", len(got), err, len(want))
		}
		for _, at := range []int64{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, int64(len(want)) / 2, int64(len(want))} {
			if at > int64(len(want)) {
				continue
			}
			if pos, err := r.Seek(at, io.SeekStart); err != nil || pos != at {
				t.Fatalf("Seek(%d) = %d, %v", at, pos, err)
			}
			got, _ := io.ReadAll(r)
			if !bytes.Equal(got, want[at:]) {
				t.Fatalf("after Seek(%d): %d bytes, want %d", at, len(got), len(want)-int(at))
			}
		}
		if end, _ := r.Seek(0, io.SeekEnd); end != int64(len(want)) {
			t.Fatalf("SeekEnd at %d, want %d", end, len(want))
		}
		b.release(pool)
	}
	if h := pool.held.Load(); h != 0 {
		t.Fatalf("%d bytes still lent after every part was released", h)
	}
}

// Returned chunks are reused up to the budget, and the rest let go.
func TestBufferPoolKeepsAtMostItsBudget(t *testing.T) {
	pool := newBufferPool(2 * chunkSize)
	var b part
	b.write(pool, make([]byte, 4*chunkSize))
	if !pool.over() {
		t.Fatal("4 chunks lent on a budget of 2, but not over")
	}
	b.release(pool)
	if len(pool.free) != 2 || pool.over() {
		t.Fatalf("%d chunks kept (over: %v), want 2 and under budget", len(pool.free), pool.over())
	}
}

// GOMEMLIMIT lowers the buffer budget to a quarter of the limit.
func TestBufferBudgetHonoursMemoryLimit(t *testing.T) {
	cfg := DefaultConfig()
	prev := debug.SetMemoryLimit(200 << 20)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	if got := bufferBudget(cfg); got != 50<<20 {
		t.Fatalf("budget %d with GOMEMLIMIT 200MiB, want 50MiB", got)
	}
	debug.SetMemoryLimit(1 << 40)
	if got := bufferBudget(cfg); got != cfg.BufferBytes {
		t.Fatalf("budget %d with a large GOMEMLIMIT, want BufferBytes %d", got, cfg.BufferBytes)
	}
}
