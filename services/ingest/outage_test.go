package ingest_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/ingest"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestStoppedBrokerGives503ThenRetrySucceeds stops the (only) broker: a
// publish gets 503 within the produce timeout, never 202; readiness fails.
// After the broker comes back on the same address with its data, the retried
// publish is accepted with the same event id and both the earlier event and
// the retried one are in the log.
func TestStoppedBrokerGives503ThenRetrySucceeds(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	c1 := testenv.NewKafka(t, kfake.Ports(port), kfake.DataDir(dir))
	const timeout = time.Second
	h := newHarness(t, c1.ListenAddrs(), func(c *ingest.Config) { c.ProduceTimeout = timeout })
	tenant := h.newTenant()
	tok := token(t, tenant)

	if r := h.post(tok, []byte(`{"name":"order.created","payload":{"id":"before"}}`)); r.status != 202 {
		t.Fatalf("publish before the outage: %d %s", r.status, r.body)
	}
	c1.Close()

	body := []byte(`{"events":[{"name":"order.created","payload":{"id":"during-1"}},{"name":"order.shipped","payload":{"id":"during-2"}}]}`)
	for range 2 {
		start := time.Now()
		r := h.post(tok, body)
		took := time.Since(start)
		if r.status != http.StatusServiceUnavailable || r.json["error_code"] != "unavailable" ||
			!strings.Contains(r.json["message"].(string), "retry") {
			t.Fatalf("publish with the broker down: %d %s", r.status, r.body)
		}
		// Bounded: the produce timeout plus request overhead, never the
		// client's default retry horizon.
		if took > timeout+2*time.Second {
			t.Fatalf("503 after %s, want within about %s", took, timeout)
		}
	}
	resp, err := http.Get(h.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the broker down = %d, want 503", resp.StatusCode)
	}

	// The broker restarts on the same port with its log.
	testenv.NewKafka(t, kfake.Ports(port), kfake.DataDir(dir))
	var r response
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = h.post(tok, body)
		if r.status == 202 || time.Now().After(deadline) {
			break
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("retry after the restart: %d %s", r.status, r.body)
		}
	}
	if r.status != 202 || r.json["accepted"] != float64(2) {
		t.Fatalf("retry after the restart never accepted: %d %s", r.status, r.body)
	}
	results := r.json["results"].([]any)
	if results[0].(map[string]any)["event_id"] != events.EventID(tenant, "order.created", "during-1").String() {
		t.Fatalf("retried event id changed: %v", results[0])
	}
	seen := map[string]bool{}
	for _, rec := range consume(t, h.brokers, tenant, 3) {
		ev, err := kafka.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		seen[ev.GetDomainEntityId()] = true
	}
	for _, id := range []string{"before", "during-1", "during-2"} {
		if !seen[id] {
			t.Fatalf("event %s missing from the log after the restart (have %v)", id, seen)
		}
	}
}

// TestHungBrokerGives503InBoundedTime: a broker that accepts produce
// requests but never answers must not hold the client past the produce
// timeout (franz-go alone would wait for the request timeout first).
func TestHungBrokerGives503InBoundedTime(t *testing.T) {
	c := testenv.NewKafka(t)
	const timeout = time.Second
	h := newHarness(t, c.ListenAddrs(), func(cfg *ingest.Config) { cfg.ProduceTimeout = timeout })
	tenant := h.newTenant()
	tok := token(t, tenant)
	if r := h.post(tok, []byte(`{"name":"order.created","payload":{"id":"ok"}}`)); r.status != 202 {
		t.Fatalf("publish before the hang: %d %s", r.status, r.body)
	}
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true // swallow the request: no response, ever
	})
	start := time.Now()
	r := h.post(tok, []byte(`{"name":"order.created","payload":{"id":"hung"}}`))
	if took := time.Since(start); r.status != http.StatusServiceUnavailable || took > timeout+2*time.Second {
		t.Fatalf("publish to a hung broker: %d after %s (want 503 within about %s): %s", r.status, took, timeout, r.body)
	}
}

// TestServeStopsWhenContextEnds: Serve answers until its context ends, then
// returns nil after draining.
func TestServeStopsWhenContextEnds(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	tenant := h.newTenant()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	if r := postTo(t, url, token(t, tenant), []byte(`{"name":"order.created","payload":{"id":"s"}}`)); r.status != 202 {
		t.Fatalf("publish through Serve: %d %s", r.status, r.body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(h.cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after shutdown")
	}
}
