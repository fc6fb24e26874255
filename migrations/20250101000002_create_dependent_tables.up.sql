-- Dependent tables: channels, roles, channel_permission_overwrites
-- (design sections 2.3, 2.5, 2.7), and the servers -> channels foreign keys
-- that section 2.2 leaves commented out until channels exists.

-- Channel types:
-- 0 = GUILD_TEXT, 1 = DM, 2 = GUILD_VOICE, 3 = GROUP_DM, 4 = GUILD_CATEGORY,
-- 5 = GUILD_ANNOUNCEMENT, 10 = ANNOUNCEMENT_THREAD, 11 = PUBLIC_THREAD,
-- 12 = PRIVATE_THREAD, 13 = GUILD_STAGE_VOICE, 14 = GUILD_DIRECTORY, 15 = GUILD_FORUM
CREATE TABLE channels (
    id BIGINT PRIMARY KEY DEFAULT generate_snowflake_id(),

    -- Server association (NULL for DMs)
    server_id BIGINT REFERENCES servers(id) ON DELETE CASCADE,

    -- Parent category or thread parent
    parent_id BIGINT REFERENCES channels(id) ON DELETE SET NULL,

    -- Channel type
    type SMALLINT NOT NULL DEFAULT 0
        CONSTRAINT channels_ck_type CHECK (type IN (0,1,2,3,4,5,10,11,12,13,14,15)),

    -- Channel identity
    name VARCHAR(100) NOT NULL
        CONSTRAINT channels_ck_name CHECK (char_length(name) >= 1),
    topic VARCHAR(1024),

    -- Ordering within category
    position INTEGER NOT NULL DEFAULT 0,

    -- Settings
    nsfw BOOLEAN NOT NULL DEFAULT FALSE,
    rate_limit_per_user INTEGER NOT NULL DEFAULT 0
        CONSTRAINT channels_ck_rate_limit CHECK (rate_limit_per_user BETWEEN 0 AND 21600),

    -- Voice channel settings
    bitrate INTEGER DEFAULT 64000,
    user_limit INTEGER DEFAULT 0,

    -- Thread settings
    default_auto_archive_duration INTEGER DEFAULT 1440, -- minutes

    -- Permissions
    permission_overwrites JSONB NOT NULL DEFAULT '[]'::jsonb,

    -- Last activity (for sorting). No foreign key: messages is keyed by
    -- (id, created_at), so a bare message id cannot reference it.
    last_message_id BIGINT,
    last_pin_timestamp TIMESTAMPTZ,

    -- Timestamps
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at TIMESTAMPTZ,

    -- Server channels must have server_id
    CONSTRAINT channels_ck_server_required CHECK (
        type IN (1, 3) OR server_id IS NOT NULL
    )
);

-- Deleting a channel must not be blocked by (or delete) the server that
-- points at it: the pointer is cleared instead.
ALTER TABLE servers
    ADD CONSTRAINT servers_fk_system_channel
        FOREIGN KEY (system_channel_id) REFERENCES channels(id) ON DELETE SET NULL,
    ADD CONSTRAINT servers_fk_rules_channel
        FOREIGN KEY (rules_channel_id) REFERENCES channels(id) ON DELETE SET NULL;

CREATE TABLE roles (
    id BIGINT PRIMARY KEY DEFAULT generate_snowflake_id(),
    server_id BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,

    -- Role identity
    name VARCHAR(100) NOT NULL,
    color INTEGER NOT NULL DEFAULT 0, -- RGB color as integer

    -- Display settings
    hoist BOOLEAN NOT NULL DEFAULT FALSE, -- Display separately
    position INTEGER NOT NULL DEFAULT 0,
    icon_url TEXT,
    unicode_emoji VARCHAR(32),

    -- Permissions (64-bit bitfield)
    permissions BIGINT NOT NULL DEFAULT 0,

    -- Mention settings
    mentionable BOOLEAN NOT NULL DEFAULT FALSE,

    -- Bot role flag
    managed BOOLEAN NOT NULL DEFAULT FALSE,

    -- Timestamps
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Unique position per server (position 0 is reserved for @everyone)
    CONSTRAINT roles_uk_server_position UNIQUE (server_id, position)
);

CREATE TABLE channel_permission_overwrites (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,

    -- Target type: 0 = role, 1 = member
    target_type SMALLINT NOT NULL
        CONSTRAINT overwrites_ck_target_type CHECK (target_type IN (0, 1)),

    -- Target ID (role_id or user_id; polymorphic, so no foreign key)
    target_id BIGINT NOT NULL,

    -- Permission bits
    allow BIGINT NOT NULL DEFAULT 0,
    deny BIGINT NOT NULL DEFAULT 0,

    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    PRIMARY KEY (channel_id, target_type, target_id)
);
