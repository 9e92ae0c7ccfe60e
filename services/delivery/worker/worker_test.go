package worker

import (
	"context"
	"strings"
	"testing"
)

// A misconfigured worker stops before any connection opens, naming every
// bad variable of both loaders (delivery and S3) and the missing ones in
// one error.
func TestRunReportsEveryBadVariable(t *testing.T) {
	env := map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "DELIVERY_RETRY_BASE": "soon", "S3_PART_SIZE": "lots"}
	err := Run(context.Background(), func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"DELIVERY_RETRY_BASE", "S3_PART_SIZE", "DATABASE_URL", "SECRETS_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
