package testenv

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// BenchLogsEnv names the folder that receives the services' logs while
// benchmarks run (one file per test binary); "off" discards them. Unset, they
// go to a folder under the system's temporary directory.
const BenchLogsEnv = "EVENTSTREAM_BENCH_LOGS"

// routeBenchLogs sends the default slog logger (and with it the log
// package's, which slog.SetDefault redirects) to a file when the test binary
// runs benchmarks, and returns what closes that file.
//
// Why: go test merges a test binary's stderr into its stdout, and the testing
// package prints a benchmark's name before running it and its figures after.
// A service logging in between splits the result line in two ("BenchmarkX-2
// <tab>time=... msg=...", then "1 <tab>123 ns/op ..."), and a parser of
// bench output, the `make bench` table included, loses the row. Tests keep
// logging to stderr as before: there, a log line next to a failure helps.
func routeBenchLogs(getenv func(string) string) (closeLogs func()) {
	if !flag.Parsed() {
		flag.Parse()
	}
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		return func() {}
	}
	dir := getenv(BenchLogsEnv)
	if dir == "off" {
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
		return func() {}
	}
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "eventstream-bench-logs")
	}
	path := filepath.Join(dir, benchLogName()+".log")
	f, err := openBenchLog(path)
	if err != nil {
		// Logs on stderr are only a nuisance to the table; a benchmark
		// that cannot run would be worse.
		fmt.Fprintf(os.Stderr, "testenv: %v; service logs stay on stderr\n", err)
		return func() {}
	}
	// Info, the default logger's level: debug lines (one per HTTP request)
	// would cost the benchmarks time they do not cost in production.
	slog.SetDefault(slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})))
	return func() { _ = f.Close() }
}

func openBenchLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the benchmark log folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the benchmark log: %w", err)
	}
	return f, nil
}

// benchLogName names a package's log file after its folder, which is the
// test binary's working directory: services/delivery/s3sink gives
// "delivery-s3sink", pkg/ratelimit "pkg-ratelimit".
func benchLogName() string {
	wd, err := os.Getwd()
	if err != nil {
		return strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	}
	return filepath.Base(filepath.Dir(wd)) + "-" + filepath.Base(wd)
}
