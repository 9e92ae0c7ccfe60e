package testenv

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

var (
	kOnce    sync.Once
	kErr     error
	kBrokers []string
)

// KafkaBrokers returns seed brokers for tests: KAFKA_BROKERS when set, else an
// in-process kfake cluster shared by the test binary (started on first use,
// random loopback port). Tests keep apart by using their own topics and groups.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	kOnce.Do(func() {
		if b := os.Getenv("KAFKA_BROKERS"); b != "" {
			kBrokers = strings.Split(b, ",")
			return
		}
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(3))
		if err != nil {
			kErr = err
			return
		}
		kBrokers = c.ListenAddrs()
		onShutdown(c.Close)
	})
	if kErr != nil {
		t.Fatalf("starting kfake: %v", kErr)
	}
	return kBrokers
}

// NewKafka starts a dedicated in-process kfake cluster for one test (for tests
// that stop the broker on purpose), closed when the test ends.
func NewKafka(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(3)}, opts...)...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
