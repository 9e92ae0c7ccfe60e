package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startTime is where the integration's stream begins: the restart after a
// long stop (a reset group), else starts_at (a replay), else the
// registration (events published from registration on, even those published
// before the consumer first joins), both less the ClockSkew allowance.
// Records stamped earlier are never delivered.
func (c *consumer) startTime() time.Time {
	switch {
	case c.state.OffsetsResetAt != nil && c.state.GroupEpoch > 0:
		return c.state.OffsetsResetAt.Add(-c.deps.cfg.ClockSkew)
	case c.in.StartsAt != nil:
		return *c.in.StartsAt
	}
	return c.in.CreatedAt.Add(-c.deps.cfg.ClockSkew)
}

// adjustStart places partitions the group never committed at the first
// record stamped at or after startTime.
//
// franz-go's AfterMilli offset does this too, but when no such record exists
// yet it lists the end offset concurrently with the by-time lookup, so a
// record appended in between is skipped: exactly the live edge a new
// integration starts at. Here the end offset is listed first; with no
// record at or after the start time by then, the partition starts at that
// earlier end, and records stamped before the start time are skipped by the
// feeder.
//
// When the group's committed offsets are gone although it committed before
// (the broker expired them), partitions resume from their offset checkpoints
// (checkpointStarts), those without one by time (resumeAfterLostOffsets).
func (c *consumer) adjustStart(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := offsets[c.topic]
	if len(parts) == 0 {
		return offsets, nil
	}
	committed, err := c.deps.adm.FetchOffsets(ctx, c.group)
	if err != nil {
		return nil, fmt.Errorf("fetching committed offsets: %w", err)
	}
	var fresh []int32
	for p := range parts {
		if o, ok := committed.Lookup(c.topic, p); !ok || o.Err != nil || o.At < 0 {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return offsets, nil
	}
	ends, err := c.deps.adm.ListEndOffsets(ctx, c.topic)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	// The broker expires a group's offsets together (retention after the
	// group emptied); a group with some partitions committed and others not
	// simply never finished a record on those, and they start at the start.
	anyCommitted := false
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic == c.topic && o.Err == nil && o.At >= 0 {
			anyCommitted = true
		}
	})
	from := c.fromMs
	var exact map[int32]int64
	if !anyCommitted && c.state.OffsetsCommitted {
		if exact, err = c.checkpointStarts(ctx, fresh, ends); err != nil {
			// Failing the join makes franz-go rejoin after a backoff and
			// ask again; nothing is fetched meanwhile. Starting at the
			// registration instead would deliver everything again.
			return nil, err
		}
		if len(exact) < len(fresh) {
			r, err := c.resumeAfterLostOffsets(ctx)
			if err != nil {
				return nil, err // as above
			}
			from = max(from, r)
		}
	}
	var byTime kadm.ListedOffsets
	if len(exact) < len(fresh) {
		if byTime, err = c.deps.adm.ListOffsetsAfterMilli(ctx, from, c.topic); err != nil {
			return nil, fmt.Errorf("listing offsets by time: %w", err)
		}
	}
	for _, p := range fresh {
		if at, ok := exact[p]; ok {
			parts[p] = kgo.NewOffset().At(at)
			continue
		}
		e, ok1 := ends.Lookup(c.topic, p)
		t, ok2 := byTime.Lookup(c.topic, p)
		if !ok1 || !ok2 || e.Err != nil || t.Err != nil {
			return nil, fmt.Errorf("listing start offset of partition %d: missing or failed", p)
		}
		start := e.Offset
		if t.Offset >= 0 && t.Offset < start {
			start = t.Offset
		}
		parts[p] = kgo.NewOffset().At(start)
	}
	return offsets, nil
}

// checkpointStarts returns where the fresh partitions with an offset
// checkpoint of this group (generation and epoch) start when the group's
// committed offsets are gone: at the checkpoint, the next offset to deliver
// as last committed to Kafka and copied to the catalog (see checkpoints).
// This resumes exactly where the group was, however far behind the consumer
// was; at most the records committed after the newest copy (one
// DELIVERY_OFFSET_CHECKPOINT_INTERVAL) come again. A checkpoint below the
// partition's log start resumes at the log start (the records between are
// gone, deleted by the topic's retention: logged); one past the end (a
// recreated topic) at the end. Partitions without a checkpoint (they never
// committed, or the group predates checkpoints) keep the timestamp rule of
// resumeAfterLostOffsets. A failed read is an error: the join fails and is
// retried.
func (c *consumer) checkpointStarts(ctx context.Context, fresh []int32, ends kadm.ListedOffsets) (map[int32]int64, error) {
	// The newest commits of this worker may not be written yet (an
	// integration stopped and started again at once): write them first. A
	// failed write leaves an older copy: more duplicates, nothing skipped.
	if err := c.deps.checkpoints.flush(ctx); err != nil {
		c.log.Warn("writing offset checkpoints before resuming lost offsets", "err", err)
	}
	cps, err := c.deps.status.OffsetCheckpoints(ctx, c.in.Tenant, c.in.ID, c.in.Generation, c.state.GroupEpoch)
	if err != nil {
		c.log.Warn("reading offset checkpoints to resume lost offsets: the group joins again and retries", "err", err)
		return nil, fmt.Errorf("reading offset checkpoints to resume lost offsets: %w", err)
	}
	var have []int32
	for _, p := range fresh {
		if _, ok := cps[p]; ok {
			have = append(have, p)
		}
	}
	if len(have) == 0 {
		return nil, nil
	}
	starts, err := c.deps.adm.ListStartOffsets(ctx, c.topic)
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	out := make(map[int32]int64, len(have))
	for _, p := range have {
		s, ok1 := starts.Lookup(c.topic, p)
		e, ok2 := ends.Lookup(c.topic, p)
		if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
			return nil, fmt.Errorf("listing log start offset of partition %d: missing or failed", p)
		}
		at := cps[p]
		switch {
		case at < s.Offset:
			c.log.Warn("offset checkpoint below the partition's log start: the records between were deleted by the topic's retention "+
				"before they were delivered", "partition", p, "checkpoint", at, "log_start", s.Offset)
			at = s.Offset
		case at > e.Offset:
			c.log.Warn("offset checkpoint past the partition's end (topic recreated?): resuming at the end",
				"partition", p, "checkpoint", at, "end", e.Offset)
			at = e.Offset
		}
		out[p] = at
	}
	c.log.Warn("the group's committed offsets are gone (broker offsets retention shorter than DELIVERY_OFFSET_RETENTION?): "+
		"resuming from the offset checkpoints", "partitions", out)
	return out, nil
}

// resumeAfterLostOffsets returns where partitions start (ms) when the group
// has no committed offset left although it had committed before: the broker
// expired its offsets (offsets.retention.minutes shorter than DELIVERY_OFFSET_RETENTION).
// It applies to partitions without an offset checkpoint (checkpointStarts).
// Replaying from the registration would deliver everything again, so the
// stream resumes from when the integration stopped, or, if it never did,
// from its newest attempt, less the clock-skew allowance. 0 means no
// adjustment (a group that never committed starts at its start time).
//
// An integration that never stopped and has no attempt row in the window
// attempt rows are kept (ATTEMPTS_RETENTION) made no attempt in that window:
// whatever it delivered is older, and every record of the window was
// either filtered out or not reached yet. It resumes from the window's
// start (or its registration, when younger): nothing of the window is lost,
// nothing delivered is replayed. A failed read is an error, never "from the
// registration": the join fails and is retried.
func (c *consumer) resumeAfterLostOffsets(ctx context.Context) (int64, error) {
	if !c.state.OffsetsCommitted {
		return 0, nil
	}
	var at time.Time
	switch {
	case c.in.StoppedAt != nil && c.in.StoppedAt.After(c.in.CreatedAt):
		at = *c.in.StoppedAt
	default:
		since := c.in.CreatedAt
		if kept := time.Now().Add(-c.deps.cfg.AttemptRetention); c.deps.cfg.AttemptRetention > 0 && kept.After(since) {
			since = kept
		}
		last, ok, err := c.deps.status.LastAttemptAt(ctx, c.in.Tenant, c.in.ID, since)
		if err != nil {
			c.log.Warn("reading the last attempt to resume lost offsets: the group joins again and retries", "err", err)
			return 0, fmt.Errorf("reading the last attempt to resume lost offsets: %w", err)
		}
		at = since
		if ok {
			at = last
		}
	}
	at = at.Add(-c.deps.cfg.ClockSkew)
	c.log.Warn("the group's committed offsets are gone (broker offsets retention shorter than DELIVERY_OFFSET_RETENTION?): "+
		"resuming from when the integration stopped or last attempted", "from", at)
	return at.UnixMilli(), nil
}
