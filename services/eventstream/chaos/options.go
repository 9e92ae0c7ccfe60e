package chaos

import (
	"errors"
	"io"
	"time"
)

// Options configure a run. DefaultOptions fills every field.
type Options struct {
	// Seed draws the fault schedule, the events and the endpoints' choices.
	Seed uint64
	// Duration is how long faults are injected (and events published).
	Duration time.Duration
	// Recovery bounds the wait, after the last fault is healed, for every
	// expected delivery and attempt row; what is still missing then is lost.
	Recovery time.Duration
	// Workers is how many delivery worker processes serve the pool (>= 2,
	// so partitions move between them when one dies).
	Workers int
	// Binaries are the built delivery worker, ingest and config API; the
	// empty ones are built with `go build` into Dir.
	Binaries Binaries
	// Dir holds the run's data and logs and must be new or empty; empty uses
	// a temporary directory, removed after a passing run.
	Dir string
	// EventsPerSecond is the steady publishing rate over all tenants.
	EventsPerSecond int
	// Hostile keeps webhook-hostile (NUL, invalid UTF-8, a character cut at
	// the 1 KiB cap, a huge body) in the schedule.
	Hostile bool
	// BigEvents publishes bursts of ~240 KiB events to one tenant (every
	// minute, and when s3-drop-complete is injected), so its S3 files pass
	// the 5 MiB part size and go through multipart uploads.
	BigEvents bool
	// Weights override DefaultWeights (nil: the defaults).
	Weights Weights
	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

// DefaultOptions are the `make chaos` defaults: two minutes of faults.
func DefaultOptions() Options {
	return Options{
		Seed:            1,
		Duration:        2 * time.Minute,
		Recovery:        3 * time.Minute,
		Workers:         2,
		EventsPerSecond: 30,
		Hostile:         true,
		BigEvents:       true,
	}
}

func (o Options) validate() error {
	switch {
	case o.Duration <= 0:
		return errors.New("chaos: duration must be positive")
	case o.Recovery <= 0:
		return errors.New("chaos: recovery must be positive")
	case o.Workers < 2:
		return errors.New("chaos: at least 2 workers (partitions must have somewhere to move)")
	case o.EventsPerSecond < 1:
		return errors.New("chaos: events per second must be at least 1")
	}
	return nil
}

func (o Options) weights() Weights {
	w := o.Weights
	if w == nil {
		w = DefaultWeights()
	}
	if !o.Hostile {
		c := Weights{}
		for k, v := range w {
			c[k] = v
		}
		c[KindWebhookHostile] = 0
		w = c
	}
	return w
}
