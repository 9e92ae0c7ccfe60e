package s3sink

import (
	"errors"
	"io"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// chunkSize is the unit of part buffers: a part is a list of chunks, so a
// part never grows by copying, and a quiet file holds one chunk, not a part.
const chunkSize = 1 << 20

// bufferPool lends the chunks of every open file of a worker (one pool per
// Factory) and keeps returned chunks for reuse up to its budget, so steady
// traffic allocates no new part memory.
//
// The budget is soft: a file below MinPartSize always gets a chunk (S3
// refuses smaller parts, so waiting could only deadlock files against each
// other). Over the budget, files ship parts as soon as they reach
// MinPartSize and wait for their previous part's upload before taking more,
// so each holds about one minimum part; memory stays near the budget however
// many files are open, or near one minimum part per writing file when there
// are more of those than the budget covers.
type bufferPool struct {
	budget int64
	held   atomic.Int64 // bytes of chunks lent out
	peak   atomic.Int64 // the most ever lent out at once

	mu   sync.Mutex
	free [][]byte
}

// bufferBudget is cfg's budget, lowered to a quarter of the Go memory limit
// (GOMEMLIMIT) when one is set: the rest is left to the heap (events being
// decoded, attempt rows) and the runtime.
func bufferBudget(cfg Config) int64 {
	b := cfg.BufferBytes
	if lim := debug.SetMemoryLimit(-1); lim != math.MaxInt64 {
		b = min(b, lim/4)
	}
	return max(b, MinPartSize)
}

func newBufferPool(budget int64) *bufferPool { return &bufferPool{budget: budget} }

// over reports whether the chunks lent out reach the budget.
func (p *bufferPool) over() bool { return p.held.Load() >= p.budget }

func (p *bufferPool) get() []byte {
	if h := p.held.Add(chunkSize); h > p.peak.Load() {
		p.peak.Store(h) // racy max: a gauge, not an invariant
	}
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return c[:0]
	}
	p.mu.Unlock()
	return make([]byte, 0, chunkSize)
}

// put takes chunks back; those beyond the budget are left to the collector.
func (p *bufferPool) put(chunks [][]byte) {
	if len(chunks) == 0 {
		return
	}
	held := p.held.Add(-int64(len(chunks)) * chunkSize)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range chunks {
		if held+int64(len(p.free)+1)*chunkSize > p.budget {
			return
		}
		p.free = append(p.free, c)
	}
}

// part is a part being filled (or uploaded): lines appended across chunks.
type part struct {
	chunks [][]byte
	size   int64
}

// needsChunk reports whether appending n bytes takes a new chunk.
func (b *part) needsChunk(n int) bool {
	if len(b.chunks) == 0 {
		return n > 0
	}
	last := b.chunks[len(b.chunks)-1]
	return n > cap(last)-len(last)
}

// write appends line, taking chunks from pool as needed.
func (b *part) write(pool *bufferPool, line []byte) {
	b.size += int64(len(line))
	for len(line) > 0 {
		if b.needsChunk(1) {
			b.chunks = append(b.chunks, pool.get())
		}
		i := len(b.chunks) - 1
		c := b.chunks[i]
		n := min(len(line), cap(c)-len(c))
		b.chunks[i] = append(c, line[:n]...)
		line = line[n:]
	}
}

// release gives the chunks back to pool; the part is empty afterwards.
func (b *part) release(pool *bufferPool) {
	pool.put(b.chunks)
	b.chunks, b.size = nil, 0
}

// reader is a request body over the part's bytes. The SDK seeks it (to
// sign the payload, and to rewind on retries).
func (b *part) reader() *partReader { return &partReader{chunks: b.chunks, size: b.size} }

// partReader reads a part's chunks as one stream; it is an io.ReadSeeker.
type partReader struct {
	chunks [][]byte
	size   int64
	pos    int64
	// chunk and off locate pos: chunks[chunk][off:] is read next.
	chunk int
	off   int
}

func (r *partReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.chunk < len(r.chunks) {
		c := r.chunks[r.chunk]
		k := copy(p[n:], c[r.off:])
		n += k
		r.off += k
		if r.off == len(c) {
			r.chunk, r.off = r.chunk+1, 0
		}
	}
	r.pos += int64(n)
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *partReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	case io.SeekStart:
	default:
		return r.pos, errors.New("s3 part: bad whence")
	}
	if offset < 0 {
		return r.pos, errors.New("s3 part: negative position")
	}
	r.pos, r.chunk = offset, 0
	for r.chunk < len(r.chunks) && offset >= int64(len(r.chunks[r.chunk])) {
		offset -= int64(len(r.chunks[r.chunk]))
		r.chunk++
	}
	r.off = int(offset) // past the end, Read finds no chunk: EOF
	return r.pos, nil
}

// Len is the number of unread bytes (the SDK reads it for the length).
func (r *partReader) Len() int { return int(max(r.size-r.pos, 0)) }
