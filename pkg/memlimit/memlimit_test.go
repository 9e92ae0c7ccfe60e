package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func cgroupRoot(t *testing.T, file, content string) string {
	t.Helper()
	root := t.TempDir()
	if file == "" {
		return root
	}
	p := filepath.Join(root, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestFromCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                int64
		wantErr             bool
	}{
		{"v2 limit", "sys/fs/cgroup/memory.max", "536870912\n", 536870912, false},
		{"v2 unlimited", "sys/fs/cgroup/memory.max", "max\n", 0, false},
		{"v1 limit", "sys/fs/cgroup/memory/memory.limit_in_bytes", "1073741824\n", 1 << 30, false},
		{"v1 unlimited", "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n", 0, false},
		{"no cgroup", "", "", 0, false},
		{"garbage", "sys/fs/cgroup/memory.max", "lots\x00", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromCgroup(cgroupRoot(t, tc.file, tc.content))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("FromCgroup = %d, %v; want %d (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestApply(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	root := cgroupRoot(t, "sys/fs/cgroup/memory.max", "1000000000")

	set, err := Apply(root, func(string) string { return "" })
	if err != nil || set != 900000000 {
		t.Fatalf("Apply = %d, %v; want 900000000", set, err)
	}
	if got := debug.SetMemoryLimit(-1); got != 900000000 {
		t.Fatalf("runtime memory limit %d, want 900000000", got)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "300MiB"
		}
		return ""
	}
	if set, err := Apply(root, env); err != nil || set != 0 {
		t.Fatalf("Apply with GOMEMLIMIT set = %d, %v; want it left alone", set, err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("runtime memory limit changed to %d although GOMEMLIMIT is set", got)
	}
}
