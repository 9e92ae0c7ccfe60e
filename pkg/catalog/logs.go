package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LogLimit is how many entries the logs endpoint returns.
const LogLimit = 50

// logKeep is how many entries per integration survive pruning: what the API
// shows plus a margin.
const logKeep = 2 * LogLimit

// RetryCoalesceWindow: a retry_triggered entry repeating the newest entry's
// reason within this long of that entry's creation is counted into it.
const RetryCoalesceWindow = time.Minute

// addLog inserts an entry (inside the caller's transaction) and prunes the
// integration's oldest entries beyond logKeep.
func addLog(ctx context.Context, q querier, tenant, id, action, reason string) error {
	if _, err := q.Exec(ctx, `INSERT INTO integration_logs (tenant, integration_id, action, reason)
		VALUES ($1, $2, $3, $4)`, tenant, id, action, SafeText(reason, maxReasonText)); err != nil {
		return fmt.Errorf("writing log entry: %w", err)
	}
	return pruneLogs(ctx, q, tenant, id)
}

func pruneLogs(ctx context.Context, q querier, tenant, id string) error {
	if _, err := q.Exec(ctx, `DELETE FROM integration_logs WHERE tenant = $1 AND integration_id = $2 AND seq <
		(SELECT seq FROM integration_logs WHERE tenant = $1 AND integration_id = $2 ORDER BY seq DESC OFFSET $3 LIMIT 1)`,
		tenant, id, logKeep-1); err != nil {
		return fmt.Errorf("pruning log entries: %w", err)
	}
	return nil
}

// AddLog appends an entry to an integration's log. A retry_triggered entry
// whose reason repeats the newest entry's within RetryCoalesceWindow counts
// into that entry instead (the API shows how often). The reason is stored
// as SafeText. It returns ErrNotFound when the integration does not exist
// (for instance it was deleted meanwhile).
func (s *Store) AddLog(ctx context.Context, tenant, id, action, reason string) error {
	reason = SafeText(reason, maxReasonText)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if action == ActionRetry {
			tag, err := tx.Exec(ctx, `UPDATE integration_logs SET repeats = repeats + 1, last_seen_at = clock_timestamp()
				WHERE tenant = $1 AND integration_id = $2 AND action = $3 AND reason = $4
				  AND created_at > clock_timestamp() - make_interval(secs => $5)
				  AND seq = (SELECT max(seq) FROM integration_logs WHERE tenant = $1 AND integration_id = $2)`,
				tenant, id, action, reason, RetryCoalesceWindow.Seconds())
			if err != nil {
				return fmt.Errorf("counting repeated log entry: %w", err)
			}
			if tag.RowsAffected() == 1 {
				return nil
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO integration_logs (tenant, integration_id, action, reason)
			SELECT tenant, id, $3, $4 FROM integrations WHERE tenant = $1 AND id = $2`, tenant, id, action, reason)
		if err != nil {
			return fmt.Errorf("writing log entry: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("integration %q: %w", id, ErrNotFound)
		}
		return pruneLogs(ctx, tx, tenant, id)
	})
}

// ListLogs returns up to limit newest entries of an integration, newest first.
// An entry that counts repeats has Repeats > 1 (Text says so). It returns
// ErrNotFound for an unknown integration.
func (s *Store) ListLogs(ctx context.Context, tenant, id string, limit int) ([]LogEntry, error) {
	if _, err := s.GetIntegration(ctx, tenant, id); err != nil && !errors.Is(err, ErrSecretsUnreadable) {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT action, reason, created_at, repeats, coalesce(last_seen_at, created_at)
		FROM integration_logs WHERE tenant = $1 AND integration_id = $2 ORDER BY seq DESC LIMIT $3`, tenant, id, limit)
	if err != nil {
		return nil, fmt.Errorf("listing logs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LogEntry, error) {
		var e LogEntry
		err := r.Scan(&e.Action, &e.Reason, &e.CreatedAt, &e.Repeats, &e.LastAt)
		return e, err
	})
}
