package configapi

import (
	"encoding/hex"
	"testing"

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
	testenv.CheckProbes(t, "http://"+addr, "go_goroutines", `http_server_request_duration_seconds_count{`, `service_component="configapi"`)
	p.Stop(t)
}
