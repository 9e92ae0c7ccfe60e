-- Observability API (services/observability): indexes for the filters the
-- indexes of 0002 do not cover. Together every filter, alone or paired with
-- another, is answered by an index scan in (attempted_at DESC, id DESC)
-- order on the partitions of its time window (asserted with EXPLAIN in the
-- service's tests).

-- Failures are the rare status people look for: a partial index keeps them
-- one index scan away without indexing every success. (Successes use the
-- tenant/time index and filter: they are most rows.)
CREATE INDEX publish_attempts_failure_time ON publish_attempts (tenant, attempted_at DESC, id DESC)
    WHERE status = 'FAILURE';

-- domain_entity_type has few values but a rare type must not mean a walk
-- through every row of the tenant.
CREATE INDEX publish_attempts_entity_type_time ON publish_attempts (tenant, domain_entity_type, attempted_at DESC, id DESC);

-- The tenant/time index of 0002, rebuilt covering the columns the summary
-- aggregates: a summary over a window (counts by status, integration, event
-- name and time; response-time percentiles) is then an index-only scan
-- instead of a heap visit per row (a tenant's rows are spread over every
-- page of a day partition). Same index count on the hot table, a little wider.
DROP INDEX publish_attempts_tenant_time;
CREATE INDEX publish_attempts_tenant_time ON publish_attempts (tenant, attempted_at DESC, id DESC)
    INCLUDE (status, integration_id, event_name, response_time_ms);
