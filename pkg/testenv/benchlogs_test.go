package testenv

import (
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// helperEnv makes TestBenchLogHelper log instead of skipping.
const helperEnv = "TESTENV_BENCH_LOG_HELPER"

// TestBenchLogHelper is the logging "service" of TestBenchLogsLeaveOutputClean,
// run in a child test binary.
func TestBenchLogHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("runs only as the child of TestBenchLogsLeaveOutputClean")
	}
	slog.Info("slog line from a service")
	log.Print("log package line from a service")
}

// TestBenchLogsLeaveOutputClean runs this test binary the way `go test -bench`
// does (a -test.bench pattern set) and checks that what services log reaches
// the log file, not the output a bench table is parsed from; and that without
// -test.bench, logs stay on stderr.
func TestBenchLogsLeaveOutputClean(t *testing.T) {
	const slogLine, logLine = "slog line from a service", "log package line from a service"
	tests := []struct {
		name    string
		args    []string
		logsEnv func(dir string) string
		inOut   bool // the lines are in the output
		inFile  bool // the lines are in dir/<package>.log
	}{
		{"benchmarks: logs to the folder", []string{"-test.bench=^$"}, func(d string) string { return d }, false, true},
		{"benchmarks: logs off", []string{"-test.bench=^$"}, func(string) string { return "off" }, false, false},
		{"tests only: logs on stderr", nil, func(d string) string { return d }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"-test.run=^TestBenchLogHelper$", "-test.v"}, tt.args...)
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), helperEnv+"=1", BenchLogsEnv+"="+tt.logsEnv(dir))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child test binary: %v\n%s", err, out)
			}
			for _, line := range []string{slogLine, logLine} {
				if got := strings.Contains(string(out), line); got != tt.inOut {
					t.Errorf("%q in the output = %v, want %v:\n%s", line, got, tt.inOut, out)
				}
			}
			wd, _ := os.Getwd()
			file, _ := os.ReadFile(filepath.Join(dir, filepath.Base(filepath.Dir(wd))+"-"+filepath.Base(wd)+".log"))
			for _, line := range []string{slogLine, logLine} {
				if got := strings.Contains(string(file), line); got != tt.inFile {
					t.Errorf("%q in the log file = %v, want %v (files: %v)", line, got, tt.inFile, listDir(dir))
				}
			}
		})
	}
}

func listDir(dir string) []string {
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
