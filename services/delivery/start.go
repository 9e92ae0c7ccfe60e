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
	if !anyCommitted {
		r, err := c.resumeAfterLostOffsets(ctx)
		if err != nil {
			// Failing the join makes franz-go rejoin after a backoff and
			// ask again; nothing is fetched meanwhile. Starting at the
			// registration instead would deliver everything again.
			return nil, err
		}
		from = max(from, r)
	}
	byTime, err := c.deps.adm.ListOffsetsAfterMilli(ctx, from, c.topic)
	if err != nil {
		return nil, fmt.Errorf("listing offsets by time: %w", err)
	}
	for _, p := range fresh {
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

// resumeAfterLostOffsets returns where partitions start (ms) when the group
// has no committed offset left although it had committed before: the broker
// expired its offsets (offsets.retention.minutes shorter than DELIVERY_OFFSET_RETENTION).
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
