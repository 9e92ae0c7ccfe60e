-- Offset checkpoints (issue 8): per integration and partition, the next
-- offset to deliver as last committed to Kafka by the integration's consumer
-- group of this generation and group epoch. The broker may expire a group's
-- committed offsets (offsets.retention.minutes); the delivery worker then
-- resumes from these instead of a timestamp, so records a lagging consumer
-- had not reached are not skipped. Rows are written in batches, every
-- DELIVERY_OFFSET_CHECKPOINT_INTERVAL, never per commit; a row of another
-- generation or epoch is ignored (a new group starts by its own rules).
CREATE TABLE delivery_offset_checkpoints (
    tenant         text NOT NULL,
    integration_id text NOT NULL,
    kafka_partition int NOT NULL,
    generation     bigint NOT NULL,
    group_epoch    int NOT NULL,
    next_offset    bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, integration_id, kafka_partition),
    FOREIGN KEY (tenant, integration_id) REFERENCES integrations (tenant, id) ON DELETE CASCADE
);
