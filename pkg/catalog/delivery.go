package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeliveryState is what the delivery workers watch about an integration: a
// cheap row (no secrets to decrypt) whose change means the worker must
// reload the integration or stop delivering it.
type DeliveryState struct {
	Tenant     string
	ID         string
	Generation int64
	Type       string
	Status     string
	UpdatedAt  time.Time
	// GroupEpoch is part of the consumer group name (see ResetExpiredOffsets).
	GroupEpoch int
	// OffsetsResetAt is when the group was last reset to "from now on".
	OffsetsResetAt *time.Time
	StoppedAt      *time.Time
	// OffsetsCommitted: the group of this generation and epoch has
	// committed offsets before (see MarkOffsetsCommitted).
	OffsetsCommitted bool
}

// poolFilter selects integrations of a delivery pool: $1 is the pool's
// tenant list, or NULL for the "*" pool, which serves every tenant no pool
// claimed.
const poolFilter = `(($1::text[] IS NULL AND NOT EXISTS (
		SELECT 1 FROM delivery_pool_claims c WHERE c.tenant = integrations.tenant))
	OR tenant = ANY($1::text[]))`

// ClaimPoolTenants records that the delivery pool named pool serves exactly
// tenants, replacing its earlier claims, so the "*" pool leaves them alone.
// It fails with ErrConflict, naming the other pool, when a tenant is already
// claimed by another pool.
func (s *Store) ClaimPoolTenants(ctx context.Context, pool string, tenants []string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var other, tenant string
		err := tx.QueryRow(ctx, `SELECT pool, tenant FROM delivery_pool_claims
			WHERE tenant = ANY($1) AND pool <> $2 LIMIT 1`, tenants, pool).Scan(&other, &tenant)
		if err == nil {
			return fmt.Errorf("tenant %q is claimed by delivery pool %q: %w", tenant, other, ErrConflict)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("checking pool claims: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM delivery_pool_claims WHERE pool = $1 AND NOT (tenant = ANY($2))`, pool, tenants); err != nil {
			return fmt.Errorf("releasing pool claims: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO delivery_pool_claims (tenant, pool)
			SELECT unnest($2::text[]), $1 ON CONFLICT (tenant) DO NOTHING`, pool, tenants); err != nil {
			return fmt.Errorf("claiming pool tenants: %w", err)
		}
		return nil
	})
}

const deliveryStateColumns = `tenant, id, generation, integration_type, status, updated_at, group_epoch, offsets_reset_at, stopped_at,
	coalesce(offsets_committed_epoch = group_epoch, false)`

func scanDeliveryState(r pgx.CollectableRow) (DeliveryState, error) {
	var d DeliveryState
	err := r.Scan(&d.Tenant, &d.ID, &d.Generation, &d.Type, &d.Status, &d.UpdatedAt, &d.GroupEpoch, &d.OffsetsResetAt, &d.StoppedAt,
		&d.OffsetsCommitted)
	return d, err
}

// MarkOffsetsCommitted records that the consumer group of this generation
// and epoch committed offsets. A worker calls it once per run, after its
// first successful commit; it leaves updated_at alone (not a change of the
// integration).
func (s *Store) MarkOffsetsCommitted(ctx context.Context, tenant, id string, generation int64, epoch int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE integrations SET offsets_committed_epoch = $4
		WHERE tenant = $1 AND id = $2 AND generation = $3 AND group_epoch = $4
		  AND offsets_committed_epoch IS DISTINCT FROM $4`, tenant, id, generation, epoch); err != nil {
		return fmt.Errorf("recording committed offsets: %w", err)
	}
	return nil
}

// LastAttemptAt returns when the integration's newest attempt since since
// was made; ok is false when there is none.
func (s *Store) LastAttemptAt(ctx context.Context, tenant, id string, since time.Time) (at time.Time, ok bool, err error) {
	var t *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(attempted_at) FROM publish_attempts
		WHERE tenant = $1 AND integration_id = $2 AND attempted_at >= $3`, tenant, id, since).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("reading the last attempt: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

// DeliveryStates returns the state of every integration (any status) of a
// delivery pool's tenants; nil tenants means the "*" pool.
func (s *Store) DeliveryStates(ctx context.Context, tenants []string) ([]DeliveryState, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryStateColumns+` FROM integrations WHERE `+poolFilter+` ORDER BY tenant, id`, tenants)
	if err != nil {
		return nil, fmt.Errorf("reading delivery states: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDeliveryState)
	if err != nil {
		return nil, fmt.Errorf("reading delivery states: %w", err)
	}
	return out, nil
}

// GetDeliveryState returns one integration's delivery state, or ErrNotFound.
func (s *Store) GetDeliveryState(ctx context.Context, tenant, id string) (DeliveryState, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryStateColumns+` FROM integrations WHERE tenant = $1 AND id = $2`, tenant, id)
	if err != nil {
		return DeliveryState{}, fmt.Errorf("reading delivery state: %w", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeliveryState)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeliveryState{}, fmt.Errorf("integration %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return DeliveryState{}, fmt.Errorf("reading delivery state: %w", err)
	}
	return d, nil
}

// ListRunningForPool returns the running integrations of a delivery pool's
// tenants; nil tenants means the "*" pool.
func (s *Store) ListRunningForPool(ctx context.Context, tenants []string) ([]*Integration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationColumns+` FROM integrations
		WHERE status = 'running' AND `+poolFilter+` ORDER BY tenant, id`, tenants)
	if err != nil {
		return nil, fmt.Errorf("listing running integrations: %w", err)
	}
	return s.collect(rows)
}

// ResetExpiredOffsets handles a start after a long stop: when the running
// integration (of this generation) was started (its updated_at) more than
// retention after it stopped, and its group was not reset since, it bumps the
// group epoch (a new consumer group with no commits) and sets
// offsets_reset_at to the start time, so delivery starts from the restart
// instead of resuming offsets the broker no longer keeps.
// Exactly one caller wins a given reset (reset reports true for it), which
// then logs it; everyone reads the resulting state.
func (s *Store) ResetExpiredOffsets(ctx context.Context, tenant, id string, generation int64, retention time.Duration) (st DeliveryState, reset bool, err error) {
	rows, err := s.pool.Query(ctx, `UPDATE integrations SET group_epoch = group_epoch + 1, offsets_reset_at = updated_at
		WHERE tenant = $1 AND id = $2 AND generation = $3 AND status = 'running'
		  AND stopped_at IS NOT NULL AND stopped_at < updated_at - make_interval(secs => $4)
		  AND (offsets_reset_at IS NULL OR offsets_reset_at < stopped_at)
		RETURNING `+deliveryStateColumns, tenant, id, generation, retention.Seconds())
	if err != nil {
		return st, false, fmt.Errorf("resetting offsets: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanDeliveryState)
	if err != nil {
		return st, false, fmt.Errorf("resetting offsets: %w", err)
	}
	if len(list) == 1 {
		return list[0], true, nil
	}
	st, err = s.GetDeliveryState(ctx, tenant, id)
	return st, false, err
}

// DeleteCompletedTemporary deletes the temporary integrations of a delivery
// pool's tenants (nil = the "*" pool) that completed before cutoff, with
// their logs and rejected events, and returns what it deleted.
func (s *Store) DeleteCompletedTemporary(ctx context.Context, tenants []string, cutoff time.Time) ([]DeliveryState, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM integrations
		WHERE integration_type = 'temporary' AND status = 'stopped' AND completed_at < $2 AND `+poolFilter+`
		RETURNING `+deliveryStateColumns, tenants, cutoff)
	if err != nil {
		return nil, fmt.Errorf("deleting completed temporary integrations: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDeliveryState)
	if err != nil {
		return nil, fmt.Errorf("deleting completed temporary integrations: %w", err)
	}
	return out, nil
}

// GroupStates returns the generation and group epoch of every integration of
// tenants (the consumer groups that may exist for them); other fields are zero.
func (s *Store) GroupStates(ctx context.Context, tenants []string) ([]DeliveryState, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant, id, generation, group_epoch FROM integrations WHERE tenant = ANY($1)`, tenants)
	if err != nil {
		return nil, fmt.Errorf("reading group states: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryState, error) {
		var st DeliveryState
		err := r.Scan(&st.Tenant, &st.ID, &st.Generation, &st.GroupEpoch)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading group states: %w", err)
	}
	return out, nil
}
