package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// workers are the delivery worker processes: replicas of one pool, so each
// integration's consumer group spreads its partitions over them.
type workers struct {
	bin  string
	env  []string
	logs string // directory of the per-worker logs

	mu    sync.Mutex
	procs []*workerProc // nil entries are stopped workers
}

type workerProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func newWorkers(bin string, env []string, n int, logs string) *workers {
	return &workers{bin: bin, env: env, logs: logs, procs: make([]*workerProc, n)}
}

// start starts worker i (its log is appended to, across restarts).
func (w *workers) start(i int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.procs[i] != nil {
		return nil
	}
	lf, err := os.OpenFile(filepath.Join(w.logs, fmt.Sprintf("worker-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening worker log: %w", err)
	}
	// Not tied to a context: the suite stops workers itself, by signal.
	cmd := exec.CommandContext(context.Background(), w.bin)
	cmd.Env = append(os.Environ(), w.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// A worker must not outlive the suite (a killed test binary).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(lf, "\n=== chaos: starting worker %d at %s\n", i, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("starting worker %d: %w", i, err)
	}
	p := &workerProc{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.exited) }()
	w.procs[i] = p
	return nil
}

// signal sends sig to worker i and waits for it to exit: SIGKILL at once,
// SIGTERM within grace (then it is killed, and that is an error: a worker
// must drain within its DrainTimeout).
func (w *workers) signal(i int, sig syscall.Signal, grace time.Duration) error {
	w.mu.Lock()
	p := w.procs[i]
	w.procs[i] = nil
	w.mu.Unlock()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("worker %d did not exit within %s of %s; killed", i, grace, sig)
	}
}

// crashed returns workers that exited without being told to.
func (w *workers) crashed() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for i, p := range w.procs {
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			err := p.err
			if err == nil {
				err = errors.New("exit status 0")
			}
			errs = append(errs, fmt.Errorf("worker %d exited on its own: %w", i, err))
			w.procs[i] = nil
		default:
		}
	}
	return errs
}

func (w *workers) stopAll() {
	var errs []error
	for i := range w.procs {
		errs = append(errs, w.signal(i, syscall.SIGTERM, 20*time.Second))
	}
	_ = errors.Join(errs...)
}
