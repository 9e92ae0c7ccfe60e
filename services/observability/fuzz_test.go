package observability

import (
	"errors"
	"net/url"
	"testing"

	"github.com/eventstream/eventstream/pkg/httpapi"
)

// FuzzParseQuery: whatever the query string, parsing either succeeds with a
// filter the store can run, or fails with a 400 naming a problem; it never
// panics, and an accepted query survives a round trip through its cursor.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "from=2023-01-01T00:00:00Z&to=2023-02-01T00:00:00%2B01:00", "status=SUCCESS&limit=10",
		"event_name=order.created&domain_entity_type=order", "cursor=AQAAAAAAAAAAAAAAAAAAAAE", "limit=1001",
		"status=success&status=failure", "x=%00", "domain_entity_id=%ff", "from=2023-13-01T00:00:00Z",
		"from=2023-01-01t00:00:00z&to=2023-01-01t00:00:00.5z", // RFC 3339 allows lower case
	} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, paging bool) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // the handler answers 400 before ParseQuery
		}
		q, err := ParseQuery(v, paging)
		if err != nil {
			var ae *httpapi.Error
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Message == "" {
				t.Fatalf("ParseQuery(%q) error %v is not a 400 with a message", raw, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
			t.Fatalf("from %v after to %v accepted", q.From, q.To)
		}
		// The same filter with the cursor of any row parses back.
		v2 := url.Values{}
		for k, x := range v {
			if k != "cursor" {
				v2[k] = x
			}
		}
		v2.Set("cursor", NextCursor(q.Filter, q.From, 42, 1))
		if paging {
			if _, err := ParseQuery(v2, true); err != nil {
				t.Fatalf("own cursor refused for %q: %v", raw, err)
			}
		}
		_, _ = listSQL("t", q, q.Limit+1)
	})
}
