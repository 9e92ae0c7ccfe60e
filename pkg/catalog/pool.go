package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolOptions size a connection pool and bound its waits. Zero fields take
// the defaults.
type PoolOptions struct {
	// MaxConns is the most connections (default 10; a pool_max_conns in the
	// URL wins).
	MaxConns int32
	// StatementTimeout bounds one statement on the server (default 30s), so
	// a stuck query frees its connection instead of holding it forever.
	StatementTimeout time.Duration
	// ConnectTimeout bounds opening a connection (default 5s).
	ConnectTimeout time.Duration
}

// OpenPool opens a pool over url sized and bounded by o: when Postgres is
// slow, callers wait for a connection (backpressure) and their contexts
// bound the wait, instead of every request piling up without end.
func OpenPool(ctx context.Context, url string, o PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the database URL: %w", err)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = o.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	if _, set := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(o.StatementTimeout.Milliseconds())
	}
	cfg.HealthCheckPeriod = 15 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the catalog: %w", err)
	}
	return pool, nil
}
