// Command delivery runs a delivery worker (see package delivery): webhook and
// S3 delivery for the running integrations of its pool's tenants, with
// /healthz, /readyz and /metrics on DELIVERY_ADDR (see package worker).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/pkg/buildinfo"
	"github.com/eventstream/eventstream/services/delivery/worker"
)

// version is set at build time: -ldflags "-X main.version=<tag>".
var version = "dev"

func main() {
	if buildinfo.Requested(os.Args[1:]) {
		buildinfo.Print(os.Stdout, "delivery", version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := worker.Run(ctx, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "delivery:", err)
		os.Exit(1)
	}
}
