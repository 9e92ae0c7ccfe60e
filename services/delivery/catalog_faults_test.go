package delivery_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
)

// startLogged runs an in-process worker whose log the test reads.
func (e *env) startLogged(cfg delivery.Config) (logs *testenv.SyncBuffer, stop func()) {
	e.t.Helper()
	logs = &testenv.SyncBuffer{}
	svc, err := delivery.New(cfg, e.store, e.db.Pool, delivery.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		e.t.Fatal(err)
	}
	return logs, testenv.Start(e.t, "worker", svc.Run)
}

// An integration whose stop the catalog keeps refusing is not left
// consuming as if nothing happened: after bounded retries the stop is
// counted and logged, the integration stays paused on the worker (no
// consumer: its endpoint gets nothing more) while the supervisor retries
// the write, another integration's deliveries go on, and once the catalog
// takes the write the integration is stopped with its reason.
func TestUnrecordedStopPausesTheIntegrationUntilRecorded(t *testing.T) {
	testenv.InstallMetrics()
	e := newEnv(t, 1)
	failing := newReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	ok := newReceiver(t, nil)
	e.register("stuck", catalog.Webhook{CallbackURL: failing.url()}, nil)
	e.register("other", catalog.Webhook{CallbackURL: ok.url()}, nil)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `CREATE FUNCTION test_refuse_stop() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'the catalog refuses this stop (test)'; END $$;
		CREATE TRIGGER test_refuse_stop BEFORE UPDATE ON integrations FOR EACH ROW
			WHEN (NEW.id = 'stuck' AND NEW.status = 'stopped') EXECUTE FUNCTION test_refuse_stop();`); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Pool = "pausepool"
	cfg.MaxRetries = 1
	logs, _ := e.startLogged(cfg)
	first := e.produceN("order.created", 1)
	ok.waitDelivered(t, 30*time.Second, first)
	// While the stuck consumer retries its stop, the other integration goes on.
	during := e.produceN("order.created", 10)
	ok.waitDelivered(t, 30*time.Second, during)

	testenv.WaitFor(t, 60*time.Second, "the unrecorded stop logged", func() bool {
		return strings.Contains(logs.String(), "did not record the integration's stop")
	})
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "did not record the integration's stop") {
			line = l
		}
	}
	if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "tenant="+e.tenant) || !strings.Contains(line, "integration=stuck") {
		t.Fatalf("the give-up is not an error log with the ids: %s", line)
	}
	match := map[string]string{"pool": "pausepool", "tenant": e.tenant, "integration": "stuck"}
	testenv.WaitFor(t, 10*time.Second, "the unrecorded stop counted", func() bool {
		pts := testenv.Metrics(t, "eventstream.delivery.stops_unrecorded", match)
		return len(pts) == 1 && pts[0].Value == 1
	})
	if st := e.status("stuck").Status; st != catalog.StatusRunning {
		t.Fatalf("status %s while the catalog refuses the stop", st)
	}
	requestsAtGiveUp := len(failing.requests())

	// Paused: the supervisor retries the write on later passes and starts
	// no consumer; the other integration still delivers.
	later := e.produceN("order.created", 10)
	ok.waitDelivered(t, 30*time.Second, later)
	testenv.WaitFor(t, 30*time.Second, "two supervisor retries of the stop", func() bool {
		return strings.Count(logs.String(), "recording the stop of a paused integration") >= 2
	})
	if n := len(failing.requests()); n != requestsAtGiveUp {
		t.Fatalf("the paused integration's endpoint got %d more requests: it was consumed again", n-requestsAtGiveUp)
	}

	// The catalog takes the write again: the stop is recorded with its reason.
	if _, err := e.db.Pool.Exec(ctx, `DROP TRIGGER test_refuse_stop ON integrations`); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the stop recorded", func() bool { return e.status("stuck").Status == catalog.StatusStopped })
	l := e.logs("stuck")
	if len(l) == 0 || l[0].Action != catalog.ActionStopped || !strings.Contains(l[0].Reason, "Stopped after 1 failed retries") {
		t.Fatalf("newest log entry %+v, want the interrupt's reason", l[0])
	}
	if n := len(failing.requests()); n != requestsAtGiveUp {
		t.Fatalf("the paused integration's endpoint got %d more requests", n-requestsAtGiveUp)
	}
}
