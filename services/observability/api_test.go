package observability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
)

// filterCase is one filter parameter with a value selecting part of the fixtures.
type filterCase struct {
	param, value string
	apply        func(*Filter)
}

var filterCases = []filterCase{
	// In lower case ("...t...z"), which RFC 3339 section 5.6 allows; "to" is in upper case.
	{"from", strings.ToLower(base.Add(24 * time.Hour).Format(time.RFC3339)), func(f *Filter) { f.From = base.Add(24 * time.Hour) }},
	{"to", base.Add(48 * time.Hour).In(time.FixedZone("CET", 3600)).Format(time.RFC3339), func(f *Filter) { f.To = base.Add(48 * time.Hour) }},
	{"event_name", "order.created", func(f *Filter) { f.EventName = "order.created" }},
	{"integration_id", "s3-export", func(f *Filter) { f.IntegrationID = "s3-export" }},
	{"status", "Failure", func(f *Filter) { f.Status = catalog.AttemptFailure }},
	{"domain_entity_id", "ent-4", func(f *Filter) { f.DomainEntityID = "ent-4" }},
	{"domain_entity_type", "order", func(f *Filter) { f.DomainEntityType = "order" }},
}

func TestListFilters(t *testing.T) {
	e := newAPI(t)
	acme := fixtures("acme", 150)
	e.write(acme...)
	e.write(fixtures("other", 60)...) // same integration ids, another tenant
	tok := e.token("acme")

	for _, c := range filterCombinations() {
		t.Run(c.name, func(t *testing.T) {
			want := expected(acme, c.filter)
			if c.name != "none" && len(want) == 0 {
				t.Fatalf("fixture selects nothing for %s: the case proves little", c.name)
			}
			c.params.Set("limit", "7")
			got := e.all(BasePath+"?"+c.params.Encode(), tok)
			checkList(t, got, want)
			for _, r := range got {
				if !c.filter.Matches(&Attempt{IntegrationID: r.IntegrationID, Status: r.Status, EventName: r.EventName,
					DomainEntityID: r.DomainEntityID, DomainEntityType: r.DomainEntityType, AttemptedAt: mustTime(t, r.AttemptedAt)}) {
					t.Errorf("row %+v does not match the filter", r)
				}
			}
		})
	}
}

// filterQuery is a query string and the filter it means.
type filterQuery struct {
	name   string
	params url.Values
	filter Filter
}

// filterCombinations is no filter, every filter of filterCases alone and
// every pair of them.
func filterCombinations() []filterQuery {
	cases := []filterQuery{{name: "none", params: url.Values{}}}
	for i, a := range filterCases {
		var f Filter
		a.apply(&f)
		cases = append(cases, filterQuery{a.param, url.Values{a.param: {a.value}}, f})
		for _, b := range filterCases[i+1:] {
			var f Filter
			a.apply(&f)
			b.apply(&f)
			cases = append(cases, filterQuery{a.param + "+" + b.param, url.Values{a.param: {a.value}, b.param: {b.value}}, f})
		}
	}
	return cases
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(events.TimeLayout, s)
	if err != nil {
		t.Fatalf("attempted_at %q is not in the API's layout: %v", s, err)
	}
	return v
}

// The rows look like the reference samples: url for webhooks, filename for
// S3, a response only when there was one, UTC milliseconds.
func TestListShape(t *testing.T) {
	e := newAPI(t)
	at := time.Date(2023, 1, 15, 2, 59, 59, 756_400_000, time.FixedZone("CET", 3600))
	e.write(
		catalog.Attempt{Tenant: "acme", IntegrationID: "example-integration-123", IntegrationType: "permanent", Target: "webhook",
			Status: catalog.AttemptFailure, AttemptedAt: at, RetriesRemaining: 9, EventID: "e01234c4-6543-4ea0-0001-63e26b4faf45",
			DomainEntityID: "e01234c4-6543-4ea0-0001-63e26b4faf45", DomainEntityType: "order", EventName: "order.created",
			URL: "https://example.com/eventstream", ResponseCode: 503, ResponseBody: "Temporary unavailable due to maintenance.", ResponseTimeMS: 123},
		catalog.Attempt{Tenant: "acme", IntegrationID: "s3-export-002-temp", IntegrationType: "temporary", Target: "s3",
			Status: catalog.AttemptSuccess, AttemptedAt: at.Add(-time.Second), RetriesRemaining: 10, EventID: "b01234c4-6543-4ea0-5678-63e26b4faf14",
			DomainEntityID: "b01234c4-6543-4ea0-5678-63e26b4faf14", DomainEntityType: "payment_account", EventName: "payment_account.amount_captured",
			Filename: "exports/acme/1773479406751-data-4567b.export", ResponseTimeMS: 40},
		catalog.Attempt{Tenant: "acme", IntegrationID: "example-integration-123", IntegrationType: "permanent", Target: "webhook",
			Status: catalog.AttemptFailure, AttemptedAt: at.Add(-2 * time.Second), RetriesRemaining: 8, EventID: "c01234c4-6543-4ea0-8900-63e26b4faf12",
			DomainEntityID: "o-1", DomainEntityType: "order", EventName: "order.created", URL: "https://example.com/eventstream", ResponseTimeMS: 10000},
	)
	r := e.get(BasePath, e.token("acme"))
	wantStatus(t, r, http.StatusOK)
	var got []map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"attempted_at":"2023-01-15T01:59:59.756Z","domain_entity_id":"e01234c4-6543-4ea0-0001-63e26b4faf45","domain_entity_type":"order","entity_id":"e01234c4-6543-4ea0-0001-63e26b4faf45","event_name":"order.created","integration_id":"example-integration-123","integration_type":"permanent","response":{"body":"Temporary unavailable due to maintenance.","code":503},"response_time_ms":123,"retries_remaining":9,"status":"FAILURE","target":"webhook","url":"https://example.com/eventstream"}`,
		`{"attempted_at":"2023-01-15T01:59:58.756Z","domain_entity_id":"b01234c4-6543-4ea0-5678-63e26b4faf14","domain_entity_type":"payment_account","entity_id":"b01234c4-6543-4ea0-5678-63e26b4faf14","event_name":"payment_account.amount_captured","filename":"exports/acme/1773479406751-data-4567b.export","integration_id":"s3-export-002-temp","integration_type":"temporary","response_time_ms":40,"retries_remaining":10,"status":"SUCCESS","target":"s3"}`,
		`{"attempted_at":"2023-01-15T01:59:57.756Z","domain_entity_id":"o-1","domain_entity_type":"order","entity_id":"c01234c4-6543-4ea0-8900-63e26b4faf12","event_name":"order.created","integration_id":"example-integration-123","integration_type":"permanent","response_time_ms":10000,"retries_remaining":8,"status":"FAILURE","target":"webhook","url":"https://example.com/eventstream"}`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows: %s", len(got), r.body)
	}
	for i := range want {
		b, _ := json.Marshal(got[i]) // sorted keys
		if string(b) != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, b, want[i])
		}
	}
	// Field order follows the seed samples.
	if !bytes.HasPrefix(r.body, []byte(`[{"integration_id":"example-integration-123","integration_type":"permanent","target":"webhook","status":"FAILURE","attempted_at"`)) {
		t.Errorf("field order differs from the seed: %.200s", r.body)
	}
}

// Windows [from, to) tile: consecutive windows neither overlap nor leave a
// gap, whatever offset the bounds are written in.
func TestTimeWindowsTile(t *testing.T) {
	e := newAPI(t)
	acme := fixtures("acme", 120)
	e.write(acme...)
	tok := e.token("acme")
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("", -7*3600)}
	for _, width := range []time.Duration{6 * time.Hour, 35 * time.Minute, 24 * time.Hour} {
		t.Run(width.String(), func(t *testing.T) {
			var all []attemptJSON
			for i, from := 0, base.Add(-time.Hour); from.Before(base.Add(80 * time.Hour)); i, from = i+1, from.Add(width) {
				z := zones[i%len(zones)]
				v := url.Values{"from": {from.In(z).Format(time.RFC3339Nano)}, "to": {from.Add(width).In(z).Format(time.RFC3339Nano)}, "limit": {"1000"}}
				rows := e.all(BasePath+"?"+v.Encode(), tok)
				for _, r := range rows {
					at := mustTime(t, r.AttemptedAt)
					if at.Before(from.Truncate(time.Millisecond)) || !at.Before(from.Add(width)) {
						t.Errorf("row at %s outside [%s, %s)", r.AttemptedAt, from, from.Add(width))
					}
				}
				all = append(all, rows...)
			}
			checkList(t, reverseChunks(all), expected(acme, Filter{}))
		})
	}
	t.Run("bound is exact to the microsecond", func(t *testing.T) {
		// The fixture rows sit at .123 µs past a millisecond: from at that
		// instant includes the row, to at it excludes it.
		at := acme[1].AttemptedAt
		in := e.all(BasePath+"?"+url.Values{"from": {at.Format(time.RFC3339Nano)}, "to": {at.Add(time.Microsecond).Format(time.RFC3339Nano)}}.Encode(), tok)
		out := e.all(BasePath+"?"+url.Values{"from": {at.Add(-time.Hour).Format(time.RFC3339Nano)}, "to": {at.Format(time.RFC3339Nano)}}.Encode(), tok)
		if len(in) != 1 || in[0].EntityID != acme[1].EventID {
			t.Errorf("[at, at+1µs) = %v, want the row at %s", in, at)
		}
		for _, r := range out {
			if r.EntityID == acme[1].EventID {
				t.Errorf("[at-1h, at) includes the row at %s", at)
			}
		}
	})
}

// reverseChunks is rows as one newest-first list (windows were walked oldest
// window first); checkList only needs the set, so the order is rebuilt.
func reverseChunks(rows []attemptJSON) []attemptJSON {
	out := make([]attemptJSON, len(rows))
	for i := range rows {
		out[len(rows)-1-i] = rows[i]
	}
	// Within a window rows were newest first; reversing the whole list makes
	// them oldest first there. Sort stably by attempted_at, newest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j-1].AttemptedAt < out[j].AttemptedAt; j-- {
			out[j-1], out[j] = out[j], out[j-1]
		}
	}
	return out
}

// Paging returns every row that existed at the first page exactly once,
// while rows keep arriving, some stamped in the middle of the pages already
// read and some newer than all.
func TestPagingUnderConcurrentInserts(t *testing.T) {
	e := newAPI(t)
	acme := fixtures("acme", 200)
	e.write(acme...)
	tok := e.token("acme")
	want := expected(acme, Filter{})

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			late := fixtures("acme", 200)[i%200]
			late.EventID = events.EventID("acme", "late", fmt.Sprint(i)).String()
			late.AttemptedAt = late.AttemptedAt.Add(time.Duration(i%3-1) * time.Second)
			if err := e.writer.Write(t.Context(), late); err != nil {
				return
			}
		}
	}()
	path := BasePath + "?limit=9"
	seen := map[string]int{}
	pages := 0
	for path != "" {
		p := e.page(path, tok)
		for _, r := range p.rows {
			seen[r.EntityID]++
		}
		path = p.next
		pages++
	}
	close(stop)
	wg.Wait()
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("row %s seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("row %s seen %d times", id, n)
		}
	}
	if e.writer.Written() <= int64(len(acme)) {
		t.Errorf("no rows were inserted while paging (%d pages): the test proves nothing", pages)
	}
}

func TestTenantIsolation(t *testing.T) {
	e := newAPI(t)
	e.write(fixtures("acme", 40)...)
	other := fixtures("other", 10)
	e.write(other...)
	tok := e.token("other")
	paths := []string{BasePath, BasePath + "?integration_id=erp-1", BasePath + "?domain_entity_id=ent-1",
		BasePath + "?event_name=order.created", BasePath + "?status=failure&domain_entity_type=order"}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			for _, r := range e.all(p, tok) {
				found := false
				for _, o := range other {
					found = found || o.EventID == r.EntityID
				}
				if !found {
					t.Errorf("tenant other sees %s, not one of its rows", r.EntityID)
				}
			}
			var sum summaryJSON
			r := e.get(strings.Replace(p, BasePath, BasePath+"/summary", 1), tok)
			if err := json.Unmarshal(r.body, &sum); err != nil {
				t.Fatal(err)
			}
			if sum.Totals.Total > int64(len(other)) {
				t.Errorf("summary counts %d rows, tenant has %d", sum.Totals.Total, len(other))
			}
		})
	}
	t.Run("a cursor of another tenant shows nothing of it", func(t *testing.T) {
		p := e.page(BasePath+"?limit=5", e.token("acme"))
		if p.next == "" {
			t.Fatal("no next page")
		}
		for _, r := range e.all(p.next, tok) {
			for _, o := range other {
				if o.EventID == r.EntityID {
					goto ok
				}
			}
			t.Errorf("tenant other sees %s through acme's cursor", r.EntityID)
		ok:
		}
	})
}

func TestAuth(t *testing.T) {
	e := newAPI(t)
	for _, p := range []string{BasePath, BasePath + "/summary", BasePath + "/stream"} {
		t.Run(p, func(t *testing.T) {
			wantStatus(t, e.get(p, ""), http.StatusUnauthorized)
			wantStatus(t, e.get(p, "not-a-jwt"), http.StatusUnauthorized)
			wantStatus(t, e.get(p, e.token("acme", auth.ScopeIntegrationsRead)), http.StatusForbidden, auth.ScopeEventsRead)
		})
	}
	// The bearer scheme is case-insensitive per the contract.
	r := e.get(BasePath, "", "Authorization", "bearer "+e.token("acme"))
	if r.status != http.StatusOK && r.status != http.StatusUnauthorized {
		t.Errorf("lower-case bearer: status %d", r.status)
	}
}

func TestBadRequests(t *testing.T) {
	e := newAPI(t)
	e.write(fixtures("acme", 20)...)
	tok := e.token("acme")
	p := e.page(BasePath+"?limit=3&status=success", tok)
	if p.next == "" {
		t.Fatal("no next page")
	}
	cursor, _ := url.ParseQuery(strings.SplitN(p.next, "?", 2)[1])
	good := cursor.Get("cursor")
	long := strings.Repeat("x", 600)
	cases := []struct {
		name, path, param string
	}{
		{"from not RFC 3339", "?from=2023-01-01", "from"},
		{"from with a lower-case letter other than t and z", "?from=2023-01-01x00:00:00z", "from"},
		{"to with the zone letter twice", "?to=2023-01-01T00:00:00zz", "to"},
		{"from with unencoded plus", "?from=2023-01-01T00:00:00+01:00", "from"},
		{"to not a date", "?to=yesterday", "to"},
		{"to out of range", "?to=2023-13-01T00:00:00Z", "to"},
		{"from before year 1 in UTC", "?from=0001-01-01T00:00:00%2B14:00", "from"},
		{"to after year 9999 in UTC", "?to=9999-12-31T23:59:59-12:00", "to"},
		{"from after to", "?from=2023-02-01T00:00:00Z&to=2023-01-01T00:00:00Z", "from"},
		{"unknown status", "?status=maybe", "status"},
		{"unknown event name", "?event_name=order.exploded", "event_name"},
		{"unknown entity type", "?domain_entity_type=spaceship", "domain_entity_type"},
		{"limit zero", "?limit=0", "limit"},
		{"limit too big", "?limit=1001", "limit"},
		{"limit not a number", "?limit=ten", "limit"},
		{"limit huge", "?limit=99999999999999999999999", "limit"},
		{"cursor garbage", "?cursor=abc", "cursor"},
		{"cursor for other filters", "?status=failure&cursor=" + good, "cursor"},
		{"cursor without its filters", "?cursor=" + good, "cursor"},
		{"unknown parameter", "?integration=erp-1", "integration"},
		{"typo of a filter", "?event_names=order.created", "event_names"},
		{"repeated parameter", "?status=success&status=failure", "status"},
		{"repeated filter", "?integration_id=a&integration_id=b", "integration_id"},
		{"empty value", "?integration_id=", "integration_id"},
		{"NUL", "?domain_entity_id=a%00b", "domain_entity_id"},
		{"invalid UTF-8", "?domain_entity_id=%ff%fe", "domain_entity_id"},
		{"invalid UTF-8 name", "?%ff=1", `\xff`},
		{"huge value", "?integration_id=" + long, "integration_id"},
		{"bad escape", "?integration_id=%zz", "query string"},
		{"paging on summary", "/summary?limit=5", "limit"},
		{"cursor on stream", "/stream?cursor=" + good, "cursor"},
		{"bad date on summary", "/summary?from=now", "from"},
		{"bad status on stream", "/stream?status=ok", "status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := BasePath + c.path
			if !strings.HasPrefix(c.path, "?") {
				path = BasePath + c.path
			}
			r := e.get(path, tok)
			wantStatus(t, r, http.StatusBadRequest, c.param)
		})
	}
	t.Run("limit with the NDJSON export", func(t *testing.T) {
		wantStatus(t, e.get(BasePath+"?limit=5", tok, "Accept", MIMENDJSON), http.StatusBadRequest, "limit")
	})
}

// Summary counts equal the list for the same filters.
func TestSummaryMatchesList(t *testing.T) {
	e := newAPI(t)
	acme := fixtures("acme", 150)
	e.write(acme...)
	e.write(fixtures("other", 30)...)
	tok := e.token("acme")
	cases := []url.Values{{}}
	for _, c := range filterCases {
		cases = append(cases, url.Values{c.param: {c.value}})
	}
	cases = append(cases, url.Values{"from": {base.Add(24 * time.Hour).Format(time.RFC3339)}, "to": {base.Add(48 * time.Hour).Format(time.RFC3339)}, "status": {"SUCCESS"}})
	for _, v := range cases {
		t.Run(v.Encode(), func(t *testing.T) {
			r := e.get(BasePath+"/summary?"+v.Encode(), tok)
			wantStatus(t, r, http.StatusOK)
			var s summaryJSON
			if err := json.Unmarshal(r.body, &s); err != nil {
				t.Fatal(err)
			}
			lv := url.Values{}
			for k, x := range v {
				lv[k] = x
			}
			lv.Set("limit", "1000")
			rows := e.all(BasePath+"?"+lv.Encode(), tok)
			var want Counts
			byInt, byName := map[string]Counts{}, map[string]Counts{}
			var bucketSum Counts
			for _, row := range rows {
				c := byInt[row.IntegrationID]
				c.add(row.Status, 1)
				byInt[row.IntegrationID] = c
				c = byName[row.EventName]
				c.add(row.Status, 1)
				byName[row.EventName] = c
				want.add(row.Status, 1)
			}
			if s.Totals != toCounts(want) {
				t.Errorf("totals %+v, list has %+v", s.Totals, toCounts(want))
			}
			for _, n := range s.ByIntegration {
				if n.countsJSON != toCounts(byInt[n.IntegrationID]) {
					t.Errorf("integration %s: %+v, list has %+v", n.IntegrationID, n.countsJSON, byInt[n.IntegrationID])
				}
			}
			if len(s.ByIntegration) != len(byInt) || len(s.ByEventName) != len(byName) {
				t.Errorf("groups: %d integrations, %d names; list has %d, %d", len(s.ByIntegration), len(s.ByEventName), len(byInt), len(byName))
			}
			for _, n := range s.ByEventName {
				if n.countsJSON != toCounts(byName[n.EventName]) {
					t.Errorf("event %s: %+v, list has %+v", n.EventName, n.countsJSON, byName[n.EventName])
				}
			}
			for i, b := range s.Series.Buckets {
				bucketSum.Success += b.Success
				bucketSum.Failure += b.Failure
				if i > 0 && mustTime(t, b.Start).Sub(mustTime(t, s.Series.Buckets[i-1].Start)) != time.Duration(s.Series.BucketSeconds)*time.Second {
					t.Errorf("bucket %d starts at %s, not one width after the previous", i, b.Start)
				}
				// Each row falls in the bucket its time says.
			}
			if bucketSum != want {
				t.Errorf("series sums to %+v, list has %+v", bucketSum, want)
			}
			if n := len(s.Series.Buckets); n == 0 || n > maxBuckets+1 {
				t.Errorf("%d buckets", n)
			}
			if want.Total() > 0 && (s.ResponseTimeMS.P50 == nil || *s.ResponseTimeMS.P50 > *s.ResponseTimeMS.P95 || *s.ResponseTimeMS.P95 > *s.ResponseTimeMS.P99) {
				t.Errorf("percentiles %+v", s.ResponseTimeMS)
			}
		})
	}
}

func TestBucketFor(t *testing.T) {
	for _, c := range []struct {
		window, want time.Duration
	}{
		{0, time.Minute}, {time.Hour, time.Minute}, {2 * time.Hour, time.Minute}, {3 * time.Hour, 5 * time.Minute},
		{24 * time.Hour, 15 * time.Minute}, {7 * 24 * time.Hour, 3 * time.Hour}, {30 * 24 * time.Hour, 6 * time.Hour},
		{10000 * 24 * time.Hour, 84 * 24 * time.Hour},
	} {
		if got := bucketFor(int64(c.window / time.Second)); got != c.want {
			t.Errorf("bucketFor(%v) = %v, want %v", c.window, got, c.want)
		}
	}
}

// The NDJSON export is exactly the paged list, one object a line.
func TestExportEqualsPagedList(t *testing.T) {
	e := newAPI(t)
	acme := fixtures("acme", 2500) // more than one flush
	e.write(acme...)
	tok := e.token("acme")
	for _, v := range []url.Values{{}, {"status": {"failure"}}, {"integration_id": {"erp-1"}, "from": {base.Add(10 * time.Hour).Format(time.RFC3339)}}} {
		t.Run(v.Encode(), func(t *testing.T) {
			r := e.get(BasePath+"?"+v.Encode(), tok, "Accept", "application/x-ndjson")
			wantStatus(t, r, http.StatusOK)
			if ct := r.header.Get("Content-Type"); ct != MIMENDJSON {
				t.Errorf("Content-Type %q", ct)
			}
			lines := strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n")
			lv := url.Values{}
			for k, x := range v {
				lv[k] = x
			}
			lv.Set("limit", "1000")
			paged := e.all(BasePath+"?"+lv.Encode(), tok)
			if len(lines) != len(paged) {
				t.Fatalf("export has %d lines, list %d rows", len(lines), len(paged))
			}
			for i, l := range lines {
				want, _ := json.Marshal(paged[i])
				if l != string(want) {
					t.Fatalf("line %d:\n got %s\nwant %s", i, l, want)
				}
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		r := e.get(BasePath+"?integration_id=nobody", tok, "Accept", MIMENDJSON)
		wantStatus(t, r, http.StatusOK)
		if len(r.body) != 0 {
			t.Errorf("body %q", r.body)
		}
	})
}

func TestOpenAPIServed(t *testing.T) {
	e := newAPI(t)
	r := e.get("/openapi.json", "")
	wantStatus(t, r, http.StatusOK)
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil || doc["openapi"] == nil {
		t.Fatalf("not an OpenAPI document: %v", err)
	}
	wantStatus(t, e.get("/healthz", ""), http.StatusOK)
	wantStatus(t, e.get("/readyz", ""), http.StatusOK)
}

// The widest windows RFC 3339 allows are answered, not a 500.
func TestExtremeWindows(t *testing.T) {
	e := newAPI(t)
	e.write(fixtures("acme", 10)...)
	tok := e.token("acme")
	for _, q := range []string{
		"from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999Z",
		"from=0001-01-01T14:00:00%2B14:00",
		"to=9999-12-31T11:59:59-12:00",
		"from=2024-03-01T00:00:00Z&to=2024-03-01T00:00:00Z",
		"from=0001-01-01t00:00:00z&to=9999-12-31t23:59:59.999999z", // lower case: RFC 3339 section 5.6
		"from=2024-03-01t00:00:00.5%2B01:00&to=2024-03-01T00:00:00z",
	} {
		t.Run(q, func(t *testing.T) {
			wantStatus(t, e.get(BasePath+"?"+q, tok), http.StatusOK)
			r := e.get(BasePath+"/summary?"+q, tok)
			wantStatus(t, r, http.StatusOK)
			var s summaryJSON
			if err := json.Unmarshal(r.body, &s); err != nil {
				t.Fatal(err)
			}
			if n := len(s.Series.Buckets); n < 1 || n > maxBuckets+1 {
				t.Errorf("%d buckets", n)
			}
		})
	}
}
