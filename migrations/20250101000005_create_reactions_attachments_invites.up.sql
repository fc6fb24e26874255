-- message_reactions, attachments (they reference messages) and invites
-- (design sections 2.8-2.10).

CREATE TABLE message_reactions (
    -- Surrogate key: the design's key contains COALESCE(emoji_id, 0), and a
    -- primary key may only list columns. The natural key is enforced by
    -- message_reactions_uk_reaction below.
    id BIGINT PRIMARY KEY DEFAULT generate_snowflake_id(),

    message_id BIGINT NOT NULL,
    message_created_at TIMESTAMPTZ NOT NULL, -- For partition routing
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,

    -- Emoji (either unicode or custom emoji ID)
    emoji_id BIGINT, -- NULL for unicode emoji
    emoji_name VARCHAR(32) NOT NULL, -- Unicode char or custom emoji name
    emoji_animated BOOLEAN NOT NULL DEFAULT FALSE,

    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- One reaction per (message, user, emoji); two unicode reactions (emoji_id
    -- NULL) with the same name are duplicates. PostgreSQL 15+.
    CONSTRAINT message_reactions_uk_reaction
        UNIQUE NULLS NOT DISTINCT (message_id, message_created_at, user_id, emoji_id, emoji_name),
    CONSTRAINT message_reactions_fk_message
        FOREIGN KEY (message_id, message_created_at)
        REFERENCES messages(id, created_at) ON DELETE CASCADE
);

CREATE TABLE attachments (
    id BIGINT PRIMARY KEY DEFAULT generate_snowflake_id(),
    message_id BIGINT NOT NULL,
    message_created_at TIMESTAMPTZ NOT NULL,

    -- File information
    filename VARCHAR(255) NOT NULL,
    content_type VARCHAR(127),
    size INTEGER NOT NULL,

    -- URLs
    url TEXT NOT NULL,
    proxy_url TEXT,

    -- Image dimensions (if applicable)
    width INTEGER,
    height INTEGER,

    -- Audio duration (if applicable)
    duration_secs FLOAT,

    -- Flags
    ephemeral BOOLEAN NOT NULL DEFAULT FALSE,

    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT attachments_fk_message
        FOREIGN KEY (message_id, message_created_at)
        REFERENCES messages(id, created_at) ON DELETE CASCADE
);

CREATE TABLE invites (
    code VARCHAR(32) PRIMARY KEY,

    server_id BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    inviter_id BIGINT REFERENCES users(id) ON DELETE SET NULL,

    -- Usage limits
    max_uses INTEGER NOT NULL DEFAULT 0, -- 0 = unlimited
    uses INTEGER NOT NULL DEFAULT 0,
    max_age INTEGER NOT NULL DEFAULT 86400, -- seconds, 0 = never expires

    -- Flags
    temporary BOOLEAN NOT NULL DEFAULT FALSE,

    -- Target for voice channel invites
    target_type SMALLINT,
    target_user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,

    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    -- created_at + max_age seconds. timestamptz + interval is only STABLE (it
    -- depends on TimeZone for day/month units), so the addition is done on the
    -- UTC wall-clock time, where every operator used is IMMUTABLE; for a
    -- seconds-only interval the result is the same instant.
    expires_at TIMESTAMPTZ GENERATED ALWAYS AS (
        CASE WHEN max_age = 0 THEN NULL
        ELSE ((created_at AT TIME ZONE 'UTC') + make_interval(secs => max_age)) AT TIME ZONE 'UTC'
        END
    ) STORED
);
