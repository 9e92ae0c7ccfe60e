-- S3 attempts: one publish_attempts row per file (per attempt of that file)
-- instead of one per event (issue 11). One row per event cost more Postgres
-- time than the S3 path has: about 30k rows/s through six indexes against
-- ~70k events/s to deliver. A file row carries its events as parallel arrays
-- in file order; the observability API expands it into one element per
-- event. Webhook attempts, and S3 rows written before this migration, stay
-- one row per event (event_ids NULL) and are served unchanged.
--
-- In a file row the per-event columns hold placeholders the filters never
-- match (event_id the nil UUID, the texts empty): the arrays are the truth.

ALTER TABLE publish_attempts
    ADD COLUMN event_count         int NOT NULL DEFAULT 1,
    ADD COLUMN event_ids           uuid[],
    ADD COLUMN domain_entity_ids   text[],
    ADD COLUMN domain_entity_types text[],
    ADD COLUMN event_names         text[];

-- The array filters (domain entity id, entity type, event name) of file rows
-- in one GIN index, with the tenant as a key too (btree_gin) so one tenant's
-- common entity id never walks another tenant's files. Partial: webhook rows
-- (most rows) pay nothing for it. Integration, status and time filters of
-- file rows use the btree indexes of 0002/0004 like any row.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX publish_attempts_file_events ON publish_attempts
    USING gin (tenant, domain_entity_ids, domain_entity_types, event_names)
    WITH (fastupdate = off) WHERE event_ids IS NOT NULL;
