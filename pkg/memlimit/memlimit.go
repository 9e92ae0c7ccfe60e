// Package memlimit gives a Go process in a container a soft memory limit
// below the container's: when GOMEMLIMIT is not set, it reads the cgroup's
// memory limit and sets the runtime's limit to a fraction of it, so the
// garbage collector works harder before the kernel's OOM killer does.
package memlimit

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction of the cgroup limit given to the Go runtime; the rest is for
// memory the runtime does not account (stacks in flight, cgo, the page
// cache charged to the container).
const Fraction = 0.9

// cgroup files holding the memory limit: v2 (unified), then v1.
var limitFiles = []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"}

// FromCgroup returns the memory limit of the cgroup the process runs in,
// read from the filesystem under root ("/" in production), or 0 when there
// is none (no cgroup, "max", or v1's "unlimited" near-MaxInt64 value).
func FromCgroup(root string) (int64, error) {
	for _, name := range limitFiles {
		b, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, &fs.PathError{Op: "parse", Path: name, Err: err}
		}
		// cgroup v1 says "unlimited" with a page-rounded MaxInt64.
		if n <= 0 || n >= math.MaxInt64/2 {
			return 0, nil
		}
		return n, nil
	}
	return 0, nil
}

// Apply sets the runtime's memory limit to Fraction of the cgroup's under
// root unless GOMEMLIMIT (read through getenv) is set. It returns the limit
// it set, or 0 when it left the runtime alone.
func Apply(root string, getenv func(string) string) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	limit, err := FromCgroup(root)
	if err != nil || limit == 0 {
		return 0, err
	}
	soft := int64(float64(limit) * Fraction)
	debug.SetMemoryLimit(soft)
	return soft, nil
}
