package s3sink_test

import (
	"os"
	"testing"

	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(runWorkerProcess())
	}
	testenv.Main(m)
}
