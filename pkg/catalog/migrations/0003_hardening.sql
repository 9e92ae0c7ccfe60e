-- Hardening: coalesced log entries.

-- A repeated retry_triggered entry (same integration, same reason, within a
-- minute of the entry's start) bumps its count instead of adding a row, so a
-- retry storm cannot grow the log without end. Old entries beyond what the
-- API shows (plus a margin) are pruned as new ones arrive.
ALTER TABLE integration_logs
    ADD COLUMN repeats      int NOT NULL DEFAULT 1,
    ADD COLUMN last_seen_at timestamptz;

-- The consumer-group epoch whose group has committed offsets. A worker that
-- finds no committed offsets for a group that had some (the broker's offsets
-- retention expired them) resumes from when the integration stopped instead
-- of replaying from its registration.
ALTER TABLE integrations ADD COLUMN offsets_committed_epoch int;
