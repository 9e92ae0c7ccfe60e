package eventstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// modulePrefix is trimmed from package paths to keep the table narrow.
const modulePrefix = "github.com/eventstream/eventstream/"

// BenchResult is one result line of `go test -bench` output.
type BenchResult struct {
	Package string
	Name    string // as printed, e.g. BenchmarkIngest/batch-2
	N       string // iterations
	// Metrics maps a unit (ns/op, events/s, p99_ms, ...) to the value exactly
	// as go test printed it.
	Metrics map[string]string
}

// ParseBench reads `go test -bench` output: result lines, the "pkg:" lines
// that say which package the following results belong to, and failures.
// It returns the results in order and whether any benchmark or package failed.
func ParseBench(r io.Reader) (results []BenchResult, units []string, failed bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	seen := map[string]bool{}
	pkg := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "pkg: ")), modulePrefix)
			continue
		case strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "panic: "):
			failed = true
			continue
		case !strings.HasPrefix(line, "Benchmark"):
			continue
		}
		f := strings.Fields(line)
		// A result is: name, iterations, then value/unit pairs. A line with
		// only the name is the header go test prints before a benchmark's logs.
		if len(f) < 4 || len(f)%2 != 0 || !isCount(f[1]) {
			continue
		}
		res := BenchResult{Package: pkg, Name: f[0], N: f[1], Metrics: map[string]string{}}
		for i := 2; i+1 < len(f); i += 2 {
			unit := f[i+1]
			res.Metrics[unit] = f[i]
			if !seen[unit] {
				seen[unit] = true
				units = append(units, unit)
			}
		}
		results = append(results, res)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, failed, fmt.Errorf("reading benchmark output: %w", err)
	}
	return results, orderUnits(units), failed, nil
}

func isCount(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// orderUnits puts ns/op first, the custom metrics in the order they first
// appeared, and the allocation figures last.
func orderUnits(units []string) []string {
	tail := map[string]bool{"B/op": true, "allocs/op": true}
	out := make([]string, 0, len(units))
	for _, u := range units {
		if u == "ns/op" {
			out = append(out, u)
		}
	}
	for _, u := range units {
		if u != "ns/op" && !tail[u] {
			out = append(out, u)
		}
	}
	for _, u := range []string{"B/op", "allocs/op"} {
		for _, v := range units {
			if v == u {
				out = append(out, u)
			}
		}
	}
	return out
}

// ErrBenchFailed means the input reported a failed benchmark or package.
var ErrBenchFailed = errors.New("benchmarks failed (see the go test output above the table)")

// BenchTable prints the results of `go test -bench` output read from in as a
// table: one row per benchmark, one column per metric unit (every
// b.ReportMetric unit plus ns/op and allocations), "-" where a benchmark did
// not report a unit.
func BenchTable(in io.Reader, out io.Writer) error {
	results, units, failed, err := ParseBench(in)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		fmt.Fprintln(out, "no benchmark results")
	} else {
		rows := [][]string{append([]string{"package", "benchmark", "n"}, units...)}
		for _, r := range results {
			row := []string{r.Package, r.Name, r.N}
			for _, u := range units {
				v, ok := r.Metrics[u]
				if !ok {
					v = "-"
				}
				row = append(row, v)
			}
			rows = append(rows, row)
		}
		if err := writeTable(out, rows, 2); err != nil {
			return err
		}
	}
	if failed {
		return ErrBenchFailed
	}
	return nil
}

// writeTable prints rows in aligned columns: the first textCols columns
// left-aligned (names), the rest right-aligned (numbers).
func writeTable(out io.Writer, rows [][]string, textCols int) error {
	widths := map[int]int{}
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-len(c))
			if i < textCols {
				b.WriteString(c)
				if i < len(row)-1 {
					b.WriteString(pad)
				}
			} else {
				b.WriteString(pad + c)
			}
		}
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(out, b.String()); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}
