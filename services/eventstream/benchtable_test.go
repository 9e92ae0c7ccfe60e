package eventstream

import (
	"errors"
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
	res, units, failed, err := ParseBench(strings.NewReader(sampleBench))
	if err != nil {
		t.Fatal(err)
	}
	if failed {
		t.Error("failed = true for a passing run")
	}
	wantUnits := []string{"ns/op", "events/s", "p50_ms", "p99_ms", "ratio", "MB/s", "peak_rss_MB", "B/op", "allocs/op"}
	if strings.Join(units, ",") != strings.Join(wantUnits, ",") {
		t.Errorf("units = %v, want %v", units, wantUnits)
	}
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

func TestBenchTable(t *testing.T) {
	var out strings.Builder
	if err := BenchTable(strings.NewReader(sampleBench), &out); err != nil {
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
			if err := BenchTable(strings.NewReader(in), &out); !errors.Is(err, ErrBenchFailed) {
				t.Errorf("err = %v, want ErrBenchFailed", err)
			}
		})
	}
	var out strings.Builder
	if err := BenchTable(strings.NewReader("PASS\nok x 1s\n"), &out); err != nil || !strings.Contains(out.String(), "no benchmark results") {
		t.Errorf("empty input: err=%v out=%q", err, out.String())
	}
}
