// Command probe is the healthcheck of the Event Stream images and of the
// compose services whose images have no shell or HTTP client: it GETs each URL
// given and exits 0 when every answer is 2xx, 1 otherwise. It depends on the
// standard library only, so a Dockerfile can build it on its own.
//
//	probe http://127.0.0.1:8082/readyz
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: probe <url>...   (exit 0 when every URL answers 2xx)")
		os.Exit(2)
	}
	for _, u := range os.Args[1:] {
		if err := get(u); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
	}
}

// get bounds each check well below compose's default healthcheck timeout, so
// a hanging dependency shows as unhealthy rather than as a stuck check.
func get(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("building request for %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("getting %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("getting %s: %s", u, resp.Status)
	}
	return nil
}
