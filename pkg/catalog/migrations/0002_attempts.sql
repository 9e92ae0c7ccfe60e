-- Delivery: publish attempts (what the observability API lists) and the state
-- the delivery workers keep about integrations and pools.

-- group_epoch is part of the consumer group name. It is bumped when an
-- integration is started again after its offsets outlived the retention
-- (30 days by default): the new group has no commits and starts at
-- offsets_reset_at ("from now on") instead of resuming.
ALTER TABLE integrations
    ADD COLUMN group_epoch      int NOT NULL DEFAULT 0,
    ADD COLUMN offsets_reset_at timestamptz;

-- A delivery pool serving an explicit tenant list claims those tenants here;
-- the "*" pool serves every tenant nobody claimed. One pool per tenant.
CREATE TABLE delivery_pool_claims (
    tenant     text PRIMARY KEY,
    pool       text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Ids only break ties between rows with the same attempted_at (cursor paging);
-- a cached sequence keeps COPY cheap.
CREATE SEQUENCE publish_attempts_id_seq CACHE 1000;

-- One row per event per attempt. Partitioned by day on attempted_at so the
-- retention job drops whole partitions; the delivery attempt writer creates
-- partitions ahead of time (and on demand for late rows).
CREATE TABLE publish_attempts (
    id                 bigint NOT NULL DEFAULT nextval('publish_attempts_id_seq'),
    tenant             text NOT NULL,
    integration_id     text NOT NULL,
    integration_type   text NOT NULL,
    target             text NOT NULL,
    status             text NOT NULL,
    attempted_at       timestamptz NOT NULL,
    retries_remaining  int NOT NULL,
    event_id           uuid NOT NULL,
    domain_entity_id   text NOT NULL,
    domain_entity_type text NOT NULL,
    event_name         text NOT NULL,
    url                text,
    filename           text,
    response_code      int,
    response_body      text,
    response_time_ms   int
) PARTITION BY RANGE (attempted_at);

-- The observability filters: every query is by tenant and newest first; the
-- optional filters that narrow the most get their own index. Status and
-- domain_entity_type are filtered on top of these.
CREATE INDEX publish_attempts_tenant_time ON publish_attempts (tenant, attempted_at DESC, id DESC);
CREATE INDEX publish_attempts_integration_time ON publish_attempts (tenant, integration_id, attempted_at DESC, id DESC);
CREATE INDEX publish_attempts_entity_time ON publish_attempts (tenant, domain_entity_id, attempted_at DESC, id DESC);
CREATE INDEX publish_attempts_name_time ON publish_attempts (tenant, event_name, attempted_at DESC, id DESC);
