package delivery

import (
	"context"
	"testing"
	"time"
)

// With the default configuration a healthy endpoint gets the maximum
// concurrency from the third round trip on: the ramp of a fresh integration
// costs a slow endpoint a small, fixed share of a burst
// (BenchmarkSlowEndpointLittlesLaw).
func TestDefaultRampReachesMaximumInTwoRoundTrips(t *testing.T) {
	cfg := Config{}.WithDefaults()
	l := newLimiter(cfg.MinConcurrency, cfg.InitialConcurrency, cfg.MaxConcurrency)
	ctx := context.Background()
	trips := 0
	for lim, _ := l.current(); lim < cfg.MaxConcurrency; lim, _ = l.current() {
		if trips++; trips > 10 {
			t.Fatal("the limit never reached the maximum")
		}
		// One round trip: as many requests as the limit allows start, then
		// all are answered 2xx, fast.
		starts := make([]time.Time, lim)
		for i := range starts {
			s, err := l.acquire(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			starts[i] = s
		}
		for _, s := range starts {
			l.release(s, healthy, 0)
		}
	}
	if trips > 2 {
		t.Fatalf("the limit reached %d after %d round trips from %d, want at most 2", cfg.MaxConcurrency, trips, cfg.InitialConcurrency)
	}
}
