-- Message archive (design section 9.1). Created after the indexes so that
-- LIKE ... INCLUDING ALL copies messages' indexes too: a partition detached
-- from messages then attaches here with its indexes reused. LIKE copies no
-- foreign keys, so archived messages do not pin channels or users.
-- It has no partitions of its own: partitions are attached to it.
CREATE TABLE messages_archive (
    LIKE messages INCLUDING ALL
) PARTITION BY RANGE (created_at);

-- Placeholder kept from the design: it moves nothing.
-- pgvault's `archive-partitions` command is the real implementation.
CREATE FUNCTION archive_old_messages(
    retention_days INTEGER DEFAULT 365
)
RETURNS VOID
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE NOTICE 'archive_old_messages(%) is a placeholder and moved nothing; use pgvault archive-partitions',
        retention_days;
END;
$$;
