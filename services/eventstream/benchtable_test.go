package eventstream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sampleBench = `goos: linux
goarch: amd64
pkg: github.com/eventstream/eventstream/services/ingest
cpu: AMD EPYC
BenchmarkIngest/single-2         	   20000	     61234 ns/op	     16330 events/s	         0.8100 p50_ms	         2.400 p99_ms
BenchmarkIngest/batch500-2
    bench_test.go:42: warming up
BenchmarkIngest/batch500-2       	      40	  25000000 ns/op	     20000 events/s	         0.6100 ratio	  1234 B/op	  12 allocs/op
PASS
ok  	github.com/eventstream/eventstream/services/ingest	12.345s
goos: linux
pkg: github.com/eventstream/eventstream/services/delivery/s3sink
BenchmarkS3-2   	       1	1000000000 ns/op	        85.50 MB/s	       140.0 peak_rss_MB
PASS
ok  	github.com/eventstream/eventstream/services/delivery/s3sink	3.1s
`

func TestParseBench(t *testing.T) {
	run, err := ParseBench(strings.NewReader(sampleBench))
	if err != nil {
		t.Fatal(err)
	}
	if run.Failed || len(run.Unfinished) > 0 || run.Recovered != 0 {
		t.Errorf("failed=%v unfinished=%v recovered=%d for a clean passing run", run.Failed, run.Unfinished, run.Recovered)
	}
	wantUnits := []string{"ns/op", "events/s", "p50_ms", "p99_ms", "ratio", "MB/s", "peak_rss_MB", "B/op", "allocs/op"}
	if strings.Join(run.Units, ",") != strings.Join(wantUnits, ",") {
		t.Errorf("units = %v, want %v", run.Units, wantUnits)
	}
	res := run.Results
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3 (the name-only header line is not a result): %+v", len(res), res)
	}
	tests := []struct {
		i             int
		pkg, name, n  string
		unit, value   string
		missingMetric string
	}{
		{0, "services/ingest", "BenchmarkIngest/single-2", "20000", "p99_ms", "2.400", "ratio"},
		{1, "services/ingest", "BenchmarkIngest/batch500-2", "40", "ratio", "0.6100", "p50_ms"},
		{2, "services/delivery/s3sink", "BenchmarkS3-2", "1", "peak_rss_MB", "140.0", "events/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := res[tt.i]
			if r.Package != tt.pkg || r.Name != tt.name || r.N != tt.n {
				t.Errorf("got %s %s %s, want %s %s %s", r.Package, r.Name, r.N, tt.pkg, tt.name, tt.n)
			}
			if r.Metrics[tt.unit] != tt.value {
				t.Errorf("%s = %q, want %q", tt.unit, r.Metrics[tt.unit], tt.value)
			}
			if _, ok := r.Metrics[tt.missingMetric]; ok {
				t.Errorf("%s reported though the benchmark did not", tt.missingMetric)
			}
		})
	}
}

// TestParseBenchSplitByLogs reads output recorded in the shape `make bench`
// produced when services logged to stderr during a benchmark: the result
// lines of two benchmarks are split by log lines.
func TestParseBenchSplitByLogs(t *testing.T) {
	f, err := os.Open("testdata/bench-interleaved.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run, err := ParseBench(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range run.Results {
		names = append(names, r.Name)
	}
	want := []string{"BenchmarkDeliveryVsRawHTTP-2", "BenchmarkPublishToReceiptLatency-2", "BenchmarkSlowEndpointLittlesLaw-2"}
	if !slices.Equal(names, want) {
		t.Fatalf("results %v, want %v", names, want)
	}
	if got := run.Results[0].Metrics; got["ratio"] != "0.5105" || got["events/s"] != "12104" || got["allocs/op"] != "512034" {
		t.Errorf("recovered metrics of the split line: %v", got)
	}
	if run.Results[1].Metrics["p99_ms"] != "15.80" || run.Results[1].N != "1" {
		t.Errorf("second split line: %+v", run.Results[1])
	}
	if run.Recovered != 2 || len(run.Unfinished) != 0 {
		t.Errorf("recovered %d (want 2), unfinished %v", run.Recovered, run.Unfinished)
	}
}

func TestBenchTable(t *testing.T) {
	var out strings.Builder
	if err := BenchTable(strings.NewReader(sampleBench), &out, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows, got:\n%s", out.String())
	}
	header := strings.Fields(lines[0])
	want := []string{"package", "benchmark", "n", "ns/op", "events/s", "p50_ms", "p99_ms", "ratio", "MB/s", "peak_rss_MB", "B/op", "allocs/op"}
	if strings.Join(header, " ") != strings.Join(want, " ") {
		t.Errorf("header = %v, want %v", header, want)
	}
	// Every row has one cell per column, "-" where the benchmark had no value.
	for _, l := range lines[1:] {
		if n := len(strings.Fields(l)); n != len(want) {
			t.Errorf("row has %d cells, want %d: %q", n, len(want), l)
		}
	}
	row := strings.Fields(lines[3])
	if row[1] != "BenchmarkS3-2" || row[8] != "85.50" || row[9] != "140.0" || row[4] != "-" {
		t.Errorf("s3 row = %v", row)
	}
	// Columns line up: every line has the same length (numbers right-aligned).
	for _, l := range lines[1:] {
		if len(l) != len(lines[0]) {
			t.Errorf("misaligned row (len %d vs header %d):\n%s", len(l), len(lines[0]), out.String())
			break
		}
	}
}

func TestBenchTableFailures(t *testing.T) {
	tests := map[string]string{
		"failed benchmark": "pkg: x\n--- FAIL: BenchmarkX-2\nFAIL\n",
		"failed package":   "FAIL\tgithub.com/eventstream/eventstream/pkg/x [build failed]\n",
		"panic":            "pkg: x\npanic: boom\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			if err := BenchTable(strings.NewReader(in), &out, nil); !errors.Is(err, ErrBenchFailed) {
				t.Errorf("err = %v, want ErrBenchFailed", err)
			}
		})
	}
	var out strings.Builder
	if err := BenchTable(strings.NewReader("PASS\nok x 1s\n"), &out, nil); err != nil || !strings.Contains(out.String(), "no benchmark results") {
		t.Errorf("empty input: err=%v out=%q", err, out.String())
	}
}

// TestBenchTableNamesUnreadable: a benchmark whose name was printed but
// whose figures never came (or came mangled) fails the table, by name.
func TestBenchTableNamesUnreadable(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"name then logs then the next package",
			"pkg: github.com/eventstream/eventstream/services/a\nBenchmarkA-2   \tlevel=INFO msg=hi\nlevel=INFO msg=bye\nPASS\npkg: github.com/eventstream/eventstream/services/b\nBenchmarkB-2 \t 1\t 5 ns/op\n",
			"services/a BenchmarkA-2"},
		{"figures mangled by a log line",
			"pkg: p\nBenchmarkA-2   \t       1\t level=INFO msg=x 5 ns/op\nBenchmarkB-2 \t 1\t 5 ns/op\n",
			"p BenchmarkA-2"},
		{"name at the end of the output", "pkg: p\nBenchmarkB-2 \t 1\t 5 ns/op\nBenchmarkA-2\t", "p BenchmarkA-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := BenchTable(strings.NewReader(tt.in), &out, nil)
			if !errors.Is(err, ErrBenchMissing) {
				t.Errorf("err = %v, want ErrBenchMissing", err)
			}
			if !strings.Contains(out.String(), "without a row:\n  "+tt.want+": its name was printed") {
				t.Errorf("the table does not name %s:\n%s", tt.want, out.String())
			}
			if !strings.Contains(out.String(), "BenchmarkB-2") {
				t.Errorf("the other benchmark's row is missing:\n%s", out.String())
			}
		})
	}
	// A parent benchmark prints its name but no figures; its sub-benchmarks do.
	var out strings.Builder
	parent := "pkg: p\nBenchmarkP\n    x_test.go:9: setting up\nBenchmarkP/a-2 \t 1\t 5 ns/op\n"
	if err := BenchTable(strings.NewReader(parent), &out, []BenchFunc{{"p", "BenchmarkP"}}); err != nil {
		t.Errorf("parent of sub-benchmarks: %v\n%s", err, out.String())
	}
}

// TestEveryBenchmarkHasARow lists every func Benchmark* in the repository
// and checks that the table of `make bench` has a row for each, even when
// the worst seen happens to every one of them (service logs printed between
// its name and its figures), and that one missing is named.
func TestEveryBenchmarkHasARow(t *testing.T) {
	funcs, err := ListBenchmarks(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, known := range []BenchFunc{
		{"services/delivery", "BenchmarkDeliveryVsRawHTTP"},
		{"services/ingest", "BenchmarkIngestBatch500"},
		{"pkg/ratelimit", "BenchmarkAllow"},
	} {
		if !slices.Contains(funcs, known) {
			t.Errorf("ListBenchmarks missed %s (found %v)", known, funcs)
		}
	}
	output := func(skip BenchFunc) string {
		var b strings.Builder
		pkg := ""
		for _, f := range funcs {
			if f.Package != pkg {
				pkg = f.Package
				fmt.Fprintf(&b, "PASS\nok  \t%s%s\t1.0s\ngoos: linux\npkg: %s%s\n", modulePrefix, pkg, modulePrefix, pkg)
			}
			if f == skip {
				continue
			}
			fmt.Fprintf(&b, "%s-2   \ttime=2026-12-01T10:00:00Z level=INFO msg=\"consumer started\" service=delivery\n", f.Name)
			fmt.Fprintf(&b, "time=2026-12-01T10:00:01Z level=INFO msg=\"consumer stopped\" service=delivery\n")
			fmt.Fprintf(&b, "       1\t  1000 ns/op\t  42.0 events/s\n")
		}
		return b.String()
	}
	var out strings.Builder
	if err := BenchTable(strings.NewReader(output(BenchFunc{})), &out, funcs); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, f := range funcs {
		if !strings.Contains(out.String(), f.Name+"-2 ") {
			t.Errorf("no row for %s:\n%s", f, out.String())
		}
	}

	skip := funcs[len(funcs)/2]
	out.Reset()
	err = BenchTable(strings.NewReader(output(skip)), &out, funcs)
	if !errors.Is(err, ErrBenchMissing) || !strings.Contains(out.String(), "  "+skip.String()+": no result") {
		t.Errorf("%s left out: err=%v\n%s", skip, err, out.String())
	}
}

func TestListBenchmarks(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pkg/go.mod", "module github.com/eventstream/eventstream/pkg\n\ngo 1.26\n")
	write("pkg/ratelimit/r_test.go", `package ratelimit_test
import tt "testing"
func BenchmarkAllow(b *tt.B) {}
func Benchmark(b *tt.B) {}
func Benchmarkallow(b *tt.B) {}   // lower case after Benchmark: not a benchmark
func BenchmarkHelper(n int) {}    // wrong signature
type s struct{}
func (s) BenchmarkMethod(b *tt.B) {}
`)
	write("pkg/ratelimit/r.go", "package ratelimit\nimport \"testing\"\nfunc BenchmarkNotATest(b *testing.B) {}\n")
	write("pkg/ratelimit/testdata/x_test.go", "package x\nfunc BenchmarkIgnored(b *testing.B) {}\n")
	write("services/ingest/go.mod", "module \"github.com/eventstream/eventstream/services/ingest\"\n")
	write("services/ingest/deep/er/i_test.go", "package er\nimport \"testing\"\nfunc BenchmarkDeep(b *testing.B) {}\n")
	write("loose/l_test.go", "package loose\nimport \"testing\"\nfunc BenchmarkOutsideAModule(b *testing.B) {}\n")

	got, err := ListBenchmarks(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []BenchFunc{
		{"pkg/ratelimit", "Benchmark"},
		{"pkg/ratelimit", "BenchmarkAllow"},
		{"services/ingest/deep/er", "BenchmarkDeep"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
