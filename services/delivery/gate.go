package delivery

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/eventstream/eventstream/pkg/backoff"
	"github.com/eventstream/eventstream/pkg/catalog"
)

// confirm records that a catalog read started at t saw the integration running.
func (c *consumer) confirm(t time.Time) {
	for {
		old := c.confirmed.Load()
		if t.UnixNano() <= old || c.confirmed.CompareAndSwap(old, t.UnixNano()) {
			break
		}
	}
	// Only a waiting gate made a channel: the supervisor confirms every
	// integration twice a second, and most have no attempt waiting.
	c.confirmMu.Lock()
	if c.confirmCh != nil {
		close(c.confirmCh)
		c.confirmCh = nil
	}
	c.confirmMu.Unlock()
}

// gate waits until the integration was confirmed running less than
// StopPropagation ago.
func (c *consumer) gate(ctx context.Context) error {
	fresh := func() bool { return time.Since(time.Unix(0, c.confirmed.Load())) < c.deps.cfg.StopPropagation }
	for {
		if fresh() {
			return nil
		}
		c.confirmMu.Lock()
		if c.confirmCh == nil {
			c.confirmCh = make(chan struct{})
		}
		ch := c.confirmCh
		c.confirmMu.Unlock()
		// A confirm between the check above and the channel's creation
		// closed no channel: look again before waiting.
		if fresh() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// persistInterrupt sets the integration stopped with the sink's reason
// (see setStopped).
func (c *consumer) persistInterrupt() {
	c.log.Warn("integration interrupted", "reason", c.interruptReason)
	c.recordStop(c.interruptCause)
	c.setStopped(c.interruptCause, catalog.ActionStopped, c.interruptReason)
}

// stopRetries bounds the tries to record a stop while the catalog fails, as
// for rejected events (rejectRetries): about ten seconds of backoff.Catalog.
const stopRetries = rejectRetries

// unrecordedStop is a stop the catalog kept refusing: the consumer exits
// anyway, and the supervisor keeps the integration paused on this worker
// (no consumer) while it retries the write on later passes. Restarting the
// consumer instead would go on as if nothing happened: a sink that gave up
// (retries exhausted, rejected events full) would try the same event again
// and again, and a completed temporary integration would never read as
// completed.
type unrecordedStop struct {
	cause          StopCause
	action, reason string
	// state is the run the stop belongs to: once the integration's state
	// changes (an operator stopped, started or changed it) the pending
	// stop is dropped and the operator's decision stands.
	state catalog.DeliveryState
}

// setStopped records the integration stopped with reason, retrying while the
// catalog fails, at most stopRetries times (the first try also runs during
// shutdown, bounded, so an interrupt found while draining is still
// recorded). A reason Postgres refuses for its content is replaced by a
// fixed one built from cause alone. Past the retries the stop is counted
// (stops_unrecorded), logged with the ids, and left for the supervisor
// (c.unrecorded).
func (c *consumer) setStopped(cause StopCause, action, reason string) {
	for n := 0; ; n++ {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.deps.life), 5*time.Second)
		_, err := c.deps.status.SetStatus(ctx, c.in.Tenant, c.in.ID, catalog.StatusStopped, action, reason)
		cancel()
		switch {
		case err == nil, errors.Is(err, catalog.ErrNotFound):
			return // recorded, or the integration was deleted meanwhile
		case errors.Is(err, catalog.ErrSecretsUnreadable):
			return // recorded; only the returned configuration was unreadable
		case errors.Is(err, catalog.ErrUnstorable) && reason != fallbackReason(cause, action):
			c.log.Warn("the catalog refused the stop reason: storing a fixed one instead", "reason", reason, "err", err)
			reason = fallbackReason(cause, action)
			continue
		case n < stopRetries && c.deps.life.Err() == nil && !errors.Is(err, catalog.ErrUnstorable):
			c.log.Warn("setting integration stopped", "try", n+1, "err", err)
			if backoff.Catalog.Wait(c.deps.life, n) == nil {
				continue
			}
		}
		workerMetrics().stopsUnrecorded.Add(context.Background(), 1, metric.WithAttributes(
			attribute.String("pool", c.deps.cfg.Pool), attribute.String("tenant", c.in.Tenant),
			attribute.String("integration", c.in.ID), attribute.String("reason", string(cause))))
		c.log.Error("the catalog did not record the integration's stop: it stays paused on this worker and the supervisor retries",
			"tenant", c.in.Tenant, "integration", c.in.ID, "action", action, "reason", reason, "tries", n+1, "err", err)
		c.unrecorded = &unrecordedStop{cause: cause, action: action, reason: reason, state: c.state}
		return
	}
}

// fallbackReason is the stop reason stored when the catalog refuses the
// sink's text: built from constants only, so Postgres cannot refuse it.
func fallbackReason(cause StopCause, action string) string {
	if action == catalog.ActionCompleted {
		return "Completed: all events of the window were delivered."
	}
	return "Stopped by the delivery worker (" + string(cause) + "); the detailed reason could not be stored. " +
		"Nothing was dropped: start the integration again to resume."
}
