// Command eventstream runs the local stack and administers Event Stream
// (see `eventstream help`).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/pkg/buildinfo"
	"github.com/eventstream/eventstream/services/eventstream"
)

// version is set at build time: -ldflags "-X main.version=<tag>".
var version = "dev"

func main() {
	if buildinfo.Requested(os.Args[1:]) {
		buildinfo.Print(os.Stdout, "eventstream", version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first Ctrl-C starts a clean stop, a second one kills at once.
	go func() { <-ctx.Done(); stop() }()
	code := eventstream.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
