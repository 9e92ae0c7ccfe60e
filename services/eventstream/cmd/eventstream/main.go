// Command eventstream runs the local stack and administers Event Stream
// (see `eventstream help`).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/services/eventstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := eventstream.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
