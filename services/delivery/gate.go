package delivery

import (
	"context"
	"errors"
	"time"

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

// persistInterrupt sets the integration stopped with the sink's reason,
// retrying while the catalog is unreachable (until the worker shuts down).
func (c *consumer) persistInterrupt() {
	c.log.Warn("integration interrupted", "reason", c.interruptReason)
	c.recordStop(c.interruptCause)
	c.setStopped(catalog.ActionStopped, c.interruptReason)
}

func (c *consumer) setStopped(action, reason string) {
	for n := 0; ; n++ {
		// The first try also runs during shutdown (bounded), so an interrupt
		// found while draining is still recorded.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.deps.life), 5*time.Second)
		_, err := c.deps.status.SetStatus(ctx, c.in.Tenant, c.in.ID, catalog.StatusStopped, action, reason)
		cancel()
		if err == nil || errors.Is(err, catalog.ErrNotFound) || c.deps.life.Err() != nil {
			if err != nil && !errors.Is(err, catalog.ErrNotFound) {
				c.log.Warn("setting integration stopped", "err", err)
			}
			return
		}
		c.log.Warn("setting integration stopped", "err", err)
		if backoff.Catalog.Wait(c.deps.life, n) != nil {
			return
		}
	}
}
