-- Base tables: users, servers (design sections 2.1, 2.2).

CREATE TABLE users (
    -- Primary identifier (Snowflake ID)
    id BIGINT PRIMARY KEY DEFAULT generate_snowflake_id(),

    -- Public UUID for API exposure (prevents ID enumeration)
    public_id UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,

    -- Username (2-32 characters, alphanumeric + underscore)
    username VARCHAR(32) NOT NULL
        CONSTRAINT users_ck_username CHECK (
            username ~ '^[a-zA-Z0-9_]{2,32}$'
        ),

    -- Discriminator (4-digit tag, e.g., #0001)
    discriminator CHAR(4) NOT NULL DEFAULT '0001'
        CONSTRAINT users_ck_discriminator CHECK (
            discriminator ~ '^[0-9]{4}$'
        ),

    -- Email (unique, normalized to lowercase)
    email VARCHAR(255) NOT NULL UNIQUE
        CONSTRAINT users_ck_email CHECK (
            email ~* '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$'
        ),

    -- Password hash (Argon2id)
    password_hash VARCHAR(255) NOT NULL,

    -- Profile customization
    avatar_url TEXT,
    banner_url TEXT,
    bio VARCHAR(190),

    -- Account status
    is_verified BOOLEAN NOT NULL DEFAULT FALSE,
    is_bot BOOLEAN NOT NULL DEFAULT FALSE,
    is_system BOOLEAN NOT NULL DEFAULT FALSE,

    -- Premium status (0=none, 1=nitro_classic, 2=nitro, 3=nitro_basic)
    premium_type SMALLINT NOT NULL DEFAULT 0
        CONSTRAINT users_ck_premium_type CHECK (premium_type BETWEEN 0 AND 3),

    -- User settings (JSON for flexibility)
    settings JSONB NOT NULL DEFAULT '{}'::jsonb,

    -- Timestamps
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at TIMESTAMPTZ,

    -- Unique username#discriminator combination
    CONSTRAINT users_uk_username_discriminator
        UNIQUE (username, discriminator)
);

CREATE TABLE servers (
    id BIGINT PRIMARY KEY DEFAULT generate_snowflake_id(),
    public_id UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,

    -- Owner (user who created the server)
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,

    -- Server identity
    name VARCHAR(100) NOT NULL
        CONSTRAINT servers_ck_name CHECK (char_length(name) >= 2),
    description VARCHAR(1000),

    -- Media
    icon_url TEXT,
    banner_url TEXT,
    splash_url TEXT,

    -- Settings
    verification_level SMALLINT NOT NULL DEFAULT 0
        CONSTRAINT servers_ck_verification CHECK (verification_level BETWEEN 0 AND 4),
    default_message_notifications SMALLINT NOT NULL DEFAULT 0,
    explicit_content_filter SMALLINT NOT NULL DEFAULT 0,

    -- Features (array of feature flags)
    features TEXT[] NOT NULL DEFAULT '{}',

    -- Boost status
    premium_tier SMALLINT NOT NULL DEFAULT 0,
    premium_subscription_count INTEGER NOT NULL DEFAULT 0,

    -- System channel for welcome messages; the foreign keys to channels are
    -- added in the next migration, once channels exists.
    system_channel_id BIGINT,
    rules_channel_id BIGINT,

    -- Vanity URL (premium feature)
    vanity_url_code VARCHAR(32) UNIQUE,

    -- Member limits
    max_members INTEGER NOT NULL DEFAULT 500000,

    -- Denormalized member count, maintained by the server_members_count
    -- trigger (design section 6.4); not in section 2.2 of the design.
    member_count INTEGER NOT NULL DEFAULT 0,

    -- Timestamps
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at TIMESTAMPTZ
);
