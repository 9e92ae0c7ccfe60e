package delivery_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/pkg/webhook"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

func TestDeliversContractBodyWithAuthAndSignature(t *testing.T) {
	e := newEnv(t, 3)
	rcv := newReceiver(t, nil)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url(), APIKey: "api-key-1", SigningSecret: secret}, nil)
	e.startWorker(e.config())

	evs := e.produceN("order.created", 20)
	evs = append(evs, e.produceN("customer.updated", 10)...)
	rcv.waitDelivered(t, 30*time.Second, evs)

	byKey := map[string]*eventspb.Event{}
	for _, ev := range evs {
		byKey[idemKey(ev)] = ev
	}
	for _, r := range rcv.requests() {
		ev := byKey[r.header.Get("Idempotency-Key")]
		if ev == nil {
			t.Fatalf("request with unknown Idempotency-Key %q", r.header.Get("Idempotency-Key"))
		}
		// The body is exactly the contract's object, byte for byte.
		if want := events.AppendBody(nil, ev); string(r.body) != string(want) {
			t.Fatalf("body = %s\nwant %s", r.body, want)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &obj); err != nil || len(obj) != 4 {
			t.Fatalf("body is not the 4-field object: %s (%v)", r.body, err)
		}
		if string(obj["payload"]) != string(ev.GetPayload()) || string(obj["published_at"]) != `"2024-03-01T10:00:00.`+
			fmt.Sprintf("%03d", ev.GetPublishedAt().AsTime().Nanosecond()/1e6)+`Z"` {
			t.Fatalf("payload/published_at not carried: %s", r.body)
		}
		if got := r.header.Get("Authorization"); got != "Bearer api-key-1" {
			t.Fatalf("Authorization = %q", got)
		}
		if got := r.header.Get("Content-Type"); got != "application/json" {
			t.Fatalf("Content-Type = %q", got)
		}
		if got := r.header.Get("webhook-id"); got != ev.GetEventId() {
			t.Fatalf("webhook-id = %q, want the event id %s", got, ev.GetEventId())
		}
		if err := testenv.VerifyStandardWebhook(secret, r.header, r.body, time.Now()); err != nil {
			t.Fatalf("signature: %v", err)
		}
	}
	if d := rcv.duplicates(); d != 0 {
		t.Errorf("%d duplicate deliveries in a failure-free run", d)
	}

	// One SUCCESS attempt row per event, with the observability fields.
	e.waitCommittedToEnd(e.group(in))
	testenv.WaitFor(t, 10*time.Second, "30 attempt rows", func() bool { return len(e.attempts("erp-1")) == 30 })
	for _, a := range e.attempts("erp-1") {
		if a.Status != catalog.AttemptSuccess || a.Code == nil || *a.Code != 200 || a.RetriesRemaining != 10 ||
			a.URL != rcv.url() || a.Body == nil || *a.Body != "status 200" || a.IntegrationType != "permanent" ||
			a.Target != "webhook" || a.EventID == "" || !strings.HasPrefix(a.DomainEntityID, a.DomainEntityType+"-") {
			t.Fatalf("attempt row %+v", a)
		}
	}
}

func TestRejected400IsStoredAndStreamContinues(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	evs := make([]*eventspb.Event, 10)
	for i := range evs {
		evs[i] = e.event("order.created", i, time.Now())
	}
	bad := idemKey(evs[3])
	rcv.setRespond(func(key string, n int) int {
		if key == bad {
			return 400
		}
		return 200
	})
	e.startWorker(e.config())
	e.produce(evs...)
	good := append(append([]*eventspb.Event{}, evs[:3]...), evs[4:]...)
	rcv.waitDelivered(t, 30*time.Second, good)
	e.waitCommittedToEnd(e.group(in))

	ctx := context.Background()
	list, err := e.store.ListRejected(ctx, e.tenant, "erp-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].EventID != evs[3].GetEventId() {
		t.Fatalf("rejected = %+v, want event %s", list, evs[3].GetEventId())
	}
	got, err := e.store.GetRejected(ctx, e.tenant, "erp-1", evs[3].GetEventId())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(events.AppendBody(nil, evs[3])) || got.ResponseCode != 400 {
		t.Fatalf("rejected event body %s code %d", got.Body, got.ResponseCode)
	}
	if st := e.status("erp-1"); st.Status != catalog.StatusRunning {
		t.Fatalf("integration %s after a 400, want running", st.Status)
	}
	testenv.WaitFor(t, 10*time.Second, "10 attempt rows", func() bool { return len(e.attempts("erp-1")) == 10 })
	var failures int
	for _, a := range e.attempts("erp-1") {
		if a.Status == catalog.AttemptFailure {
			failures++
			if a.Code == nil || *a.Code != 400 || a.EventID != evs[3].GetEventId() {
				t.Fatalf("failure row %+v", a)
			}
		}
	}
	if failures != 1 {
		t.Fatalf("%d FAILURE rows, want 1", failures)
	}
}

func TestRetryTwiceThenDelivered(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, func(key string, n int) int {
		if n <= 2 {
			return 503
		}
		return 200
	})
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	e.startWorker(e.config())
	evs := e.produceN("order.created", 1)
	rcv.waitDelivered(t, 30*time.Second, evs)
	e.waitCommittedToEnd(e.group(in))

	if n := rcv.okCount(idemKey(evs[0])); n != 1 {
		t.Fatalf("delivered %d times, want 1", n)
	}
	logs := e.logs("erp-1")
	want := "Request to URL " + rcv.url() + " failed. Reason: Service Unavailable (HTTP status code 503)"
	retries := 0
	for _, l := range logs {
		if l.Action == catalog.ActionRetry {
			retries += l.Repeats
			if l.Reason != want {
				t.Fatalf("retry reason %q, want %q", l.Reason, want)
			}
		}
	}
	if retries != 2 {
		t.Fatalf("%d retry_triggered logs, want 2: %+v", retries, logs)
	}
	testenv.WaitFor(t, 10*time.Second, "3 attempt rows", func() bool { return len(e.attempts("erp-1")) == 3 })
	rows := e.attempts("erp-1")
	for i, wantLeft := range []int{10, 9, 8} {
		wantStatus := catalog.AttemptFailure
		if i == 2 {
			wantStatus = catalog.AttemptSuccess
		}
		if rows[i].RetriesRemaining != wantLeft || rows[i].Status != wantStatus {
			t.Fatalf("attempt %d = %+v, want retries_remaining %d %s", i, rows[i], wantLeft, wantStatus)
		}
	}
}

func TestAlways500StopsAfterTenRetriesAndStartResumes(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, func(string, int) int { return 500 })
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	e.startWorker(e.config())
	evs := e.produceN("order.created", 3)

	testenv.WaitFor(t, 30*time.Second, "integration stopped", func() bool { return e.status("erp-1").Status == catalog.StatusStopped })
	logs := e.logs("erp-1")
	if logs[0].Action != catalog.ActionStopped ||
		!strings.HasPrefix(logs[0].Reason, "Stopped after 10 failed retries. Request to URL "+rcv.url()+" failed. Reason: Internal Server Error (HTTP status code 500)") {
		t.Fatalf("newest log = %+v", logs[0])
	}
	// Every record attempted gets its 10 retries; the first to run out stops
	// the integration, so at least 10 retry logs exist.
	if n := countAction(logs, catalog.ActionRetry); n < 10 {
		t.Fatalf("%d retry_triggered logs, want at least 10", n)
	}
	testenv.WaitFor(t, 10*time.Second, "attempt rows down to 0", func() bool {
		for _, a := range e.attempts("erp-1") {
			if a.RetriesRemaining == 0 {
				return true
			}
		}
		return false
	})
	left := map[int]bool{}
	for _, a := range e.attempts("erp-1") {
		if a.Status != catalog.AttemptFailure || a.Code == nil || *a.Code != 500 {
			t.Fatalf("attempt %+v", a)
		}
		left[a.RetriesRemaining] = true
	}
	for i := 0; i <= 10; i++ {
		if !left[i] {
			t.Fatalf("no attempt with retries_remaining %d", i)
		}
	}
	if rcv.delivered() != 0 {
		t.Fatal("something was delivered")
	}

	// Fix the endpoint and start again: the failed events are delivered.
	rcv.setRespond(nil)
	if _, err := e.store.SetStatus(context.Background(), e.tenant, "erp-1", catalog.StatusRunning, catalog.ActionStarted, "Started via API."); err != nil {
		t.Fatal(err)
	}
	rcv.waitDelivered(t, 30*time.Second, evs)
	e.waitCommittedToEnd(e.group(in))
}

func TestCallbackToLoopbackWithoutAllowListIsRefused(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, nil)
	e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.AllowCIDRs = nil
	cfg.MaxRetries = 2
	e.startWorker(cfg)
	e.produceN("order.created", 1)

	testenv.WaitFor(t, 30*time.Second, "integration stopped", func() bool { return e.status("erp-1").Status == catalog.StatusStopped })
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("the loopback endpoint was reached %d times", n)
	}
	// A refused address stops the integration at the first attempt: there is
	// nothing to wait out.
	testenv.WaitFor(t, 10*time.Second, "the attempt row", func() bool { return len(e.attempts("erp-1")) == 1 })
	for _, a := range e.attempts("erp-1") {
		if a.Status != catalog.AttemptFailure || a.Code != nil || a.URL != rcv.url() {
			t.Fatalf("attempt %+v, want FAILURE without a response", a)
		}
	}
	if n := countAction(e.logs("erp-1"), catalog.ActionRetry); n != 0 {
		t.Fatalf("%d retries of a refused address", n)
	}
	logs := e.logs("erp-1")
	if !strings.Contains(logs[0].Reason, "address not allowed") {
		t.Fatalf("stop reason %q does not say the address was refused", logs[0].Reason)
	}
}

// A callback pointing at the service's own public hosts is refused at
// delivery too (the API refuses it at registration; this catches an alias).
func TestCallbackToOwnHostsIsRefusedAtDelivery(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, nil)
	e.register("loop", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	own, err := webhook.ParseOwnHosts([]string{rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg.OwnHosts = own
	e.startWorker(cfg)
	e.produceN("order.created", 1)
	testenv.WaitFor(t, 30*time.Second, "integration stopped", func() bool { return e.status("loop").Status == catalog.StatusStopped })
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("the service's own host was called %d times", n)
	}
}

func TestFiltersDeliverExactlyMatchingEvents(t *testing.T) {
	e := newEnv(t, 3)
	rcv := newReceiver(t, nil)
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, func(in *catalog.Integration) {
		in.EventFilter = []string{"order.created"}
		in.EntityFilter = []string{"customer"}
	})
	e.startWorker(e.config())
	var want, all []*eventspb.Event
	for i, name := range []string{"order.created", "order.cancelled", "customer.created", "customer.updated",
		"return.processed", "order.created", "invoice.created", "customer.address_deleted"} {
		for j := 0; j < 5; j++ {
			ev := e.event(name, i*100+j, time.Now())
			all = append(all, ev)
			if name == "order.created" || strings.HasPrefix(name, "customer.") {
				want = append(want, ev)
			}
		}
	}
	e.produce(all...)
	rcv.waitDelivered(t, 30*time.Second, want)
	e.waitCommittedToEnd(e.group(in))
	if got := rcv.delivered(); got != len(want) {
		t.Fatalf("delivered %d distinct events, want exactly the %d matching ones", got, len(want))
	}
	for _, r := range rcv.requests() {
		name := strings.SplitN(r.header.Get("Idempotency-Key"), ":", 2)[0]
		if name != "order.created" && !strings.HasPrefix(name, "customer.") {
			t.Fatalf("filtered-out event %s delivered", name)
		}
	}
}

func TestRejectedLimitStopsInsteadOfDropping(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, func(string, int) int { return 400 })
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	ctx := context.Background()
	for i := 0; i < catalog.MaxRejectedEvents; i++ {
		if err := e.store.AddRejected(ctx, catalog.RejectedEvent{Tenant: e.tenant, IntegrationID: "erp-1",
			EventID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), EventName: "order.created",
			IdempotencyKey: "old", DomainEntityID: "x", Body: []byte("{}"), ResponseCode: 400}); err != nil {
			t.Fatal(err)
		}
	}
	e.startWorker(e.config())
	evs := e.produceN("order.created", 1)
	testenv.WaitFor(t, 30*time.Second, "integration stopped", func() bool { return e.status("erp-1").Status == catalog.StatusStopped })
	logs := e.logs("erp-1")
	if logs[0].Action != catalog.ActionStopped || !strings.Contains(logs[0].Reason, "30 rejected events") {
		t.Fatalf("stop log %+v does not say why", logs[0])
	}
	if _, err := e.store.GetRejected(ctx, e.tenant, "erp-1", evs[0].GetEventId()); err == nil {
		t.Fatal("31st rejected event stored")
	}
	// Nothing was dropped: once there is room, a start delivers the event.
	if err := e.store.DeleteRejected(ctx, e.tenant, "erp-1", "00000000-0000-4000-8000-000000000000"); err != nil {
		t.Fatal(err)
	}
	rcv.setRespond(nil)
	if _, err := e.store.SetStatus(ctx, e.tenant, "erp-1", catalog.StatusRunning, catalog.ActionStarted, "Started via API."); err != nil {
		t.Fatal(err)
	}
	rcv.waitDelivered(t, 30*time.Second, evs)
	e.waitCommittedToEnd(e.group(in))
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t, 1)
	rcv := newReceiver(t, func(key string, n int) int {
		if n == 1 {
			return 429 // with Retry-After: 1
		}
		return 200
	})
	in := e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	cfg := e.config()
	cfg.RetryMax = 3 * time.Second // the drawn backoff stays below 10ms; Retry-After wins
	e.startWorker(cfg)
	evs := e.produceN("order.created", 1)
	rcv.waitDelivered(t, 30*time.Second, evs)
	e.waitCommittedToEnd(e.group(in))
	reqs := rcv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond {
		t.Fatalf("retry came %s after a 429 with Retry-After: 1", gap)
	}
	if n := countAction(e.logs("erp-1"), catalog.ActionRetry); n != 1 {
		t.Fatalf("%d retry logs, want 1", n)
	}
}
