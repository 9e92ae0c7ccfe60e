package kafka_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func TestProvisionTenantIsIdempotentAndKeeps30Days(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := newAdmin(t)
	tenant := "prov-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := events.TopicName(tenant)

	for i := range 3 {
		if err := kafka.ProvisionTenant(ctx, adm, tenant, 4, 1, kafka.DefaultRetention); err != nil {
			t.Fatalf("provisioning #%d: %v", i+1, err)
		}
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s not listed: %+v", topic, details)
	}
	if n := len(d.Partitions); n != 4 {
		t.Fatalf("topic has %d partitions, want 4", n)
	}
	assertConfigs(ctx, t, adm, topic, kafka.DefaultRetention)

	// A topic someone created with a short retention is brought up to the
	// minimum; a longer retention is left alone.
	short := "short-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	day := "86400000"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &day}, events.TopicName(short)); err != nil {
		t.Fatal(err)
	}
	if err := kafka.ProvisionTenant(ctx, adm, short, 1, 1, kafka.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	assertConfigs(ctx, t, adm, events.TopicName(short), kafka.DefaultRetention)
	if err := kafka.ProvisionTenant(ctx, adm, short, 1, 1, kafka.MinRetention); err != nil {
		t.Fatal(err)
	}
	assertConfigs(ctx, t, adm, events.TopicName(short), kafka.DefaultRetention)
}

func assertConfigs(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, wantRetention time.Duration) {
	t.Helper()
	cfg, err := kafka.TopicConfigs(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.ParseInt(cfg[kafka.ConfigRetentionMs], 10, 64)
	if err != nil {
		t.Fatalf("retention.ms = %q: %v", cfg[kafka.ConfigRetentionMs], err)
	}
	if got := time.Duration(ms) * time.Millisecond; got < kafka.MinRetention || got != wantRetention {
		t.Fatalf("retention of %s is %s, want %s (>= %s)", topic, got, wantRetention, kafka.MinRetention)
	}
	if n, _ := strconv.Atoi(cfg[kafka.ConfigMaxMessageBytes]); n < kafka.MaxRecordBatchBytes {
		t.Fatalf("max.message.bytes of %s is %q, want >= %d", topic, cfg[kafka.ConfigMaxMessageBytes], kafka.MaxRecordBatchBytes)
	}
}

func TestProvisionTenantRefusesBadInput(t *testing.T) {
	adm := newAdmin(t)
	ctx := context.Background()
	cases := map[string]struct {
		tenant     string
		partitions int32
		retention  time.Duration
		want       string
	}{
		"short retention": {"ok-tenant", 1, 29 * 24 * time.Hour, "below"},
		"bad name":        {"Bad_Name", 1, kafka.DefaultRetention, "must match"},
		"zero partitions": {"ok-tenant", 0, kafka.DefaultRetention, "partitions"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := kafka.ProvisionTenant(ctx, adm, c.tenant, c.partitions, 1, c.retention)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestRecordRoundTripThroughBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := newAdmin(t)
	tenant := "rec-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := kafka.ProvisionTenant(ctx, adm, tenant, 2, 1, kafka.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))

	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := &eventspb.Event{
		EventId: events.EventID(tenant, "order.created", "o-1").String(), Tenant: tenant, Name: "order.created",
		PublishedAt: timestamppb.New(now.Add(-time.Hour)), Payload: []byte(`{"id":"o-1"}`), EntityType: "order",
		DomainEntityId: "o-1", IdempotencyKey: "o-1", IngestedAt: timestamppb.New(now),
	}
	rec, err := kafka.EncodeRecord(sctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	big := proto.Clone(ev).(*eventspb.Event)
	big.Payload = []byte(`{"id":"o-2","pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	big.DomainEntityId = "o-2"
	bigRec, err := kafka.EncodeRecord(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := kafka.NewProducer(testenv.KafkaBrokers(t), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := pr.ProduceSync(ctx, rec, bigRec).FirstErr(); err != nil {
		t.Fatalf("producing (including a >1 MiB event): %v", err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(testenv.KafkaBrokers(t)...),
		kgo.ConsumeTopics(events.TopicName(tenant)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []*kgo.Record
	for len(got) < 2 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 2 records: %v", len(got), err)
		}
		got = append(got, fs.Records()...)
	}
	for _, r := range got {
		if string(r.Key) != "o-1" {
			continue
		}
		dec, err := kafka.DecodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(dec, ev) {
			t.Fatalf("decoded %v, want %v", dec, ev)
		}
		if !r.Timestamp.Equal(now) {
			t.Fatalf("record timestamp %v, want ingested_at %v", r.Timestamp, now)
		}
		back := trace.SpanContextFromContext(kafka.TraceContext(context.Background(), r))
		if back.TraceID() != tid || back.SpanID() != sid {
			t.Fatalf("trace context not carried: headers %v", r.Headers)
		}
		return
	}
	t.Fatal("record o-1 not consumed")
}

func TestDecodeRecordRefusesGarbage(t *testing.T) {
	for _, v := range [][]byte{[]byte("not protobuf \xff\xff"), nil} {
		if _, err := kafka.DecodeRecord(&kgo.Record{Value: v}); err == nil {
			t.Errorf("DecodeRecord(%q) succeeded", v)
		}
	}
}

// TestTopicMinInsyncReplicas: tenant topics get min.insync.replicas =
// min(2, replication factor) unless configured, read back from the broker
// (kfake echoes topic configs through DescribeConfigs); an existing topic is
// raised, never lowered; a value above the replication factor is refused.
func TestTopicMinInsyncReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testenv.NewKafka(t, kfake.NumBrokers(3))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	minInsync := func(topic string) string {
		t.Helper()
		cfg, err := kafka.TopicConfigs(ctx, adm, topic)
		if err != nil {
			t.Fatal(err)
		}
		return cfg[kafka.ConfigMinInsync]
	}
	for _, tc := range []struct {
		name        string
		replication int16
		configured  int16
		want        string
	}{
		{"rf3-default", 3, 0, "2"},
		{"rf1-default", 1, 0, "1"},
		{"rf2-default", 2, 0, "2"},
		{"rf3-configured-3", 3, 3, "3"},
		{"rf3-configured-1", 3, 1, "1"},
		{"broker-default-rf", -1, 0, ""}, // want: min(2, the replicas the broker gave it)
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := tc.name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			s := kafka.TopicSettings{Partitions: 1, Replication: tc.replication, Retention: kafka.DefaultRetention, MinInsyncReplicas: tc.configured}
			if err := kafka.ProvisionTenantTopic(ctx, adm, tenant, s); err != nil {
				t.Fatal(err)
			}
			got := minInsync(events.TopicName(tenant))
			if tc.replication == -1 {
				details, err := adm.ListTopics(ctx, events.TopicName(tenant))
				if err != nil {
					t.Fatal(err)
				}
				rf := len(details[events.TopicName(tenant)].Partitions[0].Replicas)
				tc.want = strconv.Itoa(min(2, rf))
			}
			if got != tc.want {
				t.Fatalf("min.insync.replicas = %q, want %s", got, tc.want)
			}
		})
	}

	// An existing topic with the broker's min.insync.replicas of 1 is raised.
	old := "old-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, events.TopicName(old)); err != nil {
		t.Fatal(err)
	}
	if err := kafka.ProvisionTenant(ctx, adm, old, 1, 3, kafka.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	if got := minInsync(events.TopicName(old)); got != "2" {
		t.Fatalf("existing topic: min.insync.replicas = %q, want raised to 2", got)
	}
	// ... and never lowered.
	if err := kafka.ProvisionTenantTopic(ctx, adm, old, kafka.TopicSettings{Partitions: 1, Replication: 3, Retention: kafka.DefaultRetention, MinInsyncReplicas: 1}); err != nil {
		t.Fatal(err)
	}
	if got := minInsync(events.TopicName(old)); got != "2" {
		t.Fatalf("existing topic: min.insync.replicas = %q after asking for 1, want kept at 2", got)
	}
	// More than the replicas: every acks=all produce would fail.
	bad := kafka.TopicSettings{Partitions: 1, Replication: 1, Retention: kafka.DefaultRetention, MinInsyncReplicas: 2}
	if err := kafka.ProvisionTenantTopic(ctx, adm, "bad-"+strconv.FormatInt(time.Now().UnixNano(), 36), bad); err == nil {
		t.Fatal("min.insync.replicas above the replication factor accepted")
	}
}
