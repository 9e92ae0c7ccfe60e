package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/ratelimit"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBucket(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.New(10, 20) // 10/s, burst 20
	l.SetClock(c.now)
	if ok, _ := l.Allow("a", 20); !ok {
		t.Fatal("a full bucket refused its burst")
	}
	ok, wait := l.Allow("a", 5)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v wait=%s, want refused for 500ms", ok, wait)
	}
	if ok, _ := l.Allow("b", 1); !ok {
		t.Fatal("another key was limited by a's use")
	}
	c.advance(500 * time.Millisecond)
	if ok, _ := l.Allow("a", 5); !ok {
		t.Fatal("refilled tokens not available")
	}
	// More than the burst can never pass; the wait is to a full bucket.
	if ok, wait := l.Allow("a", 50); ok || wait != 2*time.Second {
		t.Fatalf("over-burst request: ok=%v wait=%s", ok, wait)
	}
	if got := ratelimit.RetryAfterSeconds(1 * time.Millisecond); got != 1 {
		t.Fatalf("RetryAfterSeconds(1ms) = %d", got)
	}
	if got := ratelimit.RetryAfterSeconds(2001 * time.Millisecond); got != 3 {
		t.Fatalf("RetryAfterSeconds(2.001s) = %d", got)
	}
}

func TestOffAllowsEverything(t *testing.T) {
	l := ratelimit.New(0, 10)
	if l != nil {
		t.Fatal("rate 0 built a limiter")
	}
	if ok, _ := l.Allow("a", 1_000_000); !ok {
		t.Fatal("nil limiter refused")
	}
}

// TestIdleBucketsEvicted: memory stays bounded however many tenants came by.
func TestIdleBucketsEvicted(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := ratelimit.New(100, 100)
	l.SetClock(c.now)
	l.SetMaxKeys(1000)
	for i := range 5000 {
		l.Allow(fmt.Sprint("t", i), 1)
	}
	if n := l.Len(); n > 1000 {
		t.Fatalf("%d buckets kept, cap 1000", n)
	}
	c.advance(2 * time.Second) // every bucket refilled
	l.Allow("fresh", 1)
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets kept after every one went idle, want 1", n)
	}
}

// BenchmarkAllow is the cost the limiter adds to an ingest request (one
// Allow per request, 1,000 tenants, in parallel).
func BenchmarkAllow(b *testing.B) {
	l := ratelimit.New(1e9, 1e9)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("tenant-", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%len(keys)], 500)
			i++
		}
	})
}
