// Command ingest serves POST /v1/events: it validates events and writes them
// to the tenants' Kafka topics. Configuration comes from the environment (see
// ingest.ConfigFromEnv); /healthz, /readyz and /metrics share its port.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/pkg/buildinfo"
	"github.com/eventstream/eventstream/services/ingest"
)

// version is set at build time: -ldflags "-X main.version=<tag>".
var version = "dev"

func main() {
	if buildinfo.Requested(os.Args[1:]) {
		buildinfo.Print(os.Stdout, "ingest", version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := ingest.Run(ctx, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}
