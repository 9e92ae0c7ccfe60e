// Command configapi serves the configuration API (see package configapi);
// /healthz, /readyz and /metrics share its port (CONFIGAPI_ADDR).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/pkg/buildinfo"
	"github.com/eventstream/eventstream/services/configapi"
)

// version is set at build time: -ldflags "-X main.version=<tag>".
var version = "dev"

func main() {
	if buildinfo.Requested(os.Args[1:]) {
		buildinfo.Print(os.Stdout, "configapi", version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := configapi.Run(ctx, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "configapi:", err)
		os.Exit(1)
	}
}
