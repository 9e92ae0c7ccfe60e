package observability

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Tail is the one process-wide live-tail poller. While anyone listens it
// reads the new publish_attempts rows of the listened-to tenants once per
// interval, in one query for all of them, and fans each row out to the
// subscriptions whose filter it matches. Clients never query the table.
//
// Finding "new" rows: the ids come from a cached sequence (each connection
// holds its own block of 1000), and transactions commit out of order, so
// "id > last seen" would skip rows. Instead each poll lists the ids of the
// last Lookback by attempted_at (a pruned, indexed range), remembers those
// it has seen within that window, and reads only the unseen rows in full. A row that reaches the table more than
// Lookback after its attempt (the attempt writer normally flushes within
// 100 ms) is not tailed; the list and export still have it.
//
// A subscription has a bounded buffer; one that falls behind is closed with
// Dropped set, so a slow client never holds up the poller or other clients.
type Tail struct {
	pool     *pgxpool.Pool
	interval time.Duration
	lookback time.Duration
	buffer   int
	log      *slog.Logger

	kick chan struct{}

	mu      sync.Mutex
	tenants map[string]*tenantTail
	stopped bool
}

type tenantTail struct {
	subs   map[*Subscription]struct{}
	primed bool                // the rows already there when listening began are marked seen
	seen   map[int64]time.Time // id → attempted_at, within the lookback
}

// Subscription is one live-tail client.
type Subscription struct {
	tenant string
	filter Filter
	c      chan *Attempt
	ready  chan struct{}
	// dropped is set (before c closes) when the client fell behind.
	dropped bool
}

// C delivers the matching rows; it is closed when the client fell behind
// (Dropped) or the tail stopped.
func (s *Subscription) C() <-chan *Attempt { return s.c }

// Ready is closed once every row committed from then on will be delivered.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Dropped reports whether C closed because the client fell behind. Read it
// only after C is closed.
func (s *Subscription) Dropped() bool { return s.dropped }

// NewTail returns a poller over pool; Run polls.
func NewTail(pool *pgxpool.Pool, interval, lookback time.Duration, buffer int, log *slog.Logger) *Tail {
	return &Tail{pool: pool, interval: interval, lookback: lookback, buffer: buffer, log: log,
		kick: make(chan struct{}, 1), tenants: map[string]*tenantTail{}}
}

// Subscribe starts delivering tenant's new rows matching f. Call Unsubscribe
// when done.
func (t *Tail) Subscribe(tenant string, f Filter) *Subscription {
	s := &Subscription{tenant: tenant, filter: f, c: make(chan *Attempt, t.buffer), ready: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		close(s.c)
		return s
	}
	tt := t.tenants[tenant]
	if tt == nil {
		tt = &tenantTail{subs: map[*Subscription]struct{}{}, seen: map[int64]time.Time{}}
		t.tenants[tenant] = tt
	}
	tt.subs[s] = struct{}{}
	// Poll now rather than at the next tick: a new client is ready sooner.
	select {
	case t.kick <- struct{}{}:
	default:
	}
	return s
}

// Unsubscribe stops s. It is idempotent.
func (t *Tail) Unsubscribe(s *Subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tt := t.tenants[s.tenant]
	if tt == nil {
		return
	}
	delete(tt.subs, s)
	if len(tt.subs) == 0 {
		delete(t.tenants, s.tenant) // forget its seen ids: nobody listens
	}
}

// Run polls until ctx ends, then closes every subscription.
func (t *Tail) Run(ctx context.Context) error {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	defer t.stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-t.kick:
		}
		if err := t.poll(ctx); err != nil && ctx.Err() == nil {
			// The next tick tries again; clients keep waiting meanwhile.
			t.log.Warn("live tail: polling publish attempts", "err", err)
		}
	}
}

func (t *Tail) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for _, tt := range t.tenants {
		for s := range tt.subs {
			close(s.c)
		}
	}
	t.tenants = map[string]*tenantTail{}
}

func (t *Tail) poll(ctx context.Context) error {
	t.mu.Lock()
	tenants := make([]string, 0, len(t.tenants))
	waiting := map[*Subscription]struct{}{}
	for name, tt := range t.tenants {
		tenants = append(tenants, name)
		for s := range tt.subs {
			waiting[s] = struct{}{}
		}
	}
	t.mu.Unlock()
	if len(tenants) == 0 {
		return nil
	}
	since := time.Now().Add(-t.lookback)
	qctx, cancel := context.WithTimeout(ctx, max(t.interval*4, 5*time.Second))
	defer cancel()
	fresh, err := t.read(qctx, tenants, since)
	if err != nil {
		return err
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	now := map[int64]bool{} // rows first seen in this poll: a file's row comes as several attempts
	for _, a := range fresh {
		tt := t.tenants[a.tenant]
		if tt == nil {
			continue // its last client left during the query
		}
		if _, ok := tt.seen[a.ID]; ok && !now[a.ID] {
			continue
		}
		tt.seen[a.ID], now[a.ID] = a.AttemptedAt, true
		if !tt.primed {
			continue // was there before anyone listened
		}
		for s := range tt.subs {
			if !s.filter.Matches(a) {
				continue
			}
			select {
			case s.c <- a:
			default:
				s.dropped = true
				close(s.c)
				delete(tt.subs, s)
			}
		}
	}
	for _, name := range tenants {
		tt := t.tenants[name]
		if tt == nil {
			continue
		}
		tt.primed = true
		for id, at := range tt.seen {
			if at.Before(since) {
				delete(tt.seen, id)
			}
		}
		for s := range tt.subs {
			if _, ok := waiting[s]; ok {
				select {
				case <-s.ready:
				default:
					close(s.ready)
				}
			}
		}
		if len(tt.subs) == 0 {
			delete(t.tenants, name)
		}
	}
	return nil
}

// read returns the rows of tenants attempted at or after since that the
// poller has not seen yet. Two steps, so a busy tenant's window is not
// fetched in full every tick: the (id, attempted_at) pairs of the window come
// from the tenant/time index, then only the unseen rows are read whole.
func (t *Tail) read(ctx context.Context, tenants []string, since time.Time) ([]*Attempt, error) {
	rows, err := t.pool.Query(ctx, "SELECT tenant, id FROM publish_attempts WHERE tenant = ANY($1) AND attempted_at >= $2",
		tenants, since)
	if err != nil {
		return nil, fmt.Errorf("reading new attempt ids: %w", err)
	}
	var unseen []int64
	t.mu.Lock()
	for rows.Next() {
		var tenant string
		var id int64
		if err := rows.Scan(&tenant, &id); err != nil {
			t.mu.Unlock()
			rows.Close()
			return nil, fmt.Errorf("reading new attempt ids: %w", err)
		}
		if tt := t.tenants[tenant]; tt != nil {
			if _, ok := tt.seen[id]; !ok {
				unseen = append(unseen, id)
			}
		}
	}
	t.mu.Unlock()
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading new attempt ids: %w", err)
	}
	if len(unseen) == 0 {
		return nil, nil
	}
	// A file's row comes as one attempt per event, in file order.
	rows, err = t.pool.Query(ctx, "SELECT "+attemptCols+", p.tenant FROM publish_attempts p "+expanded+
		" WHERE p.tenant = ANY($1) AND p.attempted_at >= $2 AND p.id = ANY($3) ORDER BY p.attempted_at, p.id, e.pos",
		tenants, since, unseen)
	if err != nil {
		return nil, fmt.Errorf("reading new attempts: %w", err)
	}
	defer rows.Close()
	var out []*Attempt
	for rows.Next() {
		a := &Attempt{}
		if err := scanAttempt(rows, a, &a.tenant); err != nil {
			return nil, fmt.Errorf("reading new attempts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading new attempts: %w", err)
	}
	return out, nil
}

// Matches reports whether a passes f (the live tail filters in memory, with
// the same meaning as the SQL of the list).
func (f Filter) Matches(a *Attempt) bool {
	switch {
	case !f.From.IsZero() && a.AttemptedAt.Before(f.From),
		!f.To.IsZero() && !a.AttemptedAt.Before(f.To),
		f.EventName != "" && a.EventName != f.EventName,
		f.IntegrationID != "" && a.IntegrationID != f.IntegrationID,
		f.Status != "" && a.Status != f.Status,
		f.DomainEntityID != "" && a.DomainEntityID != f.DomainEntityID,
		f.DomainEntityType != "" && a.DomainEntityType != f.DomainEntityType:
		return false
	}
	return true
}
