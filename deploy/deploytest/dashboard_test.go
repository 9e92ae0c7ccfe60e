package deploytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const dashboardFile = "deploy/grafana/dashboards/eventstream.json"

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readRepoFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// query is a PromQL expression and where it is used.
type query struct{ where, expr string }

func dashboardQueries(t *testing.T, d dashboard) []query {
	t.Helper()
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{fmt.Sprintf("%s: panel %q target %s", dashboardFile, p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\(([^,)]+)`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.Query
		if m, ok := q.(map[string]any); ok {
			q = m["query"]
		}
		s, _ := q.(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("%s: variable %s: want label_values(<metric>, <label>), got %q", dashboardFile, v.Name, s)
			continue
		}
		out = append(out, query{fmt.Sprintf("%s: variable %s", dashboardFile, v.Name), m[1]})
	}
	return out
}

// The dashboard is well formed: unique panel ids, every panel on the grid
// with the data source variable, a description (what the panel means) and
// queries that parse.
func TestDashboardWellFormed(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title (provisioning keys on the uid)")
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
			}
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: datasource must be the ${datasource} variable", p.Title)
				}
				if len(p.Targets) == 0 || p.Description == "" {
					t.Errorf("panel %q: needs queries and a description", p.Title)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, q := range dashboardQueries(t, d) {
		if _, err := metricNames(q.expr); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
	}
	// The panels: lag in records and seconds by pool/tenant/integration,
	// publish vs deliver, outcomes, retries, latency percentiles, S3 sizes and ages.
	all := ""
	for _, q := range dashboardQueries(t, d) {
		all += q.expr + "\n"
	}
	for _, want := range []string{"eventstream_consumer_lag{", "eventstream_consumer_lag_seconds{", "by (pool, tenant, integration)",
		"eventstream_ingest_events_total", `outcome="delivered"`, "histogram_quantile(0.99", "eventstream_delivery_s3_bytes_total",
		"eventstream_delivery_s3_file_age_seconds_bucket", `outcome="failed"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no dashboard query contains %q", want)
		}
	}
}

// Every metric a dashboard panel, an alert or the KEDA trigger names must be
// one the services export (gathered from the code: see exportedMetrics). A
// failure here names a metric the binaries do not export yet, or a typo.
func TestQueriesUseExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	queries := dashboardQueries(t, loadDashboard(t))
	for _, r := range alertRules(t, readRepoFile(t, "deploy/prometheus/alerts.yml")) {
		queries = append(queries, query{"deploy/prometheus/alerts.yml: alert " + r.Alert, r.Expr})
	}
	c := loadChart(t)
	files, err := render(t, c, values(t, "examples/two-pools-keda.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, files)
	for _, r := range o.rules {
		for _, e := range ruleExprs(t, r) {
			queries = append(queries, query{"helm PrometheusRule: alert " + e.alert, e.expr})
		}
	}
	for _, so := range o.scaledObjs {
		triggers, _, _ := unstructured.NestedSlice(so.Object, "spec", "triggers")
		for _, tr := range triggers {
			md, _ := tr.(map[string]any)["metadata"].(map[string]any)
			q, _ := md["query"].(string)
			queries = append(queries, query{"helm ScaledObject " + so.GetName(), q})
		}
	}
	missing := map[string][]string{}
	for _, q := range queries {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		for _, n := range names {
			if _, ok := exported[n]; !ok {
				missing[n] = append(missing[n], q.where)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(missing)) {
		fmt.Fprintf(&b, "\n  %s, used by:", n)
		for _, w := range slices.Compact(missing[n]) {
			fmt.Fprintf(&b, "\n      %s", w)
		}
	}
	var have []string
	for n := range exported {
		if strings.HasPrefix(n, "eventstream_") || strings.HasPrefix(n, "http_") {
			have = append(have, n)
		}
	}
	slices.Sort(have)
	t.Errorf("queries name metrics the services do not export (README.md, \"Metrics and alerts\", lists what each must be):%s\n\nexported eventstream and http metrics:\n  %s",
		b.String(), strings.Join(have, "\n  "))
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func alertRules(t *testing.T, doc []byte) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(doc, &f); err != nil {
		t.Fatalf("alert rules: %v", err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no alert rules")
	}
	return out
}

// docker compose's Prometheus alerts are the chart's PrometheusRule with its
// default thresholds, so the two never drift.
func TestComposeAlertsMatchChart(t *testing.T) {
	c := loadChart(t)
	files, err := render(t, c, values(t, "ci/default-values.yaml", "metrics: {prometheusRule: {enabled: true}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, files)
	if len(o.rules) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(o.rules))
	}
	spec, _, _ := unstructured.NestedFieldNoCopy(o.rules[0].Object, "spec")
	b, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	chartRules := alertRules(t, b)
	composeRules := alertRules(t, readRepoFile(t, "deploy/prometheus/alerts.yml"))
	norm := func(rs []alertRule) string {
		for i := range rs {
			rs[i].Expr = strings.Join(strings.Fields(rs[i].Expr), " ")
		}
		j, _ := json.MarshalIndent(rs, "", " ")
		return string(j)
	}
	if a, b := norm(chartRules), norm(composeRules); a != b {
		t.Errorf("deploy/prometheus/alerts.yml differs from the chart's PrometheusRule (regenerate it with helm template ... -s templates/prometheusrule.yaml):\nchart:\n%s\ncompose:\n%s", a, b)
	}
}
