package events_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/eventstream/eventstream/pkg/events"
)

// TestEventIDIsUUIDv5 pins EventID to the UUIDv5 definition it was first
// written with (uuid.NewSHA1 over tenant NUL name NUL key): ids already in
// the log must never change.
func TestEventIDIsUUIDv5(t *testing.T) {
	ns := uuid.MustParse("5b8f3c1e-2a4d-4e6f-9a0b-7c1d2e3f4a5b")
	long := strings.Repeat("k", 300)
	for _, c := range [][3]string{{"acme", "order.created", "o-1"}, {"", "", ""}, {"t", "customer.updated", long}, {"é", "x", "\u2603"}} {
		want := uuid.NewSHA1(ns, []byte(c[0]+"\x00"+c[1]+"\x00"+c[2]))
		if got := events.EventID(c[0], c[1], c[2]); got != want {
			t.Errorf("EventID%q = %s, want %s", c, got, want)
		}
	}
}
