-- Per-user export (pgvault export-user / export-worker, docs/export-format.md):
-- a user's messages and audit-log entries straight from an index, in the
-- order the export writes them.
-- (Not CONCURRENTLY: migrations run inside a transaction.)

-- idx_messages_author (author_id, created_at DESC) finds a user's messages but
-- not per channel: grouping them by channel would mean sorting everything the
-- user ever wrote. With this index every partition yields the user's messages
-- already ordered by (channel_id, created_at, id), so the export merges the
-- partitions and streams one channel after another with no sort and bounded
-- memory. Not partial: soft-deleted messages are exported too (marked
-- deleted). It also serves the messages_fk_author check on user deletion.
CREATE INDEX idx_messages_author_channel
ON messages (author_id, channel_id, created_at, id);

-- The entries where a user acted, in time order, from every partition:
-- idx_audit_logs_user (user_id) alone leaves a sort, and on a small
-- partition (the DEFAULT one) the planner then prefers a sequential scan.
CREATE INDEX idx_audit_logs_user_created
ON audit_logs (user_id, created_at, id);
