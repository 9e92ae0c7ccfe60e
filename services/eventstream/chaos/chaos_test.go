package chaos_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/services/eventstream/chaos"
)

// TestChaos is the slice of the fault-injection suite as a Go test: 50 s of
// faults on a fixed seed, then the recovery check. The services run as
// binaries it builds (go build) into the run's temporary directory.
// CHAOS_SEED, CHAOS_DURATION and CHAOS_FAULTS override the seed, the length
// and the fault weights. make test skips it in the race tests and runs the
// same slice through make chaos instead (the eventstream CLI, with the
// binaries make built), so CI runs it once.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection takes about 90 s; skipped with -short")
	}
	o := chaos.DefaultOptions()
	// 50 s of seed 137 draw a broker restart, a SIGKILL, a reset endpoint, a
	// Postgres restart, hostile bodies, a SIGTERM and S3 errors
	// (`eventstream chaos --plan --seed 137 --duration 50s`).
	o.Seed = 137
	o.Duration = 50 * time.Second
	o.Recovery = 2 * time.Minute
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
		o.Seed = n
	}
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CHAOS_DURATION: %v", err)
		}
		o.Duration = d
	}
	if v := os.Getenv("CHAOS_FAULTS"); v != "" {
		w, err := chaos.ParseWeights(v)
		if err != nil {
			t.Fatalf("CHAOS_FAULTS: %v", err)
		}
		o.Weights = w
	}
	o.Log = testWriter{t}
	t.Logf("chaos seed %d (rerun with CHAOS_SEED=%d)", o.Seed, o.Seed)
	res, err := chaos.Run(context.Background(), o)
	if res != nil {
		var b strings.Builder
		res.Report(&b)
		t.Log(b.String())
	}
	if err != nil {
		t.Fatalf("running the suite: %v", err)
	}
	if !res.OK() {
		t.Fatalf("events lost or misdelivered under faults (seed %d); see the table above", o.Seed)
	}
}

// testWriter sends the suite's lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestScheduleIsSeeded(t *testing.T) {
	a := chaos.NewSchedule(42, 5*time.Minute, chaos.DefaultWeights())
	b := chaos.NewSchedule(42, 5*time.Minute, chaos.DefaultWeights())
	c := chaos.NewSchedule(43, 5*time.Minute, chaos.DefaultWeights())
	if chaos.FormatSchedule(a) != chaos.FormatSchedule(b) {
		t.Fatal("the same seed gave two schedules")
	}
	if chaos.FormatSchedule(a) == chaos.FormatSchedule(c) {
		t.Fatal("two seeds gave the same schedule")
	}
	kinds := map[string]bool{}
	for _, s := range a {
		kinds[s.Kind] = true
		if s.At+s.Hold > 5*time.Minute {
			t.Errorf("step %v ends after the run", s)
		}
	}
	if len(kinds) < 8 {
		t.Errorf("five minutes drew only %d kinds of fault: %v", len(kinds), kinds)
	}
}
