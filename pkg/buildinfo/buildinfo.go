// Package buildinfo answers --version for every Event Stream binary: the
// version stamped at build time (-ldflags "-X main.version=..."; the images
// pass their tag) and the Go toolchain and commit recorded in the binary.
package buildinfo

import (
	"fmt"
	"io"
	"runtime/debug"
)

// Requested reports whether the command line (os.Args[1:]) asks for the
// version: --version or -version as the first argument. It is checked
// before the configuration is read, so it works with an empty environment.
func Requested(args []string) bool {
	return len(args) > 0 && (args[0] == "--version" || args[0] == "-version")
}

// Print writes one line: "<name> <version> (<go version>[, commit <rev>])".
func Print(w io.Writer, name, version string) {
	if version == "" {
		version = "dev"
	}
	detail := "unknown go version"
	if bi, ok := debug.ReadBuildInfo(); ok {
		detail = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				detail += ", commit " + s.Value
			}
		}
	}
	fmt.Fprintf(w, "%s %s (%s)\n", name, version, detail)
}
