// Package ratelimit holds per-key token buckets (one per tenant) with bounded
// memory: a bucket idle long enough to be full again is indistinguishable
// from a new one, so it is dropped, and the number of buckets is capped.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys caps how many buckets a Limiter keeps.
const DefaultMaxKeys = 100_000

// Limiter is a set of token buckets keyed by a string (a tenant). Each holds
// up to Burst tokens and refills at Rate tokens per second. A nil *Limiter
// (rate 0: limiting off) allows everything. Safe for concurrent use.
type Limiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

// New returns a limiter of rate tokens per second and burst tokens per key,
// or nil (no limit) when rate is 0 or less. burst below 1 is raised to 1.
func New(rate float64, burst int) *Limiter {
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil
	}
	return &Limiter{rate: rate, burst: math.Max(1, float64(burst)), maxKeys: DefaultMaxKeys,
		now: time.Now, buckets: make(map[string]*bucket)}
}

// SetClock replaces the clock (tests).
func (l *Limiter) SetClock(now func() time.Time) { l.now = now }

// SetMaxKeys changes the bucket cap (tests).
func (l *Limiter) SetMaxKeys(n int) { l.maxKeys = n }

// Burst is the bucket size (0 for a nil limiter).
func (l *Limiter) Burst() int {
	if l == nil {
		return 0
	}
	return int(l.burst)
}

// Allow takes n tokens from key's bucket if it holds them. Otherwise it takes
// nothing and returns how long until n tokens are there (for Retry-After; n
// larger than the burst can never pass and reports the time to a full bucket).
func (l *Limiter) Allow(key string, n int) (ok bool, retryAfter time.Duration) {
	if l == nil || n <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evictOne()
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	} else if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.at = now
	}
	need := float64(n)
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	missing := math.Min(need, l.burst) - b.tokens
	return false, time.Duration(math.Ceil(missing / l.rate * float64(time.Second)))
}

// Len is how many buckets are kept (tests).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// fullAfter is how long an empty bucket takes to refill.
func (l *Limiter) fullAfter() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

// sweep drops buckets that are full again, at most once per refill period
// (and at least once a minute), so a map of idle tenants does not grow.
func (l *Limiter) sweep(now time.Time) {
	every := min(l.fullAfter(), time.Minute)
	if now.Sub(l.lastSweep) < every {
		return
	}
	l.lastSweep = now
	full := l.fullAfter()
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
}

// evictOne makes room past the cap by dropping the longest-idle bucket of a
// small sample (its tenant gets a fresh, full bucket next time: lenient, never
// stricter than configured).
func (l *Limiter) evictOne() {
	var oldK string
	var oldT time.Time
	i := 0
	for k, b := range l.buckets {
		if i == 0 || b.at.Before(oldT) {
			oldK, oldT = k, b.at
		}
		if i++; i >= 16 {
			break
		}
	}
	delete(l.buckets, oldK)
}

// RetryAfterSeconds renders d for a Retry-After header: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	return max(s, 1)
}
