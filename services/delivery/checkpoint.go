package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/eventstream/eventstream/pkg/catalog"
)

// checkpoints keeps the worker's offset checkpoints: after a successful
// Kafka commit a consumer records its committed offsets here (memory only),
// and the worker's checkpointer writes every dirty entry of every
// integration in one statement each interval, and once more at drain. The
// catalog copy lets an integration whose committed offsets the broker
// expired resume exactly (see resumeAfterLostOffsets) instead of from a
// timestamp, which skips records a lagging consumer had not reached.
//
// Memory is one entry per partition with a commit not yet written; a failed
// write keeps its entries (newer commits overwrite them) for the next try.
type checkpoints struct {
	store checkpointStore
	log   *slog.Logger

	mu    sync.Mutex
	dirty map[checkpointKey]catalog.OffsetCheckpoint
	// writeMu serialises writes (the interval's, drain's, a resume's).
	writeMu sync.Mutex
}

type checkpointKey struct {
	tenant, id string
	partition  int32
}

// checkpointStore is the part of the catalog the checkpointer uses.
type checkpointStore interface {
	SaveOffsetCheckpoints(ctx context.Context, cps []catalog.OffsetCheckpoint) error
}

func newCheckpoints(store checkpointStore, log *slog.Logger) *checkpoints {
	return &checkpoints{store: store, log: log, dirty: map[checkpointKey]catalog.OffsetCheckpoint{}}
}

// record notes a committed offset. A nil receiver records nothing (tests
// building consumers without a worker).
func (k *checkpoints) record(cp catalog.OffsetCheckpoint) {
	if k == nil {
		return
	}
	key := checkpointKey{cp.Tenant, cp.IntegrationID, cp.Partition}
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.dirty[key]; ok && old.Generation == cp.Generation && old.GroupEpoch == cp.GroupEpoch && old.NextOffset > cp.NextOffset {
		return
	}
	k.dirty[key] = cp
}

// flush writes every dirty entry in one statement. On failure the entries
// stay dirty, unless a newer commit replaced them meanwhile.
func (k *checkpoints) flush(ctx context.Context) error {
	if k == nil {
		return nil
	}
	k.writeMu.Lock()
	defer k.writeMu.Unlock()
	k.mu.Lock()
	batch := make([]catalog.OffsetCheckpoint, 0, len(k.dirty))
	for _, cp := range k.dirty {
		batch = append(batch, cp)
	}
	clear(k.dirty)
	k.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := k.store.SaveOffsetCheckpoints(ctx, batch); err != nil {
		k.mu.Lock()
		for _, cp := range batch {
			key := checkpointKey{cp.Tenant, cp.IntegrationID, cp.Partition}
			if _, newer := k.dirty[key]; !newer {
				k.dirty[key] = cp
			}
		}
		k.mu.Unlock()
		return err
	}
	return nil
}

// run flushes every interval until ctx ends; failures are logged and
// retried at the next interval. The final flush (at drain, after the last
// commits) is the caller's.
func (k *checkpoints) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := k.flush(wctx); err != nil {
			k.log.Warn("writing offset checkpoints: retried at the next interval", "err", err)
		}
		cancel()
	}
}
