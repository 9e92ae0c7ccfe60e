package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// done marks records final.
func (c *consumer) markDone(recs ...*Record) {
	for _, r := range recs {
		if p := r.part; p != nil && p.c == c && !p.released.Load() {
			p.done(r.Offset)
		}
	}
}

// release gives up partitions: stop feeding them, let the sink finish what
// it holds (bounded; right away when abandon is set, so no new attempt
// starts), commit their finished offsets when commit is set, and forget
// them: nothing is committed for them afterwards.
func (c *consumer) release(partitions []int32, commit, abandon bool) {
	var list, others []*partState
	c.mu.Lock()
	for _, p := range partitions {
		ps := c.parts[p]
		switch {
		case ps == nil || ps.released.Load():
		case ps.releasing:
			others = append(others, ps)
		default:
			ps.releasing = true
			list = append(list, ps)
		}
	}
	c.mu.Unlock()
	defer func() {
		for _, ps := range list {
			close(ps.releaseDone)
		}
		// Return only once every named partition is given up, whoever did it.
		for _, ps := range others {
			<-ps.releaseDone
		}
	}()
	if len(list) == 0 {
		return
	}
	bound := min(c.deps.cfg.DrainTimeout, c.deps.cfg.RebalanceTimeout/2)
	deadline := time.Now().Add(bound)
	for _, ps := range list {
		close(ps.quit)
		if abandon {
			ps.cancel()
		}
	}
	for _, ps := range list {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ps.exited:
		case <-t.C:
			ps.cancel() // a feeder stuck in Deliver gives up its record
			<-ps.exited
		}
		t.Stop()
	}
	if commit {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if err := c.sink.Flush(ctx); err != nil && !errors.Is(err, errSinkStopped) {
			c.log.Info("releasing partitions before the sink finished", "err", err)
		}
		cancel()
	}
	for _, ps := range list {
		ps.cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if commit {
		c.commitLocked(list)
	}
	resume := map[string][]int32{}
	for _, ps := range list {
		ps.released.Store(true)
		delete(c.parts, ps.p)
		resume[c.topic] = append(resume[c.topic], ps.p)
	}
	// A finished temporary partition's pause would outlive the assignment.
	c.cl.ResumeFetchPartitions(resume)
	c.signalRoom()
}

// commitLoop commits finished offsets every CommitInterval while records
// become final, and checks a temporary integration's completion. Between
// records it sleeps until one becomes final: a thousand idle integrations
// each waking every interval cost a tenth of an idle worker's CPU
// (BenchmarkScaleCurve). It keeps ticking while a commit failed, the catalog
// was not yet told of the first commit, or a temporary integration may
// complete.
func (c *consumer) commitLoop() {
	t := time.NewTimer(c.deps.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		list := make([]*partState, 0, len(c.parts))
		for _, ps := range c.parts {
			list = append(list, ps)
		}
		behind := c.commitLocked(list)
		c.mu.Unlock()
		if c.committedOnce.Load() && !c.markedCommitted {
			ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
			err := c.deps.status.MarkOffsetsCommitted(ctx, c.in.Tenant, c.in.ID, c.in.Generation, c.state.GroupEpoch)
			cancel()
			c.markedCommitted = err == nil
		}
		if c.completion != nil {
			c.checkCompletion()
		}
		if !behind && c.completion == nil && (c.markedCommitted || !c.committedOnce.Load()) {
			select {
			case <-c.ctx.Done():
				return
			case <-c.finalized:
			}
		}
		t.Reset(c.deps.cfg.CommitInterval)
	}
}

// commitLocked commits, for each partition still held, the offset below its
// oldest record without a final outcome. Holding c.mu keeps release from
// running concurrently, so no commit follows a revocation. behind reports a
// partition whose finished offsets could not be committed.
func (c *consumer) commitLocked(list []*partState) (behind bool) {
	offsets := map[int32]kgo.EpochOffset{}
	for _, ps := range list {
		if ps.released.Load() {
			continue
		}
		if at := ps.tr.commitPoint(); at > ps.committed {
			offsets[ps.p] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
	}
	if len(offsets) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var commitErr error
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				commitErr = err
				clear(offsets)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						commitErr = err
						delete(offsets, p.Partition)
					}
				}
			}
		})
	if commitErr != nil {
		c.log.Warn("committing offsets", "err", commitErr)
	}
	for _, ps := range list {
		if o, ok := offsets[ps.p]; ok {
			ps.committed = o.Offset
			c.committedOnce.Store(true)
			c.deps.checkpoints.record(catalog.OffsetCheckpoint{Tenant: c.in.Tenant, IntegrationID: c.in.ID,
				Generation: c.in.Generation, GroupEpoch: c.state.GroupEpoch, Partition: ps.p, NextOffset: o.Offset})
		}
	}
	return commitErr != nil
}
