package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AddRejected stores a rejected event. It fails with ErrRejectedFull when the
// integration already holds MaxRejectedEvents (the caller stops the integration
// instead of dropping the event) and ErrNotFound when the integration is gone.
// Storing the same event twice (a redelivery) keeps one row and succeeds.
//
// Body is stored as the exact bytes sent; the texts (ids, the response body)
// are stored as SafeText. A row Postgres still refuses for its content fails
// with ErrUnstorable: trying again cannot help.
func (s *Store) AddRejected(ctx context.Context, e RejectedEvent) error {
	if !IsUUID(e.EventID) {
		return fmt.Errorf("rejected event id %q: %w", SafeText(e.EventID, maxIDText), ErrUnstorable)
	}
	e.EventName = SafeText(e.EventName, maxIDText)
	e.IdempotencyKey = SafeText(e.IdempotencyKey, 0)
	e.DomainEntityID = SafeText(e.DomainEntityID, maxIDText)
	e.ResponseBody = SafeText(e.ResponseBody, MaxResponseText)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var n int
		var exists bool
		// Lock the integration row so concurrent rejections cannot overshoot the cap.
		err := tx.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM rejected_events WHERE tenant = $1 AND integration_id = $2),
				EXISTS (SELECT 1 FROM rejected_events WHERE tenant = $1 AND integration_id = $2 AND event_id = $3)
			FROM integrations WHERE tenant = $1 AND id = $2 FOR UPDATE`,
			e.Tenant, e.IntegrationID, e.EventID).Scan(&n, &exists)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("integration %q: %w", e.IntegrationID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("counting rejected events: %w", err)
		}
		if exists {
			return nil
		}
		if n >= MaxRejectedEvents {
			return ErrRejectedFull
		}
		_, err = tx.Exec(ctx, `INSERT INTO rejected_events (tenant, integration_id, event_id, event_name,
			idempotency_key, domain_entity_id, body, response_code, response_body)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			e.Tenant, e.IntegrationID, e.EventID, e.EventName, e.IdempotencyKey, e.DomainEntityID,
			e.Body, e.ResponseCode, e.ResponseBody)
		if err != nil {
			return fmt.Errorf("storing rejected event: %w", err)
		}
		return nil
	})
	if refusedContent(err) {
		return fmt.Errorf("%w: %w", ErrUnstorable, err)
	}
	return err
}

// ListRejected returns an integration's rejected events, newest first.
func (s *Store) ListRejected(ctx context.Context, tenant, id string) ([]RejectedEvent, error) {
	if _, err := s.GetIntegration(ctx, tenant, id); err != nil && !errors.Is(err, ErrSecretsUnreadable) {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT tenant, integration_id, event_id::text, event_name, idempotency_key,
		domain_entity_id, body, coalesce(response_code, 0), coalesce(response_body, ''), created_at
		FROM rejected_events WHERE tenant = $1 AND integration_id = $2 ORDER BY created_at DESC, event_id`, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("listing rejected events: %w", err)
	}
	return pgx.CollectRows(rows, scanRejected)
}

// GetRejected returns one rejected event, or ErrNotFound.
func (s *Store) GetRejected(ctx context.Context, tenant, id, eventID string) (*RejectedEvent, error) {
	if !IsUUID(eventID) {
		return nil, fmt.Errorf("rejected event %q: %w", eventID, ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT tenant, integration_id, event_id::text, event_name, idempotency_key,
		domain_entity_id, body, coalesce(response_code, 0), coalesce(response_body, ''), created_at
		FROM rejected_events WHERE tenant = $1 AND integration_id = $2 AND event_id = $3`, tenant, id, eventID)
	if err != nil {
		return nil, fmt.Errorf("reading rejected event: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanRejected)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("rejected event %q: %w", eventID, ErrNotFound)
	}
	return &list[0], nil
}

// DeleteRejected removes one rejected event, or returns ErrNotFound.
func (s *Store) DeleteRejected(ctx context.Context, tenant, id, eventID string) error {
	if !IsUUID(eventID) {
		return fmt.Errorf("rejected event %q: %w", eventID, ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM rejected_events WHERE tenant = $1 AND integration_id = $2 AND event_id = $3`,
		tenant, id, eventID)
	if err != nil {
		return fmt.Errorf("deleting rejected event: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("rejected event %q: %w", eventID, ErrNotFound)
	}
	return nil
}

func scanRejected(r pgx.CollectableRow) (RejectedEvent, error) {
	var e RejectedEvent
	err := r.Scan(&e.Tenant, &e.IntegrationID, &e.EventID, &e.EventName, &e.IdempotencyKey,
		&e.DomainEntityID, &e.Body, &e.ResponseCode, &e.ResponseBody, &e.CreatedAt)
	return e, err
}

// IsUUID reports whether s is a canonical UUID (either case), so a malformed id is a 404
// rather than a Postgres cast error.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
