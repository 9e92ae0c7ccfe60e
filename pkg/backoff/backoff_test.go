package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayGrowsWithinHalfAndWholeStepAndCaps(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n, step := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		step *= time.Millisecond
		if n >= 4 {
			step = time.Second
		}
		for range 200 {
			d := p.Delay(n)
			if d < step/2 || d > step {
				t.Fatalf("retry %d waited %v, want within [%v, %v]", n, d, step/2, step)
			}
		}
	}
	// Huge retry counts neither overflow nor exceed the cap.
	for _, n := range []int{62, 63, 1000, -1} {
		if d := p.Delay(n); d < p.Max/2 || d > p.Max {
			t.Fatalf("retry %d waited %v, want within [%v, %v]", n, d, p.Max/2, p.Max)
		}
	}
	if d := (Policy{}).Delay(3); d != 0 {
		t.Fatalf("zero policy waited %v", d)
	}
}

func TestDelayIsJittered(t *testing.T) {
	p := Policy{Base: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[p.Delay(3)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 draws gave only %d distinct waits: not jittered", len(seen))
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Policy{Base: time.Hour, Max: time.Hour}).Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled ctx returned %v", err)
	}
}
