package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
)

// completion tracks a temporary integration's window [starts_at, ends_at]
// (by record timestamp, which ingest sets to the ingestion time). Once
// ends_at plus the grace for producer clock skew has passed, the window is
// fixed: per partition it spans from the first record at or after starts_at
// (S) to the first record stamped after ends_at plus the clock-skew
// allowance (B); records between are delivered when stamped within the
// window. The integration is complete when
// the group's committed offset reached B on every partition with S < B, which
// any member of the group can see, whichever partitions it holds.
type completion struct {
	bounds map[int32][2]int64 // partition -> {S, B}
	done   bool
}

// checkCompletion sets the integration stopped (integration_completed) and
// ends the run once its whole window was delivered. Run from commitLoop.
func (c *consumer) checkCompletion() {
	comp := c.completion
	if comp.done || time.Now().Before(c.in.EndsAt.Add(c.deps.cfg.ClockSkew)) {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if comp.bounds == nil {
		starts, err := c.deps.adm.ListOffsetsAfterMilli(ctx, c.fromMs, c.topic)
		if err != nil {
			c.log.Warn("listing window start offsets", "err", err)
			return
		}
		// The window's end on a partition is the first record past the
		// clock-skew allowance (records up to it are filtered one by one).
		ends, err := c.deps.adm.ListOffsetsAfterMilli(ctx, c.toMs+c.deps.cfg.ClockSkew.Milliseconds()+1, c.topic)
		if err != nil {
			c.log.Warn("listing window end offsets", "err", err)
			return
		}
		bounds := map[int32][2]int64{}
		for p, e := range ends[c.topic] {
			s, ok := starts.Lookup(c.topic, p)
			if e.Err != nil || !ok || s.Err != nil || p < 0 {
				return // topic or partition not ready: try again later
			}
			bounds[p] = [2]int64{s.Offset, e.Offset}
		}
		if len(bounds) == 0 {
			return
		}
		comp.bounds = bounds
	}
	committed, err := c.deps.adm.FetchOffsets(ctx, c.group)
	if err != nil {
		c.log.Warn("fetching committed offsets", "err", err)
		return
	}
	for p, b := range comp.bounds {
		if b[0] >= b[1] {
			continue // nothing in the window on this partition
		}
		o, ok := committed.Lookup(c.topic, p)
		if !ok || o.Err != nil || o.At < b[1] {
			return
		}
	}
	comp.done = true
	c.log.Info("temporary integration completed")
	c.recordStop(StopCompleted)
	c.setStopped(StopCompleted, catalog.ActionCompleted,
		fmt.Sprintf("Completed: all events up to %s were delivered.", events.FormatTime(*c.in.EndsAt)))
	c.stop(errStopRequested)
}
