package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/s3local"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

// The attempts the real delivery path records (a worker consuming kfake,
// delivering to an httptest webhook and to the embedded S3 server) are what
// the API lists, with the right shape for each target.
func TestAttemptsOfTheRealDeliveryPath(t *testing.T) {
	e := newAPI(t)
	box, err := secrets.New(testenv.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	store := catalog.New(e.db.Pool, box)
	ctx := context.Background()
	const tenant = "shop"
	if err := store.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	brokers := testenv.NewKafka(t, kfake.GroupMinSessionTimeout(100*time.Millisecond)).ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.EnsureTopic(ctx, kadm.NewClient(cl), events.TopicName(tenant), 2, 1, kafka.DefaultRetention); err != nil {
		t.Fatal(err)
	}

	// The receiver refuses each odd event's first attempt with a 503.
	var mu sync.Mutex
	tried := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Payload struct {
				N int `json:"n"`
			} `json:"payload"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		mu.Lock()
		first := !tried[string(b)]
		tried[string(b)] = true
		mu.Unlock()
		if first && body.Payload.N%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "Temporary unavailable due to maintenance.")
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(hook.Close)
	s3srv, err := s3local.Start(ctx, t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3srv.Close() })

	s3cfg := s3sink.DefaultConfig()
	s3cfg.Endpoint, s3cfg.UsePathStyle, s3cfg.MaxFileAge = s3srv.URL(), true, 200*time.Millisecond
	s3cfg.RetryBase, s3cfg.RetryMax, s3cfg.RequestTimeout = time.Millisecond, 5*time.Millisecond, 10*time.Second
	factory, err := s3sink.NewFactory(s3cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := delivery.New(delivery.Config{
		Brokers: brokers, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		StopPropagation: time.Second, ResyncInterval: 2 * time.Second, RetryBase: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		SessionTimeout: 3 * time.Second, RebalanceTimeout: 6 * time.Second, CommitInterval: 50 * time.Millisecond,
		DrainTimeout: 2 * time.Second, ClockSkew: 100 * time.Millisecond, AttemptTimeout: 2 * time.Second,
	}, store, e.db.Pool, factory.Option())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, "delivery worker", svc.Run)
	for _, in := range []*catalog.Integration{
		{Tenant: tenant, ID: "hook", Type: catalog.TypePermanent, Webhook: &catalog.Webhook{CallbackURL: hook.URL + "/events"}},
		{Tenant: tenant, ID: "bucket", Type: catalog.TypePermanent, S3: &catalog.S3Target{AccessKeyID: "k", SecretAccessKey: "s",
			Region: "eu-west-1", Bucket: "exports", KeyPrefix: "es"}},
	} {
		if err := store.CreateIntegration(ctx, in, 10); err != nil {
			t.Fatal(err)
		}
	}
	// Events stamped after the registrations (and their clock-skew allowance).
	testenv.WaitFor(t, 5*time.Second, "the registrations to be in the past", func() bool {
		list, err := store.ListIntegrations(ctx, tenant)
		return err == nil && len(list) == 2 && time.Since(list[1].CreatedAt) > 200*time.Millisecond
	})
	names := []string{"order.created", "invoice.created", "customer.created"}
	var recs []*kgo.Record
	ids := map[string]string{} // event id -> domain entity id
	for i := range 12 {
		name := names[i%len(names)]
		et, _ := events.EntityType(name)
		key := fmt.Sprint("k", i)
		ev := &eventspb.Event{EventId: events.EventID(tenant, name, key).String(), Tenant: tenant, Name: name,
			PublishedAt: timestamppb.Now(), Payload: fmt.Appendf(nil, `{"id":"%s-%d","n":%d}`, et, i, i), EntityType: et,
			DomainEntityId: fmt.Sprintf("%s-%d", et, i), IdempotencyKey: key, IngestedAt: timestamppb.Now()}
		ids[ev.EventId] = ev.DomainEntityId
		r, err := kafka.EncodeRecord(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	tok := e.token(tenant)
	succeeded := func(integration string) map[string]attemptJSON {
		out := map[string]attemptJSON{}
		for _, r := range e.all(BasePath+"?"+url.Values{"integration_id": {integration}, "status": {"success"}}.Encode(), tok) {
			out[r.EntityID] = r
		}
		return out
	}
	testenv.WaitFor(t, 60*time.Second, "a SUCCESS attempt of every event for both integrations", func() bool {
		return len(succeeded("hook")) == len(ids) && len(succeeded("bucket")) == len(ids)
	})

	for id, r := range succeeded("hook") {
		if r.Target != "webhook" || r.URL == nil || *r.URL != hook.URL+"/events" || r.Filename != nil ||
			r.Response == nil || r.Response.Code != 200 || r.DomainEntityID != ids[id] || r.ResponseTimeMS == nil {
			t.Errorf("webhook success row %+v", r)
		}
	}
	for id, r := range succeeded("bucket") {
		if r.Target != "s3" || r.Filename == nil || *r.Filename == "" || r.URL != nil || r.DomainEntityID != ids[id] {
			t.Errorf("s3 success row %+v", r)
		}
	}
	failures := e.all(BasePath+"?integration_id=hook&status=failure", tok)
	if len(failures) != 6 {
		t.Errorf("%d failed webhook attempts, want 6 (each odd event's first)", len(failures))
	}
	for _, r := range failures {
		if r.Response == nil || r.Response.Code != 503 || r.Response.Body != "Temporary unavailable due to maintenance." || r.RetriesRemaining > 10 {
			t.Errorf("failure row %+v", r)
		}
	}
	var sum summaryJSON
	if err := json.Unmarshal(e.get(BasePath+"/summary", tok).body, &sum); err != nil {
		t.Fatal(err)
	}
	all := e.all(BasePath+"?limit=5", tok)
	if sum.Totals.Total != int64(len(all)) || sum.Totals.Failure != int64(len(failures)) {
		t.Errorf("summary totals %+v; the list has %d rows, %d failures", sum.Totals, len(all), len(failures))
	}
	// Another tenant sees none of it.
	if rows := e.all(BasePath, e.token("acme")); len(rows) != 0 {
		t.Errorf("tenant acme sees %d of shop's rows", len(rows))
	}
}
