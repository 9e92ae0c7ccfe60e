package configapi

import (
	"encoding/hex"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"
)

// The configapi process (Run, what cmd/configapi runs) sets up telemetry
// and serves /healthz, /readyz and /metrics on CONFIGAPI_ADDR, and exits 0
// on SIGTERM.
func TestProcessServesProbesAndMetrics(t *testing.T) {
	_, db := testenv.NewStore(t)
	addr := testenv.FreeAddr(t)
	p := testenv.StartProcess(t, "CONFIGAPI_ADDR="+addr, "DATABASE_URL="+db.URL,
		"SECRETS_KEY="+hex.EncodeToString(testenv.TestKey), "AUTH_HS256_SECRET=configapi-process-test-secret-0123456789")
	base := "http://" + addr
	testenv.WaitFor(t, 30*time.Second, "configapi ready", func() bool { code, _ := testenv.Get(base + "/readyz"); return code == http.StatusOK })
	if code, _ := testenv.Get(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	code, body := testenv.Get(base + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{"go_goroutines", `http_server_request_duration_seconds_count{`, `service_component="configapi"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
