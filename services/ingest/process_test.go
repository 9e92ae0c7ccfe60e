package ingest_test

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"
)

// The ingest process (ingest.Run, what cmd/ingest runs) serves /healthz,
// /readyz and /metrics on INGEST_ADDR with its telemetry set up, and exits 0
// on SIGTERM.
func TestProcessServesProbesAndMetrics(t *testing.T) {
	_, db := testenv.NewStore(t)
	kafka := testenv.NewKafka(t)
	addr := testenv.FreeAddr(t)
	p := testenv.StartProcess(t, "INGEST_ADDR="+addr, "DATABASE_URL="+db.URL,
		"KAFKA_BROKERS="+strings.Join(kafka.ListenAddrs(), ","), "AUTH_HS256_SECRET="+secret)
	base := "http://" + addr
	testenv.WaitFor(t, 30*time.Second, "ingest ready", func() bool { code, _ := testenv.Get(base + "/readyz"); return code == http.StatusOK })
	if code, _ := testenv.Get(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	code, body := testenv.Get(base + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	// The probes above went through the API middleware: its request
	// histogram is exported, next to the Go runtime's metrics.
	for _, want := range []string{"go_goroutines", `http_server_request_duration_seconds_count{`, `http_route="/readyz"`} {
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
