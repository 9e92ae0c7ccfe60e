package chaos

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// workers are the delivery worker processes: replicas of one pool, so each
// integration's consumer group spreads its partitions over them. Worker i
// logs to worker-i.log.
type workers struct {
	procs []*process
}

func newWorkers(bin string, env []string, n int, logs string) *workers {
	w := &workers{}
	for i := range n {
		w.procs = append(w.procs, &process{name: fmt.Sprintf("worker %d", i), bin: bin, env: env,
			log: filepath.Join(logs, fmt.Sprintf("worker-%d.log", i))})
	}
	return w
}

// start starts worker i; a no-op when it runs.
func (w *workers) start(i int) error { return w.procs[i].start() }

// signal sends sig to worker i and waits for it to exit (see process.signal).
func (w *workers) signal(i int, sig syscall.Signal, grace time.Duration) error {
	return w.procs[i].signal(sig, grace)
}

// crashed returns workers that exited without being told to.
func (w *workers) crashed() []error {
	var errs []error
	for _, p := range w.procs {
		if err := p.crashed(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// stopAll stops every worker with SIGTERM (a drain).
func (w *workers) stopAll() error {
	var errs []error
	for i := range w.procs {
		errs = append(errs, w.signal(i, syscall.SIGTERM, 20*time.Second))
	}
	return errors.Join(errs...)
}
