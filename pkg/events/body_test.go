package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

func TestAppendBodyIsTheContractEnvelope(t *testing.T) {
	ev := &eventspb.Event{
		Tenant:      "business\"name",
		Name:        "order.items_cancelled",
		PublishedAt: timestamppb.New(time.Date(2010, 1, 1, 12, 0, 0, 0, time.UTC)),
		Payload:     []byte(`{"id":"1431b891","items":[{"id":"x"}]}`),
	}
	b := events.AppendBody(nil, ev)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, b)
	}
	if len(got) != 4 || got["tenant"] != "business\"name" || got["name"] != "order.items_cancelled" ||
		got["published_at"] != "2010-01-01T12:00:00.000Z" {
		t.Fatalf("unexpected body %s", b)
	}
	if p := got["payload"].(map[string]any); p["id"] != "1431b891" {
		t.Fatalf("payload not carried: %s", b)
	}
}

func TestRegistryAndFilter(t *testing.T) {
	if n := len(events.Names()); n != 42 {
		t.Fatalf("registry has %d names, want 42", n)
	}
	want := []string{"cash_drawer", "customer", "employee", "fulfillment_request", "gift_card", "inventory_count",
		"inventory_transaction", "invoice", "order", "payment_account", "refund_request", "return"}
	got := events.EntityTypes()
	if len(got) != len(want) {
		t.Fatalf("entity types = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entity types = %v, want %v", got, want)
		}
	}
	f := events.NewFilter([]string{"order.created"}, []string{"return"})
	cases := []struct {
		name, entity string
		want         bool
	}{
		{"order.created", "order", true},
		{"order.cancelled", "order", false},
		{"return.processed", "return", true},
		{"customer.created", "customer", false},
	}
	for _, c := range cases {
		if f.Match(c.name, c.entity) != c.want {
			t.Errorf("Match(%s) = %v, want %v", c.name, !c.want, c.want)
		}
	}
	if !events.NewFilter(nil, nil).Match("customer.created", "customer") {
		t.Error("empty filter must pass everything")
	}
	a := events.EventID("t", "order.created", "k1")
	if a != events.EventID("t", "order.created", "k1") || a == events.EventID("t", "order.created", "k2") ||
		a == events.EventID("u", "order.created", "k1") {
		t.Error("event ids must be deterministic and distinct per triple")
	}
}
