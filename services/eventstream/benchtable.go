package eventstream

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
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

// BenchRun is what ParseBench read from one `go test -bench` output.
type BenchRun struct {
	Results []BenchResult
	Units   []string // every unit, in table order
	// Failed: a benchmark or a package failed (or panicked).
	Failed bool
	// FailedNames are the benchmarks reported by a "--- FAIL:" line.
	FailedNames []BenchName
	// Unfinished are benchmarks whose name go test printed but whose result
	// line never came or could not be read.
	Unfinished []BenchName
	// Recovered counts result lines put back together after something
	// (service logs, typically) was printed between a benchmark's name and
	// its figures.
	Recovered int
}

// BenchName is a benchmark as go test printed it, within its package.
type BenchName struct{ Package, Name string }

func (n BenchName) String() string { return n.Package + " " + n.Name }

// ParseBench reads `go test -bench` output: result lines, the "pkg:" lines
// that say which package the following results belong to, and failures.
//
// The testing package prints a benchmark's name, runs it, then prints its
// figures on the same line. Anything else the test binary writes meanwhile
// (its stderr is merged into the same stream) splits that line:
//
//	BenchmarkX-2   	time=... level=INFO msg=...
//	time=... level=INFO msg=...
//	       1	 123 ns/op	 456 events/s
//
// A name without figures opens a pending benchmark; a line of figures only,
// while one is pending, is its result. A pending benchmark that never gets
// one is reported in Unfinished, never dropped silently.
func ParseBench(r io.Reader) (*BenchRun, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	run := &BenchRun{}
	seen := map[string]bool{}
	pkg := ""
	var pending *BenchName
	settle := func() { // the pending benchmark got no result
		if pending != nil {
			run.Unfinished = append(run.Unfinished, *pending)
			pending = nil
		}
	}
	add := func(name string, f []string) {
		res := BenchResult{Package: pkg, Name: name, N: f[0], Metrics: map[string]string{}}
		for i := 1; i+1 < len(f); i += 2 {
			unit := f[i+1]
			res.Metrics[unit] = f[i]
			if !seen[unit] {
				seen[unit] = true
				run.Units = append(run.Units, unit)
			}
		}
		run.Results = append(run.Results, res)
	}
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "pkg: "):
			settle()
			pkg = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "pkg: ")), modulePrefix)
		case strings.HasPrefix(line, "--- FAIL"):
			run.Failed = true
			if len(f) >= 3 {
				name := BenchName{pkg, f[2]}
				run.FailedNames = append(run.FailedNames, name)
				if pending != nil && *pending == name {
					pending = nil
				}
			}
		case strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "panic: "):
			run.Failed = true
		case strings.HasPrefix(line, "Benchmark") && len(f) > 0:
			if isFigures(f[1:]) {
				if pending != nil && pending.Name != f[0] {
					settle()
				}
				pending = nil
				add(f[0], f[1:])
				break
			}
			// The name alone (go test prints it before a benchmark's
			// b.Log output), or the name and then something else.
			if pending != nil && pending.Name != f[0] {
				settle()
			}
			pending = &BenchName{pkg, f[0]}
		case pending != nil && isFigures(f):
			add(pending.Name, f)
			pending = nil
			run.Recovered++
		}
	}
	settle()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading benchmark output: %w", err)
	}
	run.Unfinished = slices.DeleteFunc(run.Unfinished, func(n BenchName) bool { return run.hasChildOf(n) })
	run.Units = orderUnits(run.Units)
	return run, nil
}

// hasChildOf reports whether a sub-benchmark of n has a result: a parent
// benchmark prints its name (when it logs) but never figures of its own.
func (r *BenchRun) hasChildOf(n BenchName) bool {
	prefix := trimProcs(n.Name) + "/"
	for _, res := range r.Results {
		if res.Package == n.Package && strings.HasPrefix(res.Name, prefix) {
			return true
		}
	}
	return false
}

// isFigures reports whether f is a benchmark's figures: an iteration count,
// then value/unit pairs with numeric values.
func isFigures(f []string) bool {
	if len(f) < 3 || len(f)%2 != 1 || !isCount(f[0]) {
		return false
	}
	for i := 1; i < len(f); i += 2 {
		if _, err := strconv.ParseFloat(f[i], 64); err != nil {
			return false
		}
	}
	return true
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

// trimProcs removes the -GOMAXPROCS suffix go test appends to a name
// ("BenchmarkX-2" is BenchmarkX); without the suffix (GOMAXPROCS=1) the name
// is returned as it is.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || !isCount(name[i+1:]) {
		return name
	}
	return name[:i]
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

// ErrBenchMissing means a benchmark has no row in the table: it ran but its
// result line could not be read, or (with an expected list) it never ran.
var ErrBenchMissing = errors.New("benchmarks without a row in the table")

// BenchTable prints the results of `go test -bench` output read from in as a
// table: one row per benchmark, one column per metric unit (every
// b.ReportMetric unit plus ns/op and allocations), "-" where a benchmark did
// not report a unit. Below the table it names every benchmark without a row,
// and then returns ErrBenchMissing: a benchmark whose name was printed but
// whose figures never came, and, when expect is not nil, every function of
// expect without a result (skipped, crashed, or never run). A failure in the
// input returns ErrBenchFailed.
func BenchTable(in io.Reader, out io.Writer, expect []BenchFunc) error {
	run, err := ParseBench(in)
	if err != nil {
		return err
	}
	if len(run.Results) == 0 {
		fmt.Fprintln(out, "no benchmark results")
	} else {
		rows := [][]string{append([]string{"package", "benchmark", "n"}, run.Units...)}
		for _, r := range run.Results {
			row := []string{r.Package, r.Name, r.N}
			for _, u := range run.Units {
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
	if run.Recovered > 0 {
		fmt.Fprintf(out, "\n%d result line(s) were split by other output and put back together; see the raw output\n", run.Recovered)
	}
	missing := MissingBenchmarks(run, expect)
	if len(missing) > 0 {
		fmt.Fprintf(out, "\n%d benchmark(s) without a row:\n", len(missing))
		for _, m := range missing {
			fmt.Fprintf(out, "  %s\n", m)
		}
	}
	switch {
	case run.Failed:
		return ErrBenchFailed
	case len(missing) > 0:
		return fmt.Errorf("%d %w", len(missing), ErrBenchMissing)
	}
	return nil
}

// MissingBenchmarks lists, one line each with the reason, the benchmarks of
// run that printed no readable result, and the functions of expect with no
// result in run.
func MissingBenchmarks(run *BenchRun, expect []BenchFunc) []string {
	var missing []string
	reported := map[BenchFunc]bool{}
	for _, n := range run.Unfinished {
		reported[BenchFunc{n.Package, funcName(n.Name)}] = true
		missing = append(missing, n.String()+": its name was printed, its result line never came or could not be read")
	}
	has := map[BenchFunc]bool{}
	for _, r := range run.Results {
		has[BenchFunc{r.Package, funcName(r.Name)}] = true
	}
	failed := map[BenchFunc]bool{}
	for _, n := range run.FailedNames {
		failed[BenchFunc{n.Package, funcName(n.Name)}] = true
	}
	for _, f := range expect {
		switch {
		case has[f], reported[f]:
		case failed[f]:
			missing = append(missing, f.String()+": failed")
		default:
			missing = append(missing, f.String()+": no result (skipped, crashed, or its package did not run)")
		}
	}
	return missing
}

// funcName is the function a printed benchmark name belongs to:
// "BenchmarkIngest/batch500-2" is BenchmarkIngest's.
func funcName(printed string) string {
	name, _, _ := strings.Cut(trimProcs(printed), "/")
	return name
}

// runBenchTable is `eventstream benchtable [--expect DIR]`.
func runBenchTable(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("expect", "", "fail unless every func Benchmark* in the Go test files under this folder has a row")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	var expect []BenchFunc
	if *root != "" {
		var err error
		if expect, err = ListBenchmarks(*root); err != nil {
			return err
		}
	}
	return BenchTable(stdin, stdout, expect)
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
