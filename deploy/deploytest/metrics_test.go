package deploytest

import (
	"bufio"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/eventstream/eventstream/pkg/telemetry"
)

// instrument is an OpenTelemetry instrument created somewhere in the
// services' code: meter.<Kind>("name", ..., metric.WithUnit("unit")).
type instrument struct {
	kind, name, unit, at string
}

var instrumentKinds = []string{
	"Int64Counter", "Float64Counter", "Int64UpDownCounter", "Float64UpDownCounter",
	"Int64Histogram", "Float64Histogram", "Int64Gauge", "Float64Gauge",
	"Int64ObservableCounter", "Float64ObservableCounter", "Int64ObservableUpDownCounter",
	"Float64ObservableUpDownCounter", "Int64ObservableGauge", "Float64ObservableGauge",
}

// codeInstruments finds every instrument the services create, by parsing the
// Go source of services/ and pkg/ (tests excluded): the names are gathered
// from the code, not written down here, so a renamed metric breaks the
// dashboard test instead of a dashboard panel.
func codeInstruments(t *testing.T) []instrument {
	t.Helper()
	var out []instrument
	fset := token.NewFileSet()
	for _, dir := range []string{"services", "pkg"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			consts := stringConsts(f)
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !slices.Contains(instrumentKinds, sel.Sel.Name) {
					return true
				}
				name, ok := stringValue(call.Args[0], consts)
				if !ok {
					t.Errorf("%s: instrument name is not a string constant", fset.Position(call.Pos()))
					return true
				}
				in := instrument{kind: sel.Sel.Name, name: name, at: fset.Position(call.Pos()).String()}
				for _, a := range call.Args[1:] {
					if c, ok := a.(*ast.CallExpr); ok {
						if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "WithUnit" && len(c.Args) == 1 {
							in.unit, _ = stringValue(c.Args[0], consts)
						}
					}
				}
				out = append(out, in)
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatal("no instruments found in services/ and pkg/")
	}
	return out
}

func stringConsts(f *ast.File) map[string]string {
	m := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if v, ok := stringValue(vs.Values[i], nil); ok {
						m[n.Name] = v
					}
				}
			}
		}
	}
	return m
}

func stringValue(e ast.Expr, consts map[string]string) (string, bool) {
	switch v := e.(type) {
	case *ast.BasicLit:
		if v.Kind == token.STRING {
			s, err := strconv.Unquote(v.Value)
			return s, err == nil
		}
	case *ast.Ident:
		s, ok := consts[v.Name]
		return s, ok
	}
	return "", false
}

var (
	exportedOnce  sync.Once
	exportedNames map[string]string // Prometheus series name → where the instrument is created
	exportedErr   error
)

// exportedMetrics returns the Prometheus series names the services expose at
// /metrics: each instrument found in the code is created on the exporter the
// services use (pkg/telemetry), recorded once and scraped, so the names follow
// the exporter's own translation (dots to underscores, unit suffixes such as
// _seconds and _bytes, _total on counters, _bucket/_sum/_count on histograms),
// plus the Go and process collectors telemetry registers.
func exportedMetrics(t *testing.T) map[string]string {
	t.Helper()
	exportedOnce.Do(func() {
		ins := codeInstruments(t)
		tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "deploytest", SampleRatio: 1})
		if err != nil {
			exportedErr = err
			return
		}
		meter := otel.Meter("github.com/eventstream/eventstream/deploy/deploytest")
		ctx := context.Background()
		origin := map[string]string{}
		for _, in := range ins {
			origin[in.name] = in.at
			unit := metric.WithUnit(in.unit)
			switch in.kind {
			case "Int64Counter":
				c, _ := meter.Int64Counter(in.name, unit)
				c.Add(ctx, 1)
			case "Float64Counter":
				c, _ := meter.Float64Counter(in.name, unit)
				c.Add(ctx, 1)
			case "Int64UpDownCounter":
				c, _ := meter.Int64UpDownCounter(in.name, unit)
				c.Add(ctx, 1)
			case "Float64UpDownCounter":
				c, _ := meter.Float64UpDownCounter(in.name, unit)
				c.Add(ctx, 1)
			case "Int64Histogram":
				h, _ := meter.Int64Histogram(in.name, unit)
				h.Record(ctx, 1)
			case "Float64Histogram":
				h, _ := meter.Float64Histogram(in.name, unit)
				h.Record(ctx, 1)
			case "Int64Gauge":
				g, _ := meter.Int64Gauge(in.name, unit)
				g.Record(ctx, 1)
			case "Float64Gauge":
				g, _ := meter.Float64Gauge(in.name, unit)
				g.Record(ctx, 1)
			case "Int64ObservableCounter":
				_, _ = meter.Int64ObservableCounter(in.name, unit, metric.WithInt64Callback(observeInt))
			case "Int64ObservableUpDownCounter":
				_, _ = meter.Int64ObservableUpDownCounter(in.name, unit, metric.WithInt64Callback(observeInt))
			case "Int64ObservableGauge":
				_, _ = meter.Int64ObservableGauge(in.name, unit, metric.WithInt64Callback(observeInt))
			case "Float64ObservableCounter":
				_, _ = meter.Float64ObservableCounter(in.name, unit, metric.WithFloat64Callback(observeFloat))
			case "Float64ObservableUpDownCounter":
				_, _ = meter.Float64ObservableUpDownCounter(in.name, unit, metric.WithFloat64Callback(observeFloat))
			case "Float64ObservableGauge":
				_, _ = meter.Float64ObservableGauge(in.name, unit, metric.WithFloat64Callback(observeFloat))
			}
		}
		rec := httptest.NewRecorder()
		tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		exportedNames = map[string]string{}
		sc := bufio.NewScanner(rec.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			name := l[:strings.IndexAny(l, "{ ")]
			exportedNames[name] = "the Go/process collectors or the OpenTelemetry exporter"
			for otelName, at := range origin {
				if strings.HasPrefix(name, strings.NewReplacer(".", "_", "-", "_").Replace(otelName)) {
					exportedNames[name] = at
				}
			}
		}
		_ = tel.Shutdown(ctx)
	})
	if exportedErr != nil {
		t.Fatal(exportedErr)
	}
	return exportedNames
}

func observeInt(_ context.Context, o metric.Int64Observer) error     { o.Observe(1); return nil }
func observeFloat(_ context.Context, o metric.Float64Observer) error { o.Observe(1); return nil }

// grafanaVars are Grafana's interval variables, replaced by a real duration
// before a query is read (label-value variables sit inside strings).
var grafanaVars = regexp.MustCompile(`\$\{?__(rate_)?interval\}?|\$\{?__range\}?`)

// promqlWords are PromQL keywords and operators that look like identifiers.
var promqlWords = []string{"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
	"group_right", "offset", "bool", "atan2", "inf", "nan", "Inf", "NaN",
	// aggregations, which may be followed by by/without before their "("
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio"}

// metricNames returns the metric names a PromQL expression selects. It is a
// small lexer, not a full parser (the Prometheus module would pull its
// service-discovery dependencies into the workspace): an identifier is a
// metric name unless it is a keyword, a function or aggregation (followed
// by "("), a label (inside {} or the label list of by/without/on/ignoring/
// group_left/group_right) or part of a duration (inside []). Unbalanced
// brackets and unterminated strings are errors.
func metricNames(expr string) ([]string, error) {
	src := grafanaVars.ReplaceAllString(expr, "5m")
	var names, stack []string
	labelList := false // the next "(" opens a label list
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	top := func() string {
		if len(stack) == 0 {
			return ""
		}
		return stack[len(stack)-1]
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("%q: unterminated string", expr)
			}
			i = j + 1
		case c == '#': // comment to end of line
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '(' || c == '{' || c == '[':
			kind := string(c)
			if c == '(' && labelList {
				kind = "labels("
			}
			labelList = false
			stack = append(stack, kind)
			i++
		case c == ')' || c == '}' || c == ']':
			want := map[byte]string{')': "(", '}': "{", ']': "["}[c]
			if t := top(); t != want && !(c == ')' && t == "labels(") {
				return nil, fmt.Errorf("%q: unbalanced %q", expr, c)
			}
			stack = stack[:len(stack)-1]
			i++
		case c >= '0' && c <= '9' || c == '.':
			for i < len(src) && (isIdent(src[i], false) || src[i] == '.') {
				i++
			}
		case isIdent(c, true):
			j := i
			for j < len(src) && isIdent(src[j], false) {
				j++
			}
			word := src[i:j]
			k := j
			for k < len(src) && (src[k] == ' ' || src[k] == '\t' || src[k] == '\n') {
				k++
			}
			switch t := top(); {
			case t == "{" || t == "[" || t == "labels(":
			case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, word):
				labelList = k < len(src) && src[k] == '('
			case slices.Contains(promqlWords, word):
			case k < len(src) && src[k] == '(':
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("%q: unclosed %q", expr, top())
	}
	sort.Strings(names)
	return slices.Compact(names), nil
}

func TestMetricNamesLexer(t *testing.T) {
	cases := map[string][]string{
		`sum(eventstream_consumer_lag{pool="big"})`:                                                 {"eventstream_consumer_lag"},
		`sum by (tenant, outcome) (rate(a_total{outcome=~"x|y"}[$__rate_interval])) / on(tenant) b`: {"a_total", "b"},
		`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m]))) > 1e3 and c offset 1h`:          {"c", "h_bucket"},
		`max without (pod) (g) * 100 unless bool x`:                                                 {"g", "x"},
	}
	for expr, want := range cases {
		got, err := metricNames(expr)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{`sum(a`, `a{b="c}`, `a[5m`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%s) accepted an unbalanced expression", bad)
		}
	}
}
