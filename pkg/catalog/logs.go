package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LogLimit is how many entries the logs endpoint returns.
const LogLimit = 50

func addLog(ctx context.Context, q querier, tenant, id, action, reason string) error {
	if _, err := q.Exec(ctx, `INSERT INTO integration_logs (tenant, integration_id, action, reason)
		VALUES ($1, $2, $3, $4)`, tenant, id, action, reason); err != nil {
		return fmt.Errorf("writing log entry: %w", err)
	}
	return nil
}

// AddLog appends an entry to an integration's log. It returns ErrNotFound when
// the integration does not exist (for instance it was deleted meanwhile).
func (s *Store) AddLog(ctx context.Context, tenant, id, action, reason string) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO integration_logs (tenant, integration_id, action, reason)
		SELECT tenant, id, $3, $4 FROM integrations WHERE tenant = $1 AND id = $2`, tenant, id, action, reason)
	if err != nil {
		return fmt.Errorf("writing log entry: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("integration %q: %w", id, ErrNotFound)
	}
	return nil
}

// ListLogs returns up to limit newest entries of an integration, newest first.
// It returns ErrNotFound for an unknown integration.
func (s *Store) ListLogs(ctx context.Context, tenant, id string, limit int) ([]LogEntry, error) {
	if _, err := s.GetIntegration(ctx, tenant, id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT action, reason, created_at FROM integration_logs
		WHERE tenant = $1 AND integration_id = $2 ORDER BY seq DESC LIMIT $3`, tenant, id, limit)
	if err != nil {
		return nil, fmt.Errorf("listing logs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LogEntry, error) {
		var e LogEntry
		err := r.Scan(&e.Action, &e.Reason, &e.CreatedAt)
		return e, err
	})
}
