package observability

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// OpenPool opens the service's own connection pool to the catalog database.
// The service does not share the writers' pool, for two reasons:
//
//   - plan_cache_mode=force_generic_plan: each query shape is planned once
//     per connection (pgx prepares and caches statements) and partitions are
//     pruned at executor start from the bound values. Planning a query over
//     30 day partitions and their indexes costs 1-100 ms (the indexes are
//     looked at for each partition) while running a page costs about 1 ms; a
//     custom plan per request would make planning most of the latency, and
//     Postgres' "auto" mode never switches to the generic plan of a
//     partitioned table (its estimated cost counts every partition).
//   - jit=off: a generic plan's estimated cost (it cannot know the LIMIT or
//     the window) passes jit_above_cost, and compiling the expressions of 30
//     partitions took 2 s for a page that runs in 1 ms. These are short
//     index-driven queries; JIT never pays off for them.
//   - default_transaction_read_only: the service never writes, and a bug
//     cannot make it.
func OpenPool(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["plan_cache_mode"] = "force_generic_plan"
	rp["jit"] = "off"
	rp["default_transaction_read_only"] = "on"
	if rp["application_name"] == "" {
		rp["application_name"] = "eventstream-observability"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the catalog pool: %w", err)
	}
	return pool, nil
}
