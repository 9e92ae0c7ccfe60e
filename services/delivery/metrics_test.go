package delivery_test

import (
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// lagPoint reads the lag gauges of one integration: records and seconds,
// checking each carries exactly the labels the dashboard, the alerts and
// KEDA select on.
func lagPoint(t *testing.T, pool, tenant, id string) (records, seconds float64, ok bool) {
	t.Helper()
	match := map[string]string{"pool": pool, "tenant": tenant, "integration": id}
	r := testenv.Metrics(t, "eventstream.consumer_lag", match)
	s := testenv.Metrics(t, "eventstream.consumer_lag_seconds", match)
	if len(r) != 1 || len(s) != 1 {
		return 0, 0, false
	}
	for _, p := range []testenv.MetricPoint{r[0], s[0]} {
		if keys := slices.Sorted(maps.Keys(p.Attrs)); !slices.Equal(keys, []string{"integration", "pool", "tenant"}) {
			t.Fatalf("lag gauge labels %v, want integration, pool, tenant", keys)
		}
	}
	return r[0].Value, s[0].Value, true
}

// While the endpoint holds every request, the lag gauges show the waiting
// records and the age of the oldest; once it answers, both fall to 0.
func TestLagGauges(t *testing.T) {
	testenv.InstallMetrics()
	e := newEnv(t, 2)
	release := make(chan struct{})
	rcv := newReceiver(t, func(string, int) int { <-release; return http.StatusOK })
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	e.register("lagging", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.Pool = "lagpool"
	cfg.AttemptTimeout = time.Minute
	e.startWorker(cfg)

	evs := e.produceN("order.created", 20)
	producedAt := time.Now()
	var records, seconds float64
	testenv.WaitFor(t, 30*time.Second, "lag of 20 records while the endpoint is blocked", func() bool {
		r, s, ok := lagPoint(t, "lagpool", e.tenant, "lagging")
		records, seconds = r, s
		return ok && r == 20 && s > 0.2
	})
	if limit := time.Since(producedAt).Seconds() + 5; seconds > limit {
		t.Fatalf("lag %.1fs, more than the %.1fs since the events were produced", seconds, limit)
	}
	t.Logf("blocked: lag %v records, %.2fs", records, seconds)

	close(release)
	released = true
	rcv.waitDelivered(t, 30*time.Second, evs)
	testenv.WaitFor(t, 30*time.Second, "lag back to 0 after delivery", func() bool {
		r, s, ok := lagPoint(t, "lagpool", e.tenant, "lagging")
		records, seconds = r, s
		return ok && r == 0 && s == 0
	})
}

// Each way the worker stops an integration is counted once with its pool,
// tenant, integration and a reason from a fixed set.
func TestIntegrationStopsCounted(t *testing.T) {
	testenv.InstallMetrics()
	cases := []struct {
		name     string
		respond  func(string, int) int
		allowAll bool
		reason   string
	}{
		{"retries exhausted", func(string, int) int { return http.StatusInternalServerError }, true, "retries_exhausted"},
		{"address refused", nil, false, "address_refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			rcv := newReceiver(t, tc.respond)
			e.register("stops", catalog.Webhook{CallbackURL: rcv.url()}, nil)
			cfg := e.config()
			cfg.Pool = "stoppool"
			cfg.MaxRetries = 2
			if !tc.allowAll {
				cfg.AllowCIDRs = nil // loopback is refused
			}
			e.startWorker(cfg)
			e.produceN("order.created", 1)
			testenv.WaitFor(t, 30*time.Second, "integration stopped", func() bool {
				return e.status("stops").Status == catalog.StatusStopped
			})
			match := map[string]string{"pool": "stoppool", "tenant": e.tenant, "integration": "stops"}
			var pts []testenv.MetricPoint
			testenv.WaitFor(t, 10*time.Second, "stop counted", func() bool {
				pts = testenv.Metrics(t, "eventstream.delivery.integration_stops", match)
				return len(pts) > 0
			})
			if len(pts) != 1 || pts[0].Attrs["reason"] != tc.reason || pts[0].Value != 1 {
				t.Fatalf("stops counted: %+v; want one, reason %s", pts, tc.reason)
			}
		})
	}
}
