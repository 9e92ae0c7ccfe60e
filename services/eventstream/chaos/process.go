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

// process is one service of the system as a built binary (a delivery
// worker, ingest, the config API): started with its environment, its
// stdout and stderr appended to one log file across restarts, stopped by
// signal. The suite decides when it runs; a process that exits without
// being told to is a finding (crashed).
type process struct {
	name string   // for logs and errors: "worker 1", "ingest"
	bin  string   // the built binary
	env  []string // KEY=value, over the suite's own environment
	log  string   // path of the log file

	mu  sync.Mutex
	cur *running // nil while stopped
}

// running is one start of a process.
type running struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned; err is set then
	err    error
}

// start starts the process; a no-op when it is running.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return nil
	}
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the log of %s: %w", p.name, err)
	}
	// Not tied to a context: the suite stops its processes itself, by signal.
	cmd := exec.CommandContext(context.Background(), p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// A service must not outlive the suite (a killed test binary).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(lf, "\n=== chaos: starting %s (%s) at %s\n", p.name, p.bin, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	r := &running{cmd: cmd, exited: make(chan struct{})}
	go func() { r.err = cmd.Wait(); lf.Close(); close(r.exited) }()
	p.cur = r
	return nil
}

// current is the running start, or nil.
func (p *process) current() *running {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// signal sends sig and waits for the process to exit: SIGKILL at once,
// SIGTERM within grace (then it is killed, and that is an error: every
// service drains within its shutdown timeout). A SIGTERM it answers with a
// non-zero exit status is an error too. A no-op when it is not running.
func (p *process) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	r := p.cur
	p.cur = nil
	p.mu.Unlock()
	if r == nil {
		return nil
	}
	_ = r.cmd.Process.Signal(sig)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-r.exited:
	case <-timer.C:
		_ = r.cmd.Process.Kill()
		<-r.exited
		return fmt.Errorf("%s did not exit within %s of %s; killed", p.name, grace, sig)
	}
	if sig == syscall.SIGTERM && r.err != nil {
		return fmt.Errorf("%s stopped with SIGTERM: %w (see %s)", p.name, r.err, filepath.Base(p.log))
	}
	return nil
}

// crashed reports a process that exited without being told to (and marks
// it stopped, so start runs it again); nil while it runs or is stopped.
func (p *process) crashed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil
	}
	select {
	case <-p.cur.exited:
	default:
		return nil
	}
	err := p.cur.err
	if err == nil {
		err = errors.New("exit status 0")
	}
	p.cur = nil
	return fmt.Errorf("%s exited on its own: %w", p.name, err)
}
