package catalog

import (
	"context"
	"fmt"
)

// OffsetCheckpoint is the next offset to deliver of one partition, as last
// committed to Kafka by the consumer group of this generation and epoch.
type OffsetCheckpoint struct {
	Tenant        string
	IntegrationID string
	Generation    int64
	GroupEpoch    int
	Partition     int32
	NextOffset    int64
}

// SaveOffsetCheckpoints writes checkpoints in one statement, whatever their
// integrations. A checkpoint only moves forward within its generation and
// epoch; one of a generation or epoch the integration no longer has (or of
// a deleted integration) is dropped rather than failing the batch, and one
// of the current group replaces a row of an older group.
func (s *Store) SaveOffsetCheckpoints(ctx context.Context, cps []OffsetCheckpoint) error {
	if len(cps) == 0 {
		return nil
	}
	n := len(cps)
	tenants, ids := make([]string, n), make([]string, n)
	gens, offsets := make([]int64, n), make([]int64, n)
	epochs, parts := make([]int32, n), make([]int32, n)
	for i, c := range cps {
		tenants[i], ids[i], gens[i], epochs[i], parts[i], offsets[i] =
			c.Tenant, c.IntegrationID, c.Generation, int32(c.GroupEpoch), c.Partition, c.NextOffset
	}
	// The join keeps the FK from failing the whole batch for an integration
	// deleted since (a delete racing this very statement still can: the
	// batch is retried, and the join then drops it).
	if _, err := s.pool.Exec(ctx, `INSERT INTO delivery_offset_checkpoints AS c
			(tenant, integration_id, kafka_partition, generation, group_epoch, next_offset)
		SELECT u.tenant, u.id, u.part, u.gen, u.epoch, u.next
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::int[], $6::bigint[])
			AS u (tenant, id, gen, epoch, part, next)
		JOIN integrations i ON i.tenant = u.tenant AND i.id = u.id AND i.generation = u.gen AND i.group_epoch = u.epoch
		ON CONFLICT (tenant, integration_id, kafka_partition) DO UPDATE
		SET generation = excluded.generation, group_epoch = excluded.group_epoch,
			next_offset = excluded.next_offset, updated_at = now()
		WHERE c.generation <> excluded.generation OR c.group_epoch <> excluded.group_epoch
			OR c.next_offset < excluded.next_offset`,
		tenants, ids, gens, epochs, parts, offsets); err != nil {
		return fmt.Errorf("saving offset checkpoints: %w", err)
	}
	return nil
}

// OffsetCheckpoints returns the integration's checkpoints (next offset by
// partition) of this generation and epoch; rows of another group are left out.
func (s *Store) OffsetCheckpoints(ctx context.Context, tenant, id string, generation int64, epoch int) (map[int32]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT kafka_partition, next_offset FROM delivery_offset_checkpoints
		WHERE tenant = $1 AND integration_id = $2 AND generation = $3 AND group_epoch = $4`, tenant, id, generation, epoch)
	if err != nil {
		return nil, fmt.Errorf("reading offset checkpoints: %w", err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var p int32
		var next int64
		if err := rows.Scan(&p, &next); err != nil {
			return nil, fmt.Errorf("reading offset checkpoints: %w", err)
		}
		out[p] = next
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading offset checkpoints: %w", err)
	}
	return out, nil
}
