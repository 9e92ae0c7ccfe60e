package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Kcat returns the path of kcat (librdkafka's command-line client), the
// independent client interop tests check the event log with. A missing kcat
// fails the test with instructions (`make test` installs Debian's package);
// only EVENTSTREAM_NO_KCAT=1 skips it, as an explicit opt-out.
func Kcat(t testing.TB) string {
	t.Helper()
	if os.Getenv("EVENTSTREAM_NO_KCAT") == "1" {
		t.Skip("EVENTSTREAM_NO_KCAT=1: kcat interop check skipped on request")
	}
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("kcat is not on PATH: install it (`apt-get install -y kcat`; `make test` does this when missing) " +
		"or set EVENTSTREAM_NO_KCAT=1 to skip the Kafka interop check explicitly")
	return ""
}
