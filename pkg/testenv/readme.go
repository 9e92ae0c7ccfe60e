package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/pkg/config"
)

// CheckDocumented fails the test for every setting the repository's
// README.md does not name (as `NAME`): a variable a service reads must be
// documented where operators look.
func CheckDocumented(t testing.TB, vars []config.Var) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vars {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not mention %s (%s; default %q)", v.Name, v.Help, v.Default)
		}
	}
}

// repoRoot is the nearest directory above the working directory holding
// go.work.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory")
		}
		dir = parent
	}
}
