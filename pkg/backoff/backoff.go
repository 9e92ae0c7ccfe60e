// Package backoff is the one retry-wait policy of Event Stream: exponential
// growth from a base, capped, with "equal jitter" (a random wait between half
// and all of the step), so many integrations failing together do not retry in
// step and no retry comes back at once. Webhook retries, S3 retries and
// catalog retries all wait this way.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy shapes the waits: retry n (0-based) waits a random duration in
// [d/2, d] where d = min(Max, Base·2^n).
type Policy struct {
	Base time.Duration
	Max  time.Duration
}

// Delay returns the wait before retry n (0-based).
func (p Policy) Delay(n int) time.Duration {
	d := p.Max
	if n >= 0 && n < 62 && p.Base<<n > 0 && p.Base<<n < p.Max {
		d = p.Base << n
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Wait sleeps Delay(n), returning ctx's error if ctx ends first.
func (p Policy) Wait(ctx context.Context, n int) error {
	t := time.NewTimer(p.Delay(n))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Catalog is the policy for retrying catalog writes while Postgres is slow or
// down: quick at first, then every few seconds.
var Catalog = Policy{Base: 50 * time.Millisecond, Max: 5 * time.Second}
