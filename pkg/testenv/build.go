package testenv

import (
	"fmt"
	"os"
	"os/exec"
)

// BuildBinary builds the main package pkg into out the way `make images`
// does (CGO_ENABLED=0, -trimpath): tests run what ships, and the packages
// the image build compiled are reused rather than compiled once more in
// another configuration.
func BuildBinary(out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
