package observability

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"
)

// The observability process (Run, what cmd/observability runs) sets up
// telemetry and serves /healthz, /readyz and /metrics on OBSERVABILITY_ADDR,
// and exits 0 on SIGTERM.
func TestProcessServesProbesAndMetrics(t *testing.T) {
	db := testenv.NewDB(t)
	addr := testenv.FreeAddr(t)
	p := testenv.StartProcess(t, "OBSERVABILITY_ADDR="+addr, "DATABASE_URL="+db.URL, "AUTH_HS256_SECRET="+testHS256Secret)
	testenv.CheckProbes(t, "http://"+addr, "go_goroutines", `http_server_request_duration_seconds_count{`, `service_component="observability"`)
	p.Stop(t)
}

// A misconfigured process exits non-zero at once, naming every bad or
// missing variable in one message (the database URL points nowhere: the
// process must not get as far as using it).
func TestProcessRejectsBadConfig(t *testing.T) {
	p := testenv.StartProcess(t, "OBSERVABILITY_ADDR="+testenv.FreeAddr(t), "DATABASE_URL=postgres://u:p@127.0.0.1:1/db",
		"OBSERVABILITY_TAIL_BUFFER=lots", "OBSERVABILITY_HEARTBEAT=-1s")
	// Bounded: a process that went on to serve would never exit by itself.
	timer := time.AfterFunc(30*time.Second, func() { _ = p.Cmd.Process.Kill() })
	err := p.Cmd.Wait()
	if !timer.Stop() {
		t.Fatal("the process did not exit within 30s")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("exit: %v, want a non-zero exit code", err)
	}
	for _, want := range []string{"OBSERVABILITY_TAIL_BUFFER", "OBSERVABILITY_HEARTBEAT", "AUTH_HS256_SECRET"} {
		if !strings.Contains(p.Output(), want) {
			t.Errorf("output does not name %s:\n%s", want, p.Output())
		}
	}
}
