package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// calmTail is how long publishing goes on after the last fault.
const calmTail = 10 * time.Second

// FaultRecord is one injected fault and how the system came back from it.
type FaultRecord struct {
	Kind     string
	Name     string
	Injected time.Time
	Healed   time.Time
	Err      string // an Inject or Heal that failed
	// Recovery is the time from Heal until every affected integration
	// delivered again (among those that had anything left to deliver); -1
	// when none delivered afterwards.
	Recovery time.Duration
}

// Interruption is an integration the system stopped by itself during the
// run; the suite, as an operator would, starts it again.
type Interruption struct {
	Integration string
	At          time.Time
	Reason      string
}

// IntegrationResult is one integration's verdict.
type IntegrationResult struct {
	Key, Target string
	Filter      string
	Expected    int // accepted events passing the filter
	Delivered   int // distinct expected-or-not events received
	Lost        int // expected, never received
	Duplicates  int // receptions beyond the first
	NoAttempt   int // received, but no SUCCESS row in publish_attempts
	SuccessRows int
	FailureRows int
	Interrupted int
	LostSample  []string
	// NoAttemptSample names a few deliveries without a SUCCESS row, with
	// when they arrived relative to the faults.
	NoAttemptSample []string
}

// Result is what a run found.
type Result struct {
	Seed           uint64
	Duration       time.Duration
	Workers        int
	Dir            string
	Schedule       []Step
	Started        time.Time // when the fault phase began
	Accepted       int       // events ingest acknowledged
	PublishRetries int64
	Faults         []FaultRecord
	Integrations   []IntegrationResult
	Interruptions  []Interruption
	RecoveredIn    time.Duration // from the end of publishing to the last expected delivery (or the deadline)
	Recovered      bool
	CrossTenant    int
	BadSignature   int
	Unknown        int
	Problems       []string
	// HarnessErrors are what the suite could not do or check, and services
	// that crashed or did not stop cleanly.
	HarnessErrors []string
	// Complete is set when the run got to its verdict.
	Complete        bool
	DroppedComplete int
	S3Refused       int
}

// Lost is the number of expected deliveries that never happened.
func (r *Result) Lost() int {
	n := 0
	for _, in := range r.Integrations {
		n += in.Lost
	}
	return n
}

// MissingAttempts is the number of deliveries without a SUCCESS attempt row.
func (r *Result) MissingAttempts() int {
	n := 0
	for _, in := range r.Integrations {
		n += in.NoAttempt
	}
	return n
}

// OK reports a run without loss: every expected event delivered with its
// attempt row, nothing crossed tenants, every signature valid, no service
// exited without being told to (a crash is a defect even when nothing was
// lost), and every service stopped cleanly on SIGTERM at the end.
func (r *Result) OK() bool {
	return r.Complete && r.Lost() == 0 && r.MissingAttempts() == 0 && r.CrossTenant == 0 && r.BadSignature == 0 &&
		r.Unknown == 0 && len(r.HarnessErrors) == 0
}

// Run runs the suite once: it starts the system, publishes and injects the
// schedule's faults for o.Duration, waits up to o.Recovery for the system to
// catch up, checks every integration and returns the result. An error means
// the suite itself could not run (the result may still be partial).
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	r := &run{o: o, ledger: newLedger(), start: time.Now(), log: o.Log}
	if r.log == nil {
		r.log = io.Discard
	}
	dir, temp := o.Dir, o.Dir == ""
	if temp {
		var err error
		if dir, err = os.MkdirTemp("", "eventstream-chaos-"); err != nil {
			return nil, err
		}
	} else {
		// A run starts from nothing: an old catalog or log would only confuse
		// the ledger.
		if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("chaos: %s is not empty (a run needs a new directory)", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	r.res = &Result{Seed: o.Seed, Duration: o.Duration, Workers: o.Workers, Dir: dir,
		Schedule: NewSchedule(o.Seed, o.Duration, o.weights())}
	r.logf("seed %d, %s of faults, %d workers, data and logs in %s", o.Seed, o.Duration, o.Workers, dir)
	r.logf("schedule:\n%s", FormatSchedule(r.res.Schedule))

	sys, err := startSystem(ctx, o, dir, r.ledger, r.logf)
	if err != nil {
		return r.res, err
	}
	r.sys = sys
	defer func() {
		for _, err := range sys.close() {
			r.res.HarnessErrors = append(r.res.HarnessErrors, err.Error())
		}
		if temp && r.res.OK() && len(r.res.HarnessErrors) == 0 {
			_ = os.RemoveAll(dir)
		}
	}()
	r.logf("system up: ingest %s, config API %s, broker %s, s3 %s", sys.ingestURL, sys.configURL, sys.broker.addr, sys.s3.URL())

	// The operator restarts integrations the system stopped by itself,
	// from now until the verdict.
	opCtx, stopOperator := context.WithCancel(ctx)
	var opWG sync.WaitGroup
	var interruptMu sync.Mutex
	opWG.Go(func() {
		operate(opCtx, sys, func(in Interruption) {
			interruptMu.Lock()
			r.res.Interruptions = append(r.res.Interruptions, in)
			interruptMu.Unlock()
			r.logf("interrupted: %s: %s (started again)", in.Integration, in.Reason)
		})
	})
	defer func() { stopOperator(); opWG.Wait() }()

	if err := r.publishAndInject(ctx); err != nil {
		return r.res, err
	}
	r.recover(ctx)
	stopOperator()
	opWG.Wait()
	r.judge(ctx)
	r.res.Complete = true
	return r.res, nil
}

// run is one Run's state, shared by its phases.
type run struct {
	o      Options
	sys    *system
	ledger *Ledger
	res    *Result
	start  time.Time
	log    io.Writer
	logMu  sync.Mutex
	// affects are the integrations each fault (by index) disturbed.
	affects map[int][]*integration
	s3cache map[string]s3File
}

func (r *run) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.log, "chaos %6.1fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// publishAndInject publishes for every tenant while it injects the
// schedule's faults one after the other, then for a calm tail.
func (r *run) publishAndInject(ctx context.Context) error {
	sys, o := r.sys, r.o
	pubCtx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	var pubs []*publisher
	var pubWG sync.WaitGroup
	runID := randomHex(4)
	for i, t := range sys.tenants {
		p := &publisher{sys: sys, ledger: r.ledger, tenant: t, run: runID,
			rng:     rand.New(rand.NewPCG(o.Seed, uint64(1000+i))),
			perTick: max(1, o.EventsPerSecond/4/len(sys.tenants)),
			big:     o.BigEvents && i == len(sys.tenants)-1,
			burst:   make(chan struct{}, 1), workers: o.Workers}
		if p.big {
			// s3-drop-complete asks for a burst: multipart uploads (the
			// only ones with a CompleteMultipartUpload) need files > 5 MiB.
			sys.s3.onDropArmed = func() {
				select {
				case p.burst <- struct{}{}:
				default:
				}
			}
		}
		pubs = append(pubs, p)
		pubWG.Go(func() { p.loop(pubCtx) })
	}

	// Faults start once every webhook integration delivers: a worker that
	// never came up is not a fault's doing.
	if err := waitUntil(ctx, 2*time.Minute, func() bool {
		for _, in := range sys.integs {
			if u, _ := r.ledger.delivered(in); in.receiver != nil && u == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("waiting for the first deliveries: %w", err)
	}
	r.logf("every webhook integration delivers; faults begin")

	phase := time.Now()
	r.res.Started = phase
	r.affects = map[int][]*integration{}
	for _, step := range r.res.Schedule {
		if !sleepUntil(ctx, phase.Add(step.At)) {
			break
		}
		r.inject(ctx, step)
	}
	// Publishing goes on for a calm tail after the faults, so the last
	// fault's recovery shows in new deliveries too.
	sleepUntil(ctx, phase.Add(o.Duration+calmTail))
	stopPublishing()
	pubWG.Wait()
	for _, p := range pubs {
		r.res.PublishRetries += p.retries.Load()
	}
	r.res.Accepted = r.ledger.acceptedCount()
	r.logf("faults over: %d faults, %d events accepted; waiting up to %s for recovery", len(r.res.Faults), r.res.Accepted, o.Recovery)
	return nil
}

// inject injects one step's fault, holds it, heals it, and starts again any
// worker that died meanwhile on its own (a finding, reported).
func (r *run) inject(ctx context.Context, step Step) {
	f := r.sys.fault(step)
	r.logf("inject %s (hold %s)", f.Name(), step.Hold.Round(100*time.Millisecond))
	rec := FaultRecord{Kind: f.Kind(), Name: f.Name(), Injected: time.Now()}
	if err := f.Inject(ctx); err != nil {
		rec.Err = "inject: " + err.Error()
	}
	sleepUntil(ctx, rec.Injected.Add(step.Hold))
	if err := f.Heal(context.WithoutCancel(ctx)); err != nil {
		rec.Err += " heal: " + err.Error()
	}
	rec.Healed = time.Now()
	r.logf("healed %s", f.Name())
	if rec.Err != "" {
		r.logf("fault %s: %s", f.Name(), rec.Err)
	}
	r.res.Faults = append(r.res.Faults, rec)
	r.affects[len(r.res.Faults)-1] = f.Affects()
	r.restartCrashed(ctx)
}

// restartCrashed records every service that exited on its own (a finding)
// and starts it again: workers at once, ingest and the config API on their
// address, waited for until ready.
func (r *run) restartCrashed(ctx context.Context) {
	for _, err := range r.sys.workers.crashed() {
		r.res.HarnessErrors = append(r.res.HarnessErrors, err.Error())
		r.logf("%v; starting it again", err)
	}
	for i := range r.o.Workers {
		_ = r.sys.workers.start(i) // no-op for a running worker
	}
	for _, a := range r.sys.apis() {
		err := a.crashed()
		if err == nil {
			continue
		}
		r.res.HarnessErrors = append(r.res.HarnessErrors, err.Error())
		r.logf("%v; starting it again", err)
		if err := a.start(); err != nil {
			r.res.HarnessErrors = append(r.res.HarnessErrors, err.Error())
		} else if err := a.waitReady(ctx, readyTimeout); err != nil {
			r.res.HarnessErrors = append(r.res.HarnessErrors, err.Error())
		}
	}
}

// recover waits until every expected event is delivered (webhook receivers,
// S3 objects read back) and has its attempt row, or o.Recovery passes.
func (r *run) recover(ctx context.Context) {
	sys, ledger := r.sys, r.ledger
	r.s3cache = map[string]s3File{}
	stopped := time.Now()
	nextNote := stopped.Add(15 * time.Second)
	err := waitUntil(ctx, r.o.Recovery, func() bool {
		if time.Now().After(nextNote) {
			nextNote = time.Now().Add(15 * time.Second)
			var waiting []string
			for _, in := range sys.integs {
				if n := len(ledger.missing(in)); n > 0 && in.Target == catalog.TargetWebhook {
					waiting = append(waiting, fmt.Sprintf("%s %d", in.key(), n))
				}
			}
			r.logf("still waiting for webhook deliveries: %s", strings.Join(waiting, ", "))
		}
		for _, in := range sys.integs {
			if in.Target == catalog.TargetS3 {
				lines, _ := readBucket(sys.s3.dir, in.bucket, r.s3cache)
				ids := map[string]bool{}
				for _, l := range lines {
					ids[l.eventID] = true
				}
				if ledger.missingFrom(in, ids) > 0 {
					return false
				}
			} else if len(ledger.missing(in)) > 0 {
				return false
			}
		}
		return true
	})
	r.res.Recovered = err == nil
	r.res.RecoveredIn = time.Since(stopped)
	if err == nil {
		// Deliveries are complete; attempt rows follow within the writer's
		// batching interval.
		_ = waitUntil(ctx, 30*time.Second, func() bool {
			missing, _ := missingAttemptRows(ctx, sys, ledger)
			return missing == 0
		})
	}
	r.logf("recovery wait over: deliveries complete %v, %s after publishing stopped", r.res.Recovered, r.res.RecoveredIn.Round(100*time.Millisecond))
}

// judge reads back the S3 objects and the attempt rows and fills in the
// result per integration.
// rowsSettle bounds the wait for the attempt rows of deliveries the judge
// saw: the services are still running, and a row is written just after its
// delivery (a webhook's 2xx, an S3 object's completion), in the attempt
// writer's next batch.
const rowsSettle = 15 * time.Second

// settledAttemptRows reads the attempt rows until every delivery seen so far
// has its SUCCESS row, or rowsSettle passes (the judge then counts what is
// still missing).
func (r *run) settledAttemptRows(ctx context.Context) (map[string]map[string]rowCounts, error) {
	deadline := time.Now().Add(rowsSettle)
	for {
		rows, err := attemptRows(ctx, r.sys)
		if err != nil {
			return rows, err
		}
		waiting := 0
		for _, in := range r.sys.integs {
			for _, id := range r.ledger.deliveredIDs(in) {
				if rows[in.key()][id].success == 0 {
					waiting++
				}
			}
		}
		if waiting == 0 || time.Now().After(deadline) {
			return rows, nil
		}
		r.logf("waiting for the attempt rows of %d deliveries", waiting)
		select {
		case <-ctx.Done():
			return rows, nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (r *run) judge(ctx context.Context) {
	sys, ledger, res := r.sys, r.ledger, r.res
	for _, in := range sys.integs {
		if in.Target == catalog.TargetS3 {
			lines, err := readBucket(sys.s3.dir, in.bucket, r.s3cache)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				res.HarnessErrors = append(res.HarnessErrors, fmt.Sprintf("reading bucket %s: %v", in.bucket, err))
			}
			ledger.recordS3(in, lines)
		}
	}
	rows, err := r.settledAttemptRows(ctx)
	if err != nil {
		res.HarnessErrors = append(res.HarnessErrors, fmt.Sprintf("reading publish_attempts: %v", err))
	}
	for _, in := range sys.integs {
		ir := IntegrationResult{Key: in.key(), Target: in.Target, Filter: filterText(in)}
		ir.Expected = len(ledger.expected(in))
		missing := ledger.missing(in)
		ir.Lost = len(missing)
		if len(missing) > 5 {
			missing = missing[:5]
		}
		ir.LostSample = missing
		ir.Delivered, ir.Duplicates = ledger.delivered(in)
		for _, id := range ledger.deliveredIDs(in) {
			if rows[in.key()][id].success == 0 {
				ir.NoAttempt++
				if len(ir.NoAttemptSample) < 5 {
					ir.NoAttemptSample = append(ir.NoAttemptSample,
						fmt.Sprintf("%s (%s)", id, whenInRun(ledger.receivedAt(in, id), res.Started, res.Faults)))
				}
			}
		}
		for _, row := range rows[in.key()] {
			ir.SuccessRows += row.success
			ir.FailureRows += row.failure
		}
		for _, x := range res.Interruptions {
			if x.Integration == in.key() {
				ir.Interrupted++
			}
		}
		res.Integrations = append(res.Integrations, ir)
	}
	for i := range res.Faults {
		res.Faults[i].Recovery = recovery(sys, ledger, r.affects[i], res.Faults[i].Healed)
	}
	ledger.mu.Lock()
	res.CrossTenant, res.BadSignature, res.Unknown = ledger.crossTenant, ledger.badSignature, ledger.unknown
	res.Problems = append(res.Problems, ledger.problems...)
	ledger.mu.Unlock()
	sys.s3.mu.Lock()
	res.DroppedComplete, res.S3Refused = sys.s3.dropped, sys.s3.refused
	sys.s3.mu.Unlock()
}

// whenInRun places t among the faults: "+12.3s, during worker-sigkill
// worker 1" or "+15.0s, 2.1s after postgres-restart healed".
func whenInRun(t, phase time.Time, faults []FaultRecord) string {
	if t.IsZero() {
		return "time unknown"
	}
	at := fmt.Sprintf("delivered at +%.1fs", t.Sub(phase).Seconds())
	for i := len(faults) - 1; i >= 0; i-- {
		f := faults[i]
		if f.Injected.After(t) {
			continue
		}
		if !t.After(f.Healed) {
			return at + ", during " + f.Name
		}
		return fmt.Sprintf("%s, %.1fs after %s healed", at, t.Sub(f.Healed).Seconds(), f.Name)
	}
	return at + ", before the first fault"
}
