package delivery

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// stopWorld is a consumer of one running integration over a real catalog,
// not started: enough to record its stop.
func stopWorld(t *testing.T, id string) (*consumer, *catalog.Store, *testenv.World, *testenv.SyncBuffer) {
	t.Helper()
	w := testenv.NewWorld(t, "gate", 1)
	in := &catalog.Integration{Tenant: w.Tenant, ID: id, Type: catalog.TypePermanent,
		Webhook: &catalog.Webhook{CallbackURL: "https://example.com/hook"}}
	if err := w.Store.CreateIntegration(context.Background(), in, 10); err != nil {
		t.Fatal(err)
	}
	st, err := w.Store.GetDeliveryState(context.Background(), w.Tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	cfg := Config{Brokers: w.Brokers, Pool: "gatepool"}.WithDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	deps := consumerDeps{cfg: cfg, status: w.Store, life: ctx, log: slog.New(slog.NewTextHandler(&logs, nil))}
	return newConsumer(deps, in, st), w.Store, w, &logs
}

// A stop reason built from what an endpoint sent is stored in a safe form
// whatever it holds; one Postgres still refuses for its content is replaced
// by a fixed reason instead of being retried: the integration is stopped
// either way.
func TestStopReasonIsStoredSafely(t *testing.T) {
	cases := []struct {
		name, reason string
		// refuse makes Postgres refuse reasons holding this text (a
		// CHECK constraint), standing in for a refusal SafeText cannot
		// foresee.
		refuse string
		want   string // the stored reason ("" : the safe form of reason)
	}{
		{name: "NUL bytes", reason: "Stopped: endpoint said \x00\x00 nothing"},
		{name: "invalid UTF-8", reason: "Stopped: \xff\xfe caf\xc3\x28 end"},
		{name: "character cut at the end", reason: "Stopped: caf\xc3"},
		{name: "far too long", reason: "Stopped: " + strings.Repeat("é", 5000)},
		{name: "refused by Postgres", reason: "Stopped: refuse-me please", refuse: "refuse-me",
			want: fallbackReason(StopRetriesExhausted, catalog.ActionStopped)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, store, w, _ := stopWorld(t, "hostile")
			ctx := context.Background()
			if tc.refuse != "" {
				if _, err := w.DB.Pool.Exec(ctx, `ALTER TABLE integration_logs ADD CONSTRAINT test_refuses
					CHECK (reason NOT LIKE '%`+tc.refuse+`%') NOT VALID`); err != nil {
					t.Fatal(err)
				}
			}
			c.setStopped(StopRetriesExhausted, catalog.ActionStopped, tc.reason)
			if c.unrecorded != nil {
				t.Fatalf("stop left unrecorded: %+v", c.unrecorded)
			}
			in, err := store.GetIntegration(ctx, w.Tenant, "hostile")
			if err != nil {
				t.Fatal(err)
			}
			if in.Status != catalog.StatusStopped {
				t.Fatalf("status %s, want stopped", in.Status)
			}
			logs, err := store.ListLogs(ctx, w.Tenant, "hostile", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) == 0 || logs[0].Action != catalog.ActionStopped {
				t.Fatalf("logs %+v, want a stop entry first", logs)
			}
			got := logs[0].Reason
			want := tc.want
			if want == "" {
				want = catalog.SafeText(tc.reason, 2048)
			}
			if got != want || !utf8.ValidString(got) || strings.ContainsRune(got, 0) || !strings.HasPrefix(got, "Stopped") {
				t.Fatalf("stored reason %q, want %q", got, want)
			}
		})
	}
}

// A stop the catalog keeps refusing (not for its text) is tried a bounded
// number of times, then counted and logged with the ids, and handed to the
// supervisor, which keeps the integration paused.
func TestRefusedStopIsRetriedBoundedThenCounted(t *testing.T) {
	testenv.InstallMetrics()
	c, store, w, logs := stopWorld(t, "stuck")
	ctx := context.Background()
	if _, err := w.DB.Pool.Exec(ctx, `CREATE SEQUENCE test_stop_tries;
		CREATE FUNCTION test_refuse_stop() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM nextval('test_stop_tries'); -- not rolled back with the refused write
			RAISE EXCEPTION 'the catalog refuses this stop (test)';
		END $$;
		CREATE TRIGGER test_refuse_stop BEFORE UPDATE ON integrations FOR EACH ROW
			WHEN (NEW.status = 'stopped') EXECUTE FUNCTION test_refuse_stop();`); err != nil {
		t.Fatal(err)
	}
	c.setStopped(StopRetriesExhausted, catalog.ActionStopped, "Stopped after 10 failed retries.")
	var tries int
	if err := w.DB.Pool.QueryRow(ctx, `SELECT last_value FROM test_stop_tries`).Scan(&tries); err != nil {
		t.Fatal(err)
	}
	if tries != stopRetries+1 {
		t.Fatalf("the stop was tried %d times, want %d", tries, stopRetries+1)
	}
	if c.unrecorded == nil || c.unrecorded.reason != "Stopped after 10 failed retries." || c.unrecorded.action != catalog.ActionStopped {
		t.Fatalf("unrecorded stop handed to the supervisor: %+v", c.unrecorded)
	}
	if in, err := store.GetIntegration(ctx, w.Tenant, "stuck"); err != nil || in.Status != catalog.StatusRunning {
		t.Fatalf("integration %+v, %v: want still running in the catalog", in, err)
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, "did not record the integration's stop") {
			line = l
		}
	}
	if !strings.Contains(line, "tenant="+w.Tenant) || !strings.Contains(line, "integration=stuck") {
		t.Fatalf("no error log with the ids; logs:\n%s", logs.String())
	}
	pts := testenv.Metrics(t, "eventstream.delivery.stops_unrecorded",
		map[string]string{"pool": "gatepool", "tenant": w.Tenant, "integration": "stuck"})
	if len(pts) != 1 || pts[0].Value != 1 || pts[0].Attrs["reason"] != string(StopRetriesExhausted) {
		t.Fatalf("stops_unrecorded points %+v, want one counting 1", pts)
	}
}
