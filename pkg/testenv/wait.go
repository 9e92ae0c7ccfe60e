package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test with what once within
// has passed. Tests wait for outcomes this way, never by sleeping a guess.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}
