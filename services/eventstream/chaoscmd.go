package eventstream

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/eventstream/eventstream/services/eventstream/chaos"
)

// RunChaos is `eventstream chaos`: one run of the fault-injection suite
// (package chaos), its table on stdout, an error when anything was lost.
func RunChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := chaos.DefaultOptions()
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the fault schedule, the events and the endpoints' choices (0: a random one)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long faults are injected while events are published")
	fs.DurationVar(&o.Recovery, "recovery", o.Recovery, "how long to wait after the last fault for every delivery")
	fs.IntVar(&o.Workers, "workers", o.Workers, "delivery worker processes (at least 2)")
	fs.StringVar(&o.Binaries.Delivery, "delivery-bin", "", "the built cmd/delivery binary (default: go build it)")
	fs.StringVar(&o.Binaries.Ingest, "ingest-bin", "", "the built cmd/ingest binary (default: go build it)")
	fs.StringVar(&o.Binaries.ConfigAPI, "configapi-bin", "", "the built cmd/configapi binary (default: go build it)")
	fs.StringVar(&o.Dir, "dir", "", "data and logs of the run, a new directory (default: a temporary one, removed when the run passes)")
	fs.IntVar(&o.EventsPerSecond, "rate", o.EventsPerSecond, "events published per second over all tenants")
	fs.BoolVar(&o.Hostile, "hostile", o.Hostile, "include hostile webhook response bodies in the schedule")
	fs.BoolVar(&o.BigEvents, "big-events", o.BigEvents, "publish bursts of ~240 KiB events (multipart S3 files)")
	faults := fs.String("faults", "", "fault kinds to draw, as kind=weight,... (default: every kind; see package chaos)")
	plan := fs.Bool("plan", false, "print the fault schedule of this seed and duration, run nothing")
	quiet := fs.Bool("quiet", false, "print only the table, not the progress")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: eventstream chaos [flags]")
		return errUsage
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64N(1_000_000) + 1 // short enough to type back
	}
	if *faults != "" {
		w, err := chaos.ParseWeights(*faults)
		if err != nil {
			return err
		}
		o.Weights = w
	}
	if *plan {
		w := o.Weights
		if w == nil {
			w = chaos.DefaultWeights()
		}
		if !o.Hostile {
			w[chaos.KindWebhookHostile] = 0
		}
		fmt.Fprintf(stdout, "seed %d, %s of faults:\n%s", o.Seed, o.Duration, chaos.FormatSchedule(chaos.NewSchedule(o.Seed, o.Duration, w)))
		return nil
	}
	if !*quiet {
		o.Log = stderr
	}
	fmt.Fprintf(stdout, "chaos: seed %d, %s of faults (rerun with --seed %d)\n", o.Seed, o.Duration, o.Seed)
	start := time.Now()
	res, err := chaos.Run(ctx, o)
	if res != nil {
		res.Report(stdout)
		fmt.Fprintf(stdout, "run took %s\n", time.Since(start).Round(time.Second))
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("events lost or misdelivered under faults (seed %d)", o.Seed)
	}
	return nil
}
