-- Junction tables: server_members, server_members_roles (design section 2.6).

CREATE TABLE server_members (
    server_id BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,

    -- Member-specific nickname
    nickname VARCHAR(32),

    -- Member avatar override
    avatar_url TEXT,

    -- Join information
    joined_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Premium (Nitro boost) since
    premium_since TIMESTAMPTZ,

    -- Communication settings
    deaf BOOLEAN NOT NULL DEFAULT FALSE,
    mute BOOLEAN NOT NULL DEFAULT FALSE,

    -- Pending membership (verification required)
    pending BOOLEAN NOT NULL DEFAULT FALSE,

    -- Timeout (temporary mute)
    communication_disabled_until TIMESTAMPTZ,

    -- Timestamps
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE server_members_roles (
    server_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    role_id BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,

    assigned_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    PRIMARY KEY (server_id, user_id, role_id),
    FOREIGN KEY (server_id, user_id)
        REFERENCES server_members(server_id, user_id) ON DELETE CASCADE
);
