package observability

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
)

// Store reads publish_attempts. It never writes: the delivery workers' attempt
// writer (pkg/catalog) owns the table and its partitions.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Attempt is one publish_attempts row as the API shows it.
type Attempt struct {
	ID               int64
	IntegrationID    string
	IntegrationType  string
	Target           string
	Status           string
	AttemptedAt      time.Time
	RetriesRemaining int
	EventID          string
	DomainEntityID   string
	DomainEntityType string
	EventName        string
	URL              *string
	Filename         *string
	ResponseCode     *int
	ResponseBody     *string
	ResponseTimeMS   *int
	tenant           string // only the live tail needs it
}

const attemptCols = `id, integration_id, integration_type, target, status, attempted_at, retries_remaining,
	event_id::text, domain_entity_id, domain_entity_type, event_name, url, filename, response_code,
	response_body, response_time_ms`

func scanAttempt(row pgx.Row, a *Attempt, extra ...any) error {
	return row.Scan(append([]any{&a.ID, &a.IntegrationID, &a.IntegrationType, &a.Target, &a.Status, &a.AttemptedAt,
		&a.RetriesRemaining, &a.EventID, &a.DomainEntityID, &a.DomainEntityType, &a.EventName, &a.URL,
		&a.Filename, &a.ResponseCode, &a.ResponseBody, &a.ResponseTimeMS}, extra...)...)
}

// where renders the filter as SQL conditions over publish_attempts, with its
// arguments appended to args.
//
// Plans: every condition is a plain comparison on an indexed column, so each
// filter and each pair is answered from one of the (tenant, <column>,
// attempted_at DESC, id DESC) indexes, and the attempted_at bounds prune
// partitions to the window. The status is inlined as a literal (it is one of
// two constants) so the planner can match the partial index of failures in
// a generic plan (OpenPool), where the other values are parameters.
func (f Filter) where(tenant string, args []any) (string, []any) {
	var b strings.Builder
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString("tenant = " + arg(tenant))
	if !f.From.IsZero() {
		b.WriteString(" AND attempted_at >= " + arg(f.From))
	}
	if !f.To.IsZero() {
		b.WriteString(" AND attempted_at < " + arg(f.To))
	}
	if f.EventName != "" {
		b.WriteString(" AND event_name = " + arg(f.EventName))
	}
	// An event name fixes the entity type (the part before the dot): a
	// type filter is either implied (and left out, sparing the planner a
	// condition it cannot combine with the name's index) or contradicts the
	// name, and nothing can match (answered without touching an index).
	entityType := f.DomainEntityType
	if f.EventName != "" && entityType != "" {
		if et, _ := events.EntityType(f.EventName); et == entityType {
			entityType = ""
		} else {
			b.WriteString(" AND false")
		}
	}
	if f.IntegrationID != "" {
		b.WriteString(" AND integration_id = " + arg(f.IntegrationID))
	}
	switch f.Status {
	case catalog.AttemptSuccess:
		b.WriteString(" AND status = 'SUCCESS'")
	case catalog.AttemptFailure:
		b.WriteString(" AND status = 'FAILURE'")
	}
	if f.DomainEntityID != "" {
		b.WriteString(" AND domain_entity_id = " + arg(f.DomainEntityID))
	}
	if entityType != "" {
		b.WriteString(" AND domain_entity_type = " + arg(entityType))
	}
	return b.String(), args
}

// listSQL is the page query for q: newest first, after the cursor.
func listSQL(tenant string, q Query, limit int) (string, []any) {
	where, args := q.where(tenant, nil)
	if c := q.After; c != nil {
		// The plain bound prunes partitions; the row comparison is the keyset.
		args = append(args, c.AttemptedAt, c.ID)
		n := len(args)
		where += fmt.Sprintf(" AND attempted_at <= $%d AND (attempted_at, id) < ($%d, $%d)", n-1, n-1, n)
	}
	sql := "SELECT " + attemptCols + " FROM publish_attempts WHERE " + where + " ORDER BY attempted_at DESC, id DESC"
	if limit > 0 {
		// A parameter, so every page size shares one prepared statement.
		args = append(args, limit)
		sql += " LIMIT $" + strconv.Itoa(len(args))
	}
	return sql, args
}

// List returns one page of q (at most q.Limit rows) and whether more follow.
func (s *Store) List(ctx context.Context, tenant string, q Query) ([]Attempt, bool, error) {
	sql, args := listSQL(tenant, q, q.Limit+1)
	// A prepared statement per query shape; see OpenPool for why its plan
	// is generic.
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("listing publish attempts: %w", err)
	}
	defer rows.Close()
	out := make([]Attempt, 0, min(q.Limit+1, 128))
	for rows.Next() {
		var a Attempt
		if err := scanAttempt(rows, &a); err != nil {
			return nil, false, fmt.Errorf("reading publish attempt: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("listing publish attempts: %w", err)
	}
	more := len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	return out, more, nil
}

// Export calls emit for every row matching q (after q.After when set), newest
// first, as the rows arrive from Postgres: memory stays constant however
// many rows match. emit's error stops the export and is returned.
func (s *Store) Export(ctx context.Context, tenant string, q Query, emit func(*Attempt) error) error {
	sql, args := listSQL(tenant, q, 0)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("exporting publish attempts: %w", err)
	}
	defer rows.Close()
	var a Attempt
	for rows.Next() {
		a = Attempt{}
		if err := scanAttempt(rows, &a); err != nil {
			return fmt.Errorf("reading publish attempt: %w", err)
		}
		if err := emit(&a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("exporting publish attempts: %w", err)
	}
	return nil
}
