-- Partitioned tables: messages, audit_logs (design sections 2.4, 2.11), and
-- the partition functions of section 5, which are created first so that the
-- monthly partitions below are made by them.

-- Creates the monthly partition of table_name that contains start_date.
-- table_name is read like a table name in SQL ('messages', 'public.messages',
-- '"Ops"."Job Runs"'); the partition is created in the parent's schema as
-- <parent>_YYYY_MM. Bounds are UTC month boundaries whatever the session
-- TimeZone, so the same call always produces the same partition.
CREATE FUNCTION create_monthly_partition(
    table_name TEXT,
    start_date DATE
)
RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    parent_oid REGCLASS := table_name::regclass;
    parent_schema NAME;
    parent_name NAME;
    month_start DATE := date_trunc('month', start_date::timestamp)::date;
    month_end DATE := (month_start + INTERVAL '1 month')::date;
    partition_name TEXT;
BEGIN
    SELECT n.nspname, c.relname
      INTO parent_schema, parent_name
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = parent_oid;

    partition_name := parent_name || '_' || to_char(month_start, 'YYYY_MM');

    IF to_regclass(format('%I.%I', parent_schema, partition_name)) IS NOT NULL THEN
        RAISE NOTICE 'Partition already exists: %', format('%I.%I', parent_schema, partition_name);
        RETURN;
    END IF;

    EXECUTE format(
        'CREATE TABLE %I.%I PARTITION OF %I.%I
         FOR VALUES FROM (%L) TO (%L)',
        parent_schema, partition_name,
        parent_schema, parent_name,
        to_char(month_start, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(month_end, 'YYYY-MM-DD') || ' 00:00:00+00'
    );

    RAISE NOTICE 'Created partition: %', format('%I.%I', parent_schema, partition_name);
END;
$$;

-- Creates the partitions of the current (UTC) month and the next months_ahead
-- months. For cron (design: pg_cron, monthly).
CREATE FUNCTION ensure_future_partitions(
    table_name TEXT,
    months_ahead INTEGER DEFAULT 3
)
RETURNS VOID
LANGUAGE plpgsql
AS $$
DECLARE
    current_month DATE := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
BEGIN
    FOR i IN 0..months_ahead LOOP
        PERFORM create_monthly_partition(
            table_name,
            (current_month + make_interval(months => i))::date
        );
    END LOOP;
END;
$$;

-- Placeholder kept from the design (section 5.2): it drops nothing.
-- pgvault's `archive-partitions` command is the real implementation.
CREATE FUNCTION drop_old_partitions(
    table_name TEXT,
    retention_months INTEGER
)
RETURNS VOID
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM table_name::regclass;  -- still reject unknown tables
    RAISE NOTICE 'drop_old_partitions(%, %) is a placeholder and dropped nothing; use pgvault archive-partitions',
        table_name, retention_months;
END;
$$;

CREATE TABLE messages (
    id BIGINT NOT NULL DEFAULT generate_snowflake_id(),
    channel_id BIGINT NOT NULL,
    author_id BIGINT NOT NULL,

    -- Content (up to 4000 chars for Nitro, 2000 for regular)
    content TEXT,

    -- Message type
    -- 0 = DEFAULT, 1 = RECIPIENT_ADD, 2 = RECIPIENT_REMOVE, 3 = CALL,
    -- 4 = CHANNEL_NAME_CHANGE, 5 = CHANNEL_ICON_CHANGE, 6 = CHANNEL_PINNED_MESSAGE,
    -- 7 = USER_JOIN, 8 = GUILD_BOOST, 19 = REPLY, 20 = CHAT_INPUT_COMMAND
    type SMALLINT NOT NULL DEFAULT 0,

    -- Message flags (bitfield)
    -- 1 << 0 = CROSSPOSTED, 1 << 1 = IS_CROSSPOST, 1 << 2 = SUPPRESS_EMBEDS,
    -- 1 << 3 = SOURCE_MESSAGE_DELETED, 1 << 4 = URGENT
    flags INTEGER NOT NULL DEFAULT 0,

    -- Reply reference: a soft pointer, deliberately without foreign keys. The
    -- referenced message may be deleted or live in another channel/server and
    -- the reply must survive; and messages is keyed by (id, created_at), so a
    -- bare message id cannot be a foreign key anyway.
    reference_message_id BIGINT,
    reference_channel_id BIGINT,
    reference_server_id BIGINT,

    -- Rich content
    embeds JSONB NOT NULL DEFAULT '[]'::jsonb,
    mentions BIGINT[] NOT NULL DEFAULT '{}',
    mention_roles BIGINT[] NOT NULL DEFAULT '{}',
    mention_everyone BOOLEAN NOT NULL DEFAULT FALSE,

    -- Edit tracking
    edited_at TIMESTAMPTZ,

    -- Timestamps
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at TIMESTAMPTZ,

    -- Composite primary key for partitioning
    PRIMARY KEY (id, created_at),

    -- The ER diagram's channels/users -> messages relationships.
    CONSTRAINT messages_fk_channel
        FOREIGN KEY (channel_id) REFERENCES channels(id) ON DELETE CASCADE,
    -- Users are soft-deleted; hard-deleting one who has messages is refused,
    -- like servers.owner_id.
    CONSTRAINT messages_fk_author
        FOREIGN KEY (author_id) REFERENCES users(id) ON DELETE RESTRICT
) PARTITION BY RANGE (created_at);

CREATE TABLE audit_logs (
    id BIGINT NOT NULL DEFAULT generate_snowflake_id(),
    server_id BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,

    -- Actor
    user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,

    -- Action type (Discord audit log events)
    action_type SMALLINT NOT NULL,

    -- Target
    target_id BIGINT,
    target_type VARCHAR(32),

    -- Changes
    changes JSONB,

    -- Additional data
    options JSONB,
    reason VARCHAR(512),

    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- A partitioned table's primary key must contain the partition key.
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

-- Fixed range, independent of the date the migration runs: every month from
-- 2024-01 through 2026-12, plus a DEFAULT partition for anything outside it.
-- ensure_future_partitions() extends the range later.
DO $$
BEGIN
    FOR i IN 0..35 LOOP
        PERFORM create_monthly_partition('messages', (DATE '2024-01-01' + make_interval(months => i))::date);
        PERFORM create_monthly_partition('audit_logs', (DATE '2024-01-01' + make_interval(months => i))::date);
    END LOOP;
END;
$$;

CREATE TABLE messages_default PARTITION OF messages DEFAULT;
CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;
