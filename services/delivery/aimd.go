package delivery

import (
	"context"
	"sync"
	"time"
)

// signal is what one response tells the concurrency limiter.
type signal int

const (
	// healthy: a 2xx within the slow threshold; the limit may grow.
	healthy signal = iota
	// neutral: the endpoint answered but says nothing about its capacity
	// (slow 2xx, 400, other 4xx, 3xx).
	neutral
	// congested: 429, 5xx, timeout or connection error; the limit halves.
	congested
)

// limiter is an adaptive (AIMD) concurrency limit for one endpoint, in the
// manner of TCP congestion control: it doubles per round trip while no
// congestion was ever seen (slow start), then grows by one per limit's worth
// of healthy responses, and halves on congestion, at most once per round
// trip (responses to requests sent before the last decrease do not count
// again). A Retry-After pauses every new request until it passes.
type limiter struct {
	mu       sync.Mutex
	limit    float64
	min, max float64
	ssthresh float64
	inflight int
	// lastDecrease: congestion signals from requests started before it are
	// the same congestion event.
	lastDecrease time.Time
	pauseUntil   time.Time
	// wake is closed whenever a slot frees or the limit changes. It is made
	// only when someone waits (nil otherwise), so a release nobody waits
	// for allocates nothing.
	wake chan struct{}
}

// waitChan returns the channel the next release closes. l.mu is held.
func (l *limiter) waitChan() chan struct{} {
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake
}

func newLimiter(minimum, initial, maximum int) *limiter {
	return &limiter{
		limit: float64(initial), min: float64(minimum), max: float64(maximum),
		ssthresh: float64(maximum),
	}
}

// acquire waits for a slot (and for any Retry-After pause to pass) and
// returns when the request starts. It gives up when ctx ends or stop closes.
func (l *limiter) acquire(ctx context.Context, stop <-chan struct{}) (time.Time, error) {
	for {
		l.mu.Lock()
		now := time.Now()
		if wait := l.pauseUntil.Sub(now); wait > 0 {
			wake := l.waitChan()
			l.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-wake:
				t.Stop()
			case <-ctx.Done():
				t.Stop()
				return time.Time{}, ctx.Err()
			case <-stop:
				t.Stop()
				return time.Time{}, errSinkStopped
			}
			continue
		}
		if l.inflight < int(l.limit) {
			l.inflight++
			l.mu.Unlock()
			return now, nil
		}
		wake := l.waitChan()
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-stop:
			return time.Time{}, errSinkStopped
		}
	}
}

// release returns the slot of a request started at start and adapts the
// limit to what its response signalled.
func (l *limiter) release(start time.Time, s signal, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	now := time.Now()
	switch s {
	case healthy:
		if l.limit < l.ssthresh {
			l.limit++ // slow start: +1 per response doubles per round trip
		} else {
			l.limit += 1 / l.limit // congestion avoidance: +1 per round trip
		}
		l.limit = min(l.limit, l.max)
	case congested:
		if start.After(l.lastDecrease) {
			l.limit = max(l.min, l.limit/2)
			l.ssthresh = l.limit
			l.lastDecrease = now
		}
	}
	if retryAfter > 0 {
		if until := now.Add(retryAfter); until.After(l.pauseUntil) {
			l.pauseUntil = until
		}
	}
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

// current reports the limit (whole requests) and requests in flight.
func (l *limiter) current() (limit, inflight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit), l.inflight
}
