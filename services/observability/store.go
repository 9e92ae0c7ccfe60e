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

// Attempt is one event's attempt as the API shows it: a webhook row, or
// one event of an S3 file's row (see catalog.Attempt).
type Attempt struct {
	ID               int64 // the row's
	Pos              int64 // the event's position in its row, from 1
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

// expanded is the FROM clause turning rows p into one row per event e: a
// file row's arrays in file order (pos from 1), or a per-event row's own
// columns (its arrays are NULL) as a single element.
const expanded = `CROSS JOIN LATERAL unnest(coalesce(p.event_ids, ARRAY[p.event_id]),
		coalesce(p.domain_entity_ids, ARRAY[p.domain_entity_id]), coalesce(p.domain_entity_types, ARRAY[p.domain_entity_type]),
		coalesce(p.event_names, ARRAY[p.event_name])) WITH ORDINALITY AS e(event_id, domain_entity_id, domain_entity_type, event_name, pos)`

const attemptCols = `p.id, e.pos, p.integration_id, p.integration_type, p.target, p.status, p.attempted_at, p.retries_remaining,
	e.event_id::text, e.domain_entity_id, e.domain_entity_type, e.event_name, p.url, p.filename, p.response_code,
	p.response_body, p.response_time_ms`

func scanAttempt(row pgx.Row, a *Attempt, extra ...any) error {
	return row.Scan(append([]any{&a.ID, &a.Pos, &a.IntegrationID, &a.IntegrationType, &a.Target, &a.Status, &a.AttemptedAt,
		&a.RetriesRemaining, &a.EventID, &a.DomainEntityID, &a.DomainEntityType, &a.EventName, &a.URL,
		&a.Filename, &a.ResponseCode, &a.ResponseBody, &a.ResponseTimeMS}, extra...)...)
}

// source renders the filter as the SQL of its events: "FROM ... WHERE ...",
// rows p expanded into events e, with its arguments appended to args. With
// after set, only the events after that position (newest first, then file
// order) are in it.
//
// Plans: every row condition is a plain comparison on an indexed column, so
// each filter and each pair is answered from one of the (tenant, <column>,
// attempted_at DESC, id DESC) indexes, and the attempted_at bounds prune
// partitions to the window. The status is inlined as a literal (it is one of
// two constants) so the planner can match the partial index of failures in
// a generic plan (OpenPool), where the other values are parameters.
//
// A filter on a per-event value (event name, domain entity id or type) is
// two scans in one UNION ALL: per-event rows by those btree indexes (a file
// row's per-event columns are placeholders no filter matches), and file rows
// by the GIN index over their arrays (migration 0005). The events of a file
// row are then filtered one by one: a file matching the filter holds other
// events too.
func (f Filter) source(tenant string, after *Cursor, limit string, args []any) (string, []any) {
	c, args := f.conds(tenant, after, args)
	// A plain subquery (the planner pulls it up into the outer query) keeps
	// the row conditions unqualified.
	rows := "(SELECT * FROM publish_attempts WHERE " + c.common + ") p"
	var elems []string
	if c.byEvent != "" {
		perEventRows := "SELECT * FROM publish_attempts WHERE " + c.common + c.byEvent
		fileRows := "SELECT * FROM publish_attempts WHERE " + c.common + c.inFiles
		if limit != "" {
			// Each branch in page order, so the page merges them instead of
			// sorting every match (the planner cannot push the outer order
			// into the branches: they keep their WHERE, so they stay
			// subqueries). A per-event row is one event that passes the
			// event conditions and is never the cursor's file row, so its
			// branch stops at the page size, strictly after the cursor.
			perEventRows = "(" + perEventRows + c.rowKeyset + " ORDER BY attempted_at DESC, id DESC LIMIT " + limit + ")"
			fileRows = "(" + fileRows + " ORDER BY attempted_at DESC, id DESC)"
		}
		rows = "(" + perEventRows + " UNION ALL " + fileRows + ") p"
		elems = append(elems, c.ofEvent)
	}
	if c.keyset != "" {
		elems = append(elems, c.keyset)
	}
	sql := "FROM " + rows + " " + expanded
	if len(elems) > 0 {
		sql += " WHERE " + strings.Join(elems, " AND ")
	}
	return sql, args
}

// conditions is a filter rendered as SQL conditions.
type conditions struct {
	common    string // on any row: tenant, time, integration, status, cursor bound
	byEvent   string // " AND ..." on a per-event row's columns; "" without event filters
	inFiles   string // " AND ..." finding the file rows holding a matching event
	ofEvent   string // on an expanded event e
	keyset    string // on an expanded event: after the cursor
	rowKeyset string // " AND ...": per-event rows after the cursor
}

func (f Filter) conds(tenant string, after *Cursor, args []any) (conditions, []any) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var c conditions
	var common strings.Builder
	common.WriteString("tenant = " + arg(tenant))
	if !f.From.IsZero() {
		common.WriteString(" AND attempted_at >= " + arg(f.From))
	}
	if !f.To.IsZero() {
		common.WriteString(" AND attempted_at < " + arg(f.To))
	}
	if f.IntegrationID != "" {
		common.WriteString(" AND integration_id = " + arg(f.IntegrationID))
	}
	switch f.Status {
	case catalog.AttemptSuccess:
		common.WriteString(" AND status = 'SUCCESS'")
	case catalog.AttemptFailure:
		common.WriteString(" AND status = 'FAILURE'")
	}
	if after != nil {
		// The plain bound prunes partitions; the row comparison is the
		// keyset of rows, including the cursor's row: its later events
		// are on the next page.
		at, id, pos := arg(after.AttemptedAt), arg(after.ID), arg(after.Pos)
		common.WriteString(" AND attempted_at <= " + at + " AND (attempted_at, id) <= (" + at + ", " + id + ")")
		c.keyset = "((p.attempted_at, p.id) < (" + at + ", " + id + ") OR e.pos > " + pos + ")"
		c.rowKeyset = " AND (attempted_at, id) < (" + at + ", " + id + ")"
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
			common.WriteString(" AND false")
		}
	}
	c.common = common.String()
	var byEvent, inFiles strings.Builder
	var ofEvent []string
	for _, pe := range []struct{ column, value string }{
		{"event_name", f.EventName}, {"domain_entity_id", f.DomainEntityID}, {"domain_entity_type", entityType},
	} {
		if pe.value == "" {
			continue
		}
		v := arg(pe.value)
		byEvent.WriteString(" AND " + pe.column + " = " + v)
		inFiles.WriteString(" AND " + pe.column + "s @> ARRAY[" + v + "::text]")
		ofEvent = append(ofEvent, "e."+pe.column+" = "+v)
	}
	if byEvent.Len() > 0 {
		c.byEvent = byEvent.String()
		c.inFiles = " AND event_ids IS NOT NULL" + inFiles.String()
		c.ofEvent = strings.Join(ofEvent, " AND ")
	}
	return c, args
}

// listSQL is the page query for q: newest first, a file's events in file
// order, after the cursor.
func listSQL(tenant string, q Query, limit int) (string, []any) {
	var args []any
	lim := ""
	if limit > 0 {
		// A parameter, so every page size shares one prepared statement.
		args = append(args, limit)
		lim = "$1"
	}
	from, args := q.source(tenant, q.After, lim, args)
	sql := "SELECT " + attemptCols + " " + from + " ORDER BY p.attempted_at DESC, p.id DESC, e.pos"
	if lim != "" {
		sql += " LIMIT " + lim
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
