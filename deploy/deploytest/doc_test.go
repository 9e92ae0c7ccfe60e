// Package deploytest checks the deployment artifacts without a cluster or a
// container engine: the Helm chart (rendered in-process with the Helm library
// and decoded strictly into the Kubernetes API types), docker-compose.yml
// (loaded with compose-go), the image tarballs of `make images`, and the
// Grafana dashboard and alert queries (every metric they name is one the
// services export).
package deploytest

import (
	"os"
	"path/filepath"
	"testing"
)

// repoRoot is the repository root, two levels above this package.
var repoRoot = func() string {
	p, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return p
}()

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
