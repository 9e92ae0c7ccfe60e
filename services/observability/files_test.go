package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// fileFixtures is fixtures with the S3 integration's attempts stored the way
// the S3 sink stores them since issue 11: one row per file, perFile events
// each, the file's outcome (time, status, retries, response) that of its
// first event. Every third file stays one row per event, as rows written
// before migration 0005 are. It returns the rows to write and the events the
// API must show, one per event.
func fileFixtures(tenant string, n, perFile int) (rows, evs []catalog.Attempt) {
	var file *catalog.Attempt
	files := 0
	for _, a := range fixtures(tenant, n) {
		if a.Target != catalog.TargetS3 {
			rows, evs = append(rows, a), append(evs, a)
			continue
		}
		if file == nil || len(file.FileEvents) == perFile {
			if file != nil {
				rows = append(rows, *file)
			}
			file = &catalog.Attempt{}
			*file = a
			file.Filename = fmt.Sprintf("exports/%s/file-%03d.export", tenant, files)
			file.EventID, file.DomainEntityID, file.DomainEntityType, file.EventName = "", "", "", ""
			file.FileEvents = []catalog.FileEvent{}
			files++
		}
		ev := *file
		ev.FileEvents = nil
		ev.EventID, ev.DomainEntityID, ev.DomainEntityType, ev.EventName = a.EventID, a.DomainEntityID, a.DomainEntityType, a.EventName
		evs = append(evs, ev)
		file.FileEvents = append(file.FileEvents, catalog.FileEvent{EventID: a.EventID, DomainEntityID: a.DomainEntityID,
			DomainEntityType: a.DomainEntityType, EventName: a.EventName})
	}
	if file != nil {
		rows = append(rows, *file)
	}
	// Every third file as rows per event (written before migration 0005).
	var out []catalog.Attempt
	for i, r := range rows {
		if r.FileEvents == nil || i%3 != 0 {
			out = append(out, r)
			continue
		}
		for _, e := range r.FileEvents {
			ev := r
			ev.FileEvents = nil
			ev.EventID, ev.DomainEntityID, ev.DomainEntityType, ev.EventName = e.EventID, e.DomainEntityID, e.DomainEntityType, e.EventName
			out = append(out, ev)
		}
	}
	return out, evs
}

// S3 files stored as one row each are listed one element per event: every
// filter alone and every pair selects exactly the matching events (a file
// matching a domain entity id lists only that entity's events), newest
// first, a file's events in file order, and pages of 7 split files of 5
// events without losing or repeating one.
func TestFileRowsListedPerEvent(t *testing.T) {
	e := newAPI(t)
	rows, evs := fileFixtures("acme", 150, 5)
	e.write(rows...)
	other, _ := fileFixtures("other", 60, 5)
	e.write(other...)
	tok := e.token("acme")
	if len(rows) >= len(evs) {
		t.Fatalf("%d rows for %d events: the fixture has no file rows", len(rows), len(evs))
	}
	order := map[string]int{} // event id → position in its file
	file := map[string]string{}
	for _, r := range rows {
		for i, ev := range r.FileEvents {
			order[ev.EventID], file[ev.EventID] = i, r.Filename
		}
	}

	for _, c := range filterCombinations() {
		t.Run(c.name, func(t *testing.T) {
			want := expected(evs, c.filter)
			if c.name != "none" && len(want) == 0 {
				t.Fatalf("fixture selects nothing for %s: the case proves little", c.name)
			}
			c.params.Set("limit", "7")
			got := e.all(BasePath+"?"+c.params.Encode(), tok)
			checkList(t, got, want)
			for i, r := range got {
				if !c.filter.Matches(&Attempt{IntegrationID: r.IntegrationID, Status: r.Status, EventName: r.EventName,
					DomainEntityID: r.DomainEntityID, DomainEntityType: r.DomainEntityType, AttemptedAt: mustTime(t, r.AttemptedAt)}) {
					t.Errorf("row %+v does not match the filter", r)
				}
				if r.Target == catalog.TargetS3 && (r.Filename == nil || r.URL != nil) {
					t.Errorf("S3 row %+v without its filename", r)
				}
				if f, ok := file[r.EntityID]; ok && *r.Filename != f {
					t.Errorf("event %s listed with file %s, stored in %s", r.EntityID, *r.Filename, f)
				}
				if i > 0 && file[r.EntityID] != "" && file[got[i-1].EntityID] == file[r.EntityID] && order[got[i-1].EntityID] > order[r.EntityID] {
					t.Errorf("events %s and %s of %s are not in file order", got[i-1].EntityID, r.EntityID, file[r.EntityID])
				}
			}
		})
	}
}

// A page may end inside a file: the cursor addresses the position in the
// file's row, and the next page goes on from the following event.
func TestPagingSplitsAFile(t *testing.T) {
	e := newAPI(t)
	at := base.Add(time.Hour)
	file := catalog.Attempt{Tenant: "acme", IntegrationID: "s3-export", IntegrationType: "permanent", Target: catalog.TargetS3,
		Status: catalog.AttemptSuccess, AttemptedAt: at, RetriesRemaining: 10, Filename: "exports/acme/big.export"}
	var ids []string
	for i := range 10 {
		id := events.EventID("acme", "order.created", fmt.Sprint("f", i)).String()
		ids = append(ids, id)
		file.FileEvents = append(file.FileEvents, catalog.FileEvent{EventID: id, DomainEntityID: fmt.Sprint("o-", i%2),
			DomainEntityType: "order", EventName: "order.created"})
	}
	newer := fixtures("acme", 1)[0]
	newer.AttemptedAt = at.Add(time.Second)
	older := fixtures("acme", 3)[2]
	older.AttemptedAt = at.Add(-time.Second)
	e.write(older, file, newer)
	tok := e.token("acme")

	for _, c := range []struct {
		name, query string
		want        []string
		pages       int
	}{
		{"three per page", "?limit=3", append(append([]string{newer.EventID}, ids...), older.EventID), 4},
		{"one per page", "?limit=1&integration_id=s3-export", ids, 10},
		{"entity inside the file", "?limit=2&domain_entity_id=o-1", []string{ids[1], ids[3], ids[5], ids[7], ids[9]}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			pages := 0
			for path := BasePath + c.query; path != ""; pages++ {
				p := e.page(path, tok)
				for _, r := range p.rows {
					got = append(got, r.EntityID)
				}
				path = p.next
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("listed\n %v\nwant\n %v", got, c.want)
			}
			if pages != c.pages {
				t.Errorf("%d pages, want %d", pages, c.pages)
			}
		})
	}
	t.Run("export", func(t *testing.T) {
		r := e.get(BasePath+"?integration_id=s3-export", tok, "Accept", MIMENDJSON)
		wantStatus(t, r, http.StatusOK)
		var got []string
		for _, l := range strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n") {
			var a attemptJSON
			if err := json.Unmarshal([]byte(l), &a); err != nil {
				t.Fatal(err)
			}
			got = append(got, a.EntityID)
		}
		if strings.Join(got, ",") != strings.Join(ids, ",") {
			t.Errorf("exported %v, want %v", got, ids)
		}
	})
}

// The summary counts events, not rows: a file's row counts once for each of
// its events matching the filter, by integration and by event name.
func TestSummaryCountsFileEvents(t *testing.T) {
	e := newAPI(t)
	rows, evs := fileFixtures("acme", 150, 5)
	e.write(rows...)
	tok := e.token("acme")
	cases := []url.Values{{}}
	for _, c := range filterCases {
		cases = append(cases, url.Values{c.param: {c.value}})
	}
	cases = append(cases, url.Values{"integration_id": {"s3-export"}, "domain_entity_id": {"ent-4"}})
	for _, v := range cases {
		t.Run(v.Encode(), func(t *testing.T) {
			q, err := ParseQuery(v, false)
			if err != nil {
				t.Fatal(err)
			}
			var want Counts
			byInt, byName := map[string]Counts{}, map[string]Counts{}
			for _, a := range evs {
				if !q.Matches(toAttempt(a)) {
					continue
				}
				want.add(a.Status, 1)
				c := byInt[a.IntegrationID]
				c.add(a.Status, 1)
				byInt[a.IntegrationID] = c
				c = byName[a.EventName]
				c.add(a.Status, 1)
				byName[a.EventName] = c
			}
			r := e.get(BasePath+"/summary?"+v.Encode(), tok)
			wantStatus(t, r, http.StatusOK)
			var s summaryJSON
			if err := json.Unmarshal(r.body, &s); err != nil {
				t.Fatal(err)
			}
			if s.Totals != toCounts(want) {
				t.Errorf("totals %+v, want %+v", s.Totals, toCounts(want))
			}
			if len(s.ByIntegration) != len(byInt) || len(s.ByEventName) != len(byName) {
				t.Errorf("groups: %d integrations, %d names; want %d, %d", len(s.ByIntegration), len(s.ByEventName), len(byInt), len(byName))
			}
			for _, n := range s.ByIntegration {
				if n.countsJSON != toCounts(byInt[n.IntegrationID]) {
					t.Errorf("integration %s: %+v, want %+v", n.IntegrationID, n.countsJSON, toCounts(byInt[n.IntegrationID]))
				}
			}
			for _, n := range s.ByEventName {
				if n.countsJSON != toCounts(byName[n.EventName]) {
					t.Errorf("event %s: %+v, want %+v", n.EventName, n.countsJSON, toCounts(byName[n.EventName]))
				}
			}
			var sum Counts
			for _, b := range s.Series.Buckets {
				sum.Success += b.Success
				sum.Failure += b.Failure
			}
			if sum != want {
				t.Errorf("series sums to %+v, want %+v", sum, want)
			}
		})
	}
}

// The live tail sends a new file's row as one event per event it holds, in
// file order, filtered per event.
func TestStreamSendsFileEvents(t *testing.T) {
	e := newAPI(t)
	tok := e.token("acme")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	all, status, _ := e.openStream(ctx, "", tok)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	one, _, _ := e.openStream(ctx, "?domain_entity_id=o-2", tok)
	file := catalog.Attempt{Tenant: "acme", IntegrationID: "s3-export", IntegrationType: "permanent", Target: catalog.TargetS3,
		Status: catalog.AttemptSuccess, AttemptedAt: time.Now(), RetriesRemaining: 10, Filename: "exports/acme/live.export"}
	var ids []string
	for i := range 4 {
		id := events.EventID("acme", "order.created", fmt.Sprint("live", i)).String()
		ids = append(ids, id)
		file.FileEvents = append(file.FileEvents, catalog.FileEvent{EventID: id, DomainEntityID: fmt.Sprint("o-", i),
			DomainEntityType: "order", EventName: "order.created"})
	}
	e.write(file)
	for _, id := range ids {
		testenv.WaitFor(t, 5*time.Second, "the file's events on the stream", func() bool { return all.has(id) })
	}
	testenv.WaitFor(t, 5*time.Second, "the filtered event", func() bool { return one.has(ids[2]) })
	all.mu.Lock()
	var got []string
	var sseIDs []string
	for _, a := range all.events {
		got = append(got, a.EntityID)
		if a.Filename == nil || *a.Filename != file.Filename {
			t.Errorf("event %+v without the file's name", a)
		}
	}
	for _, l := range all.lines {
		if strings.HasPrefix(l, "id: ") {
			sseIDs = append(sseIDs, l)
		}
	}
	all.mu.Unlock()
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("streamed %v, want %v in file order", got, ids)
	}
	seen := map[string]bool{}
	for _, id := range sseIDs {
		if seen[id] {
			t.Errorf("SSE %q twice: event ids must be unique", id)
		}
		seen[id] = true
	}
	if n := one.count(); n != 1 {
		t.Errorf("the filtered stream got %d events, want 1", n)
	}
	cancel()
	if n := e.checkStream(all); n != len(ids) {
		t.Errorf("%d events checked against the document, want %d", n, len(ids))
	}
	e.checkStream(one)
}

// Paging through file rows while new files (and webhook rows) arrive: every
// event there at the first page comes exactly once, though pages end inside
// files.
func TestPagingFilesUnderConcurrentInserts(t *testing.T) {
	e := newAPI(t)
	rows, evs := fileFixtures("acme", 200, 6)
	e.write(rows...)
	tok := e.token("acme")
	want := expected(evs, Filter{})

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A bounded number of late rows: each page is a query over what is
		// left, and an endless stream of rows behind the cursor would make
		// the walk as long as the writer is fast.
		for i := range 60 {
			select {
			case <-stop:
				return
			default:
			}
			late := rows[i%len(rows)]
			late.AttemptedAt = late.AttemptedAt.Add(time.Duration(i%3-1) * time.Second)
			if late.FileEvents != nil {
				late.FileEvents = slices.Clone(late.FileEvents)
				for j := range late.FileEvents {
					late.FileEvents[j].EventID = events.EventID("acme", "late", fmt.Sprint(i, "-", j)).String()
				}
			} else {
				late.EventID = events.EventID("acme", "late", fmt.Sprint(i)).String()
			}
			if err := e.writer.Write(t.Context(), late); err != nil {
				return
			}
		}
	}()
	seen := map[string]int{}
	pages := 0
	for path := BasePath + "?limit=7"; path != ""; pages++ {
		p := e.page(path, tok)
		for _, r := range p.rows {
			seen[r.EntityID]++
		}
		path = p.next
	}
	close(stop)
	wg.Wait()
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("event %s seen %d times", id, n)
		}
	}
	if e.writer.Written() <= int64(len(rows)) {
		t.Errorf("no rows were inserted while paging (%d pages): the test proves nothing", pages)
	}
}
