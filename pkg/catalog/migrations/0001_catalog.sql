-- The catalog: tenants, their integrations, integration logs and rejected events.

CREATE TABLE tenants (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every registration gets a new generation, so a deleted and re-created
-- integration id never inherits the consumer-group offsets of its predecessor.
CREATE SEQUENCE integration_generation_seq;

CREATE TABLE integrations (
    tenant             text NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    id                 text NOT NULL CHECK (id ~ '^[a-z0-9-]{1,50}$'),
    generation         bigint NOT NULL DEFAULT nextval('integration_generation_seq'),
    integration_type   text NOT NULL CHECK (integration_type IN ('permanent', 'temporary')),
    status             text NOT NULL CHECK (status IN ('running', 'stopped')),
    target             text NOT NULL CHECK (target IN ('webhook', 's3')),
    -- webhook target
    callback_url       text,
    api_key_enc        bytea,
    signing_secret_enc bytea,
    -- s3 target
    aws_access_key_id  text,
    aws_secret_enc     bytea,
    aws_region         text,
    bucket             text,
    key_prefix         text,
    -- NULL means the condition is absent (as opposed to an empty list).
    event_filter       text[],
    entity_filter      text[],
    starts_at          timestamptz,
    ends_at            timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- when the integration last went from running to stopped (the 30-day rule)
    stopped_at         timestamptz,
    -- when a temporary integration delivered its whole window
    completed_at       timestamptz,
    PRIMARY KEY (tenant, id),
    CHECK ((target = 'webhook') = (callback_url IS NOT NULL)),
    CHECK ((target = 's3') = (bucket IS NOT NULL))
);

CREATE INDEX integrations_running ON integrations (tenant) WHERE status = 'running';

CREATE TABLE integration_logs (
    tenant         text NOT NULL,
    integration_id text NOT NULL,
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    action         text NOT NULL,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant, integration_id, seq),
    FOREIGN KEY (tenant, integration_id) REFERENCES integrations (tenant, id) ON DELETE CASCADE
);

CREATE TABLE rejected_events (
    tenant           text NOT NULL,
    integration_id   text NOT NULL,
    event_id         uuid NOT NULL,
    event_name       text NOT NULL,
    idempotency_key  text NOT NULL,
    domain_entity_id text NOT NULL,
    -- the exact bytes of the JSON body that was sent to (and rejected by) the endpoint
    body             bytea NOT NULL,
    response_code    int,
    response_body    text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant, integration_id, event_id),
    FOREIGN KEY (tenant, integration_id) REFERENCES integrations (tenant, id) ON DELETE CASCADE
);

-- Workers LISTEN on this channel to react to integration changes at once; a
-- periodic resync covers notifications missed while disconnected.
CREATE FUNCTION notify_integration_change() RETURNS trigger AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    PERFORM pg_notify('eventstream_integrations', json_build_object(
        'op', lower(TG_OP), 'tenant', r.tenant, 'id', r.id,
        'generation', r.generation, 'status', r.status)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER integrations_notify
    AFTER INSERT OR UPDATE OR DELETE ON integrations
    FOR EACH ROW EXECUTE FUNCTION notify_integration_change();
