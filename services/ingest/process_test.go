package ingest_test

import (
	"strings"
	"testing"

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
	// The readiness probes go through the API middleware: its request
	// histogram is exported, next to the Go runtime's metrics.
	testenv.CheckProbes(t, "http://"+addr, "go_goroutines", `http_server_request_duration_seconds_count{`, `http_route="/readyz"`)
	p.Stop(t)
}
