package s3sink_test

import (
	"testing"

	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
