package chaos

import (
	"testing"

	"github.com/eventstream/eventstream/pkg/events"
)

// The ledger decides the verdict: a delivery must count as delivered,
// duplicated, another tenant's or unknown exactly when it is.
func TestLedger(t *testing.T) {
	orders := &integration{Tenant: "acme", ID: "wh-orders", filter: events.NewFilter([]string{"order.created"}, nil)}
	id := func(tenant, name, key string) string { return events.EventID(tenant, name, key).String() }
	l := newLedger()
	for _, p := range []published{
		{"acme", "order.created", "k1"}, {"acme", "order.created", "k2"},
		{"acme", "customer.created", "k3"}, {"globex", "order.created", "k4"},
	} {
		l.attempt(p.tenant, id(p.tenant, p.name, p.key))
		l.accept(id(p.tenant, p.name, p.key), p)
	}
	obs := func(tenant, name, key string) observation {
		return observation{eventID: id(tenant, name, key), tenant: tenant, name: name, key: key}
	}
	l.observe(orders, obs("acme", "order.created", "k1"))
	l.observe(orders, obs("acme", "order.created", "k1"))   // a redelivery
	l.observe(orders, obs("globex", "order.created", "k4")) // another tenant's
	bad := obs("acme", "order.created", "k1")
	bad.badSignature = true
	l.observe(orders, bad)
	l.observe(orders, observation{eventID: "00000000-0000-0000-0000-000000000000", tenant: "acme"})

	if got := l.expected(orders); len(got) != 2 {
		t.Errorf("expected = %v, want the two acme order.created events (filter, tenant)", got)
	}
	if got := l.missing(orders); len(got) != 1 || got[0] != id("acme", "order.created", "k2") {
		t.Errorf("missing = %v, want k2's event", got)
	}
	if l.crossTenant != 1 || l.badSignature != 1 || l.unknown != 1 {
		t.Errorf("cross-tenant %d, bad signature %d, unknown %d; want 1 each", l.crossTenant, l.badSignature, l.unknown)
	}
	if unique, dups := l.delivered(orders); unique != 3 || dups != 2 {
		t.Errorf("delivered = %d unique, %d duplicates; want 3, 2", unique, dups)
	}
}
