package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// planRows loads days of attempts for several tenants (enough that the
// planner's choices mean something) through the real attempt writer, and
// analyzes the table.
func planRows(t *testing.T, db *testenv.DB, days, perDay, tenants int) {
	t.Helper()
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{Retention: -1, BatchSize: 5000, QueueSize: 20000})
	stop := testenv.Start(t, "attempt writer", w.Run)
	names := events.Names()
	rows := make([]catalog.Attempt, 0, 5000)
	n := 0
	flush := func() {
		if err := w.Write(context.Background(), rows...); err != nil {
			t.Fatal(err)
		}
		n += len(rows)
		rows = rows[:0]
	}
	for d := range days {
		for i := range perDay {
			for tn := range tenants {
				k := d*perDay + i
				name := names[k%len(names)]
				et, _ := events.EntityType(name)
				a := catalog.Attempt{Tenant: fmt.Sprintf("tenant-%d", tn), IntegrationID: fmt.Sprintf("int-%d", k%10),
					IntegrationType: "permanent", Target: catalog.TargetWebhook, Status: catalog.AttemptSuccess,
					AttemptedAt:      base.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*(24*time.Hour/time.Duration(perDay))),
					RetriesRemaining: 10, EventID: events.EventID("t", name, fmt.Sprint(k, "-", tn)).String(),
					DomainEntityID: fmt.Sprintf("ent-%d", k%5000), DomainEntityType: et, EventName: name,
					URL: "https://example.com/hook", ResponseCode: 200, ResponseTimeMS: k % 300}
				if k%50 == 0 {
					a.Status, a.ResponseCode = catalog.AttemptFailure, 503
				}
				if rows = append(rows, a); len(rows) == cap(rows) {
					flush()
				}
			}
		}
	}
	flush()
	testenv.WaitFor(t, 2*time.Minute, "the rows to be written", func() bool { return w.Written() == int64(n) })
	stop()
	if _, err := db.Pool.Exec(context.Background(), "ANALYZE publish_attempts"); err != nil {
		t.Fatal(err)
	}
}

// planNode is the part of EXPLAIN (FORMAT JSON) the assertions read.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

func (p planNode) walk(f func(planNode)) {
	f(p)
	for _, c := range p.Plans {
		c.walk(f)
	}
}

// explain returns the plan the store's queries run with: generic (see
// OpenPool), the statement prepared and executed with args, so partitions
// are pruned at executor start (EXPLAIN EXECUTE shows what is left).
func explain(t *testing.T, db *testenv.DB, sql string, args []any) planNode {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Conn().Prepare(ctx, "explained", sql); err != nil {
		t.Fatalf("preparing %s: %v", sql, err)
	}
	defer conn.Exec(ctx, "DEALLOCATE explained") //nolint:errcheck // the connection goes back to a test pool
	lits := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			lits[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case time.Time:
			lits[i] = "'" + v.UTC().Format(time.RFC3339Nano) + "'"
		case int, int64:
			lits[i] = fmt.Sprint(v)
		default:
			t.Fatalf("no literal for %T", a)
		}
	}
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	var raw []byte
	if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) EXECUTE explained("+strings.Join(lits, ", ")+")", pgx.QueryExecModeSimpleProtocol).Scan(&raw); err != nil {
		t.Fatalf("explaining %s: %v", sql, err)
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
		t.Fatalf("decoding plan %s: %v", raw, err)
	}
	return out[0].Plan
}

// Every filter alone and every pair is answered by index scans on the
// partitions of the time window only (the list's page query, the export's
// query and the summary's aggregate all share the WHERE clause).
func TestQueryPlansUseIndexesAndPrunePartitions(t *testing.T) {
	db := testenv.NewDB(t)
	planRows(t, db, 6, 1200, 10) // 72,000 rows, six day partitions, ten tenants
	day := base.Add(2 * 24 * time.Hour)
	filters := []struct {
		param, value string
	}{
		{"from", day.Format(time.RFC3339)},
		{"to", day.Add(24 * time.Hour).Format(time.RFC3339)},
		{"event_name", "order.created"},
		{"integration_id", "int-3"},
		{"status", "failure"},
		{"status", "success"},
		{"domain_entity_id", "ent-42"},
		{"domain_entity_type", "customer"},
	}
	type tc struct {
		name string
		v    url.Values
	}
	var cases []tc
	for i, a := range filters {
		cases = append(cases, tc{a.param + "=" + a.value, url.Values{a.param: {a.value}}})
		for _, b := range filters[i+1:] {
			if a.param == b.param {
				continue
			}
			cases = append(cases, tc{a.param + "=" + a.value + "&" + b.param + "=" + b.value, url.Values{a.param: {a.value}, b.param: {b.value}}})
		}
	}
	window := []string{"publish_attempts_p" + day.Format("20060102")}
	// The writer also keeps today's and the next days' partitions, empty
	// here: the planner rightly reads an empty table without an index.
	empty := map[string]bool{}
	rows, err := db.Pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'publish_attempts' AND c.reltuples <= 0`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		empty[n] = true
	}
	if len(empty) > 3 {
		t.Fatalf("empty partitions %v: the fixture did not fill the days", names)
	}
	for _, c := range cases {
		for _, windowed := range []bool{false, true} {
			v := url.Values{}
			for k, x := range c.v {
				v[k] = x
			}
			name := c.name
			if windowed {
				v.Set("from", day.Format(time.RFC3339))
				v.Set("to", day.Add(24*time.Hour).Format(time.RFC3339))
				name += " in one day"
			}
			t.Run(name, func(t *testing.T) {
				q, err := ParseQuery(v, true)
				if err != nil {
					t.Fatal(err)
				}
				for _, page := range []string{"first page", "later page"} {
					if page == "later page" {
						q.After = &Cursor{AttemptedAt: day.Add(12 * time.Hour), ID: 1 << 40}
					}
					sql, args := listSQL("tenant-1", q, q.Limit+1)
					plan := explain(t, db, sql, args)
					checkPlan(t, page, plan, windowed, window, empty)
				}
				sql, args := summarySQL("tenant-1", q.Filter, time.Hour)
				checkPlan(t, "summary", explain(t, db, sql, args), windowed, window, empty)
			})
		}
	}
}

func checkPlan(t *testing.T, what string, plan planNode, windowed bool, window []string, empty map[string]bool) {
	t.Helper()
	var scans []string
	indexed := false
	plan.walk(func(n planNode) {
		switch n.NodeType {
		case "Seq Scan":
			if empty[n.RelationName] && !windowed {
				return // an empty partition; a windowed query must not touch it at all
			}
			t.Errorf("%s: sequential scan of %s", what, n.RelationName)
		case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
			indexed = true
		}
		if n.RelationName != "" {
			scans = append(scans, n.RelationName)
		}
	})
	if !indexed && len(scans) > 0 {
		// (No scan at all is fine: a filter nothing can match, such as an
		// event name with another entity type, reads nothing.)
		t.Errorf("%s: no index in the plan", what)
	}
	if windowed {
		for _, s := range scans {
			if !slices.Contains(window, s) {
				t.Errorf("%s: scans partition %s outside the window %v", what, s, window)
			}
		}
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(plan, "", " ")
		t.Logf("%s plan:\n%s", what, strings.TrimSpace(string(b)))
	}
}

// fileRows adds, for each tenant and day of planRows, S3 files stored as
// rows of many events (as the S3 sink writes them since issue 11).
func fileRows(t *testing.T, db *testenv.DB, days, files, perFile, tenants int) {
	t.Helper()
	w := catalog.NewAttemptWriter(db.Pool, catalog.AttemptWriterConfig{Retention: -1})
	stop := testenv.Start(t, "attempt writer", w.Run)
	names := events.Names()
	var rows []catalog.Attempt
	for d := range days {
		for f := range files {
			for tn := range tenants {
				r := catalog.Attempt{Tenant: fmt.Sprintf("tenant-%d", tn), IntegrationID: "s3-1", IntegrationType: "permanent",
					Target: catalog.TargetS3, Status: catalog.AttemptSuccess, RetriesRemaining: 10,
					AttemptedAt: base.Add(time.Duration(d)*24*time.Hour + time.Duration(f)*(24*time.Hour/time.Duration(files))),
					Filename:    fmt.Sprintf("exports/%d/%d.export", d, f)}
				for i := range perFile {
					k := (d*files+f)*perFile + i
					name := names[k%len(names)]
					et, _ := events.EntityType(name)
					r.FileEvents = append(r.FileEvents, catalog.FileEvent{EventID: events.EventID("t", name, fmt.Sprint("f", k, "-", tn)).String(),
						DomainEntityID: fmt.Sprintf("file-ent-%d", k), DomainEntityType: et, EventName: name})
				}
				rows = append(rows, r)
			}
		}
	}
	if err := w.Write(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "the file rows to be written", func() bool { return w.Written() == int64(len(rows)) })
	stop()
	if _, err := db.Pool.Exec(context.Background(), "ANALYZE publish_attempts"); err != nil {
		t.Fatal(err)
	}
}

// With S3 files stored as rows of many events next to the per-event rows,
// a filter on a per-event value finds the files through the GIN index of
// their arrays (migration 0005), not by reading every file of the tenant.
func TestFileRowPlansUseTheArrayIndex(t *testing.T) {
	db := testenv.NewDB(t)
	planRows(t, db, 4, 1200, 10)
	fileRows(t, db, 4, 24, 200, 10)
	day := base.Add(2 * 24 * time.Hour)
	window := []string{"publish_attempts_p" + day.Format("20060102")}
	rows, err := db.Pool.Query(context.Background(), `SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin%'`)
	if err != nil {
		t.Fatal(err)
	}
	gin, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// The writer's partitions of today and ahead are empty.
	rows, err = db.Pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'publish_attempts' AND c.reltuples <= 0`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	empty := map[string]bool{}
	for _, n := range names {
		empty[n] = true
	}
	for _, c := range []struct {
		v   url.Values
		gin bool // else another index may do: the integration's index finds its few files as well
	}{
		{url.Values{"domain_entity_id": {"file-ent-4242"}}, true},
		{url.Values{"event_name": {"order.created"}}, true},
		{url.Values{"domain_entity_type": {"customer"}}, true},
		{url.Values{"event_name": {"order.created"}, "status": {"success"}}, true},
		{url.Values{"domain_entity_id": {"file-ent-4242"}, "integration_id": {"s3-1"}}, false},
	} {
		for _, windowed := range []bool{false, true} {
			v := url.Values{}
			for k, x := range c.v {
				v[k] = x
			}
			name := c.v.Encode()
			if windowed {
				v.Set("from", day.Format(time.RFC3339))
				v.Set("to", day.Add(24*time.Hour).Format(time.RFC3339))
				name += " in one day"
			}
			t.Run(name, func(t *testing.T) {
				pq, err := ParseQuery(v, true)
				if err != nil {
					t.Fatal(err)
				}
				list, listArgs := listSQL("tenant-1", pq, pq.Limit+1)
				summary, summaryArgs := summarySQL("tenant-1", pq.Filter, time.Hour)
				for _, q := range []struct {
					what, sql string
					args      []any
				}{{"list", list, listArgs}, {"summary", summary, summaryArgs}} {
					plan := explain(t, db, q.sql, q.args)
					checkPlan(t, q.what, plan, windowed, window, empty)
					usesGIN := false
					plan.walk(func(n planNode) { usesGIN = usesGIN || slices.Contains(gin, n.IndexName) })
					if c.gin && !usesGIN {
						b, _ := json.MarshalIndent(plan, "", " ")
						t.Errorf("%s: file rows not found through the GIN index; plan:\n%s", q.what, b)
					}
				}
			})
		}
	}
}
