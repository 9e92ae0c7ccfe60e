package s3sink

import (
	"testing"

	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

func TestMetaLogRoundTrip(t *testing.T) {
	in := []*eventspb.Event{
		{EventId: "d4cdb14a-b5a8-5264-b56d-e61e73528df9", Name: "order.created", EntityType: "order", DomainEntityId: "o-1"},
		{EventId: "not-a-uuid", Name: "invoice.created", EntityType: "invoice", DomainEntityId: ""},
		{EventId: "D4CDB14A-B5A8-5264-B56D-E61E73528DF9", Name: "order.created", EntityType: "order", DomainEntityId: "o-2"},
		{EventId: "", Name: "", EntityType: "", DomainEntityId: "x"},
	}
	var m metaLog
	marks := make([]int, len(in))
	for i, ev := range in {
		marks[i] = m.mark()
		m.add(ev)
	}
	for from := range in {
		var got []eventMeta
		m.since(marks[from]).each(func(e eventMeta) { got = append(got, e) })
		if len(got) != len(in)-from {
			t.Fatalf("since(%d): %d events, want %d", from, len(got), len(in)-from)
		}
		for i, e := range got {
			ev := in[from+i]
			if e.EventID != ev.EventId || e.Name != ev.Name || e.DomainEntityType != ev.EntityType || e.DomainEntityID != ev.DomainEntityId {
				t.Fatalf("event %d = %+v, want %+v", from+i, e, ev)
			}
		}
	}
}
