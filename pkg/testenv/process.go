package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processEnv marks a test binary re-executed by StartProcess.
const processEnv = "EVENTSTREAM_TEST_PROCESS"

// RunAsProcess is called first in a TestMain: when StartProcess re-executed
// the test binary, it runs run as the process's main (SIGTERM and SIGINT
// cancel its context), like the service's cmd does, and exits; otherwise it
// returns at once.
func RunAsProcess(run func(ctx context.Context, getenv func(string) string) error) {
	if os.Getenv(processEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Process is a service process started by StartProcess.
type Process struct {
	Cmd *exec.Cmd
	out SyncBuffer
}

// Output is what the process wrote so far (stdout and stderr).
func (p *Process) Output() string { return p.out.String() }

// Stop sends SIGTERM and fails the test unless the process then exits 0.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// CheckProbes waits (up to 30 s) until the service at base answers /readyz
// with 200, then checks /healthz answers 200 and /metrics holds every
// string in want.
func CheckProbes(t testing.TB, base string, want ...string) {
	t.Helper()
	WaitFor(t, 30*time.Second, base+" ready", func() bool { code, _ := Get(base + "/readyz"); return code == http.StatusOK })
	if code, _ := Get(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	code, body := Get(base + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics has no %s", w)
		}
	}
}

// StartProcess re-executes the test binary as a service process (see
// RunAsProcess) with only env as its environment (plus PATH and HOME), so
// it sees exactly the variables a deployment would set. It is killed when
// the test ends, and its output is logged if the test failed.
func StartProcess(t testing.TB, env ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.CommandContext(context.Background(), os.Args[0], "-test.run=^$")}
	p.Cmd.Stdout, p.Cmd.Stderr = &p.out, &p.out
	p.Cmd.Env = append([]string{processEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			_ = p.Cmd.Process.Kill()
			_ = p.Cmd.Wait()
		}
		if t.Failed() {
			t.Logf("process %d output:\n%s", p.Cmd.Process.Pid, p.Output())
		}
	})
	return p
}

// FreeAddr returns a loopback address whose port nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Get fetches url and returns the status and body; status 0 (and the error
// as body) when nothing answered.
func Get(url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
