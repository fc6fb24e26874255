-- Views (design section 7), as designed. GROUP BY c.id and
-- GROUP BY sm.server_id, sm.user_id are valid because they are the primary
-- keys of channels and server_members (functional dependency).

CREATE VIEW v_user_profiles AS
SELECT
    u.id,
    u.public_id,
    u.username,
    u.discriminator,
    u.avatar_url,
    u.banner_url,
    u.bio,
    u.premium_type,
    u.is_bot,
    u.created_at,
    CASE WHEN u.is_verified THEN 'verified' ELSE 'unverified' END as status
FROM users u
WHERE u.deleted_at IS NULL;

CREATE VIEW v_channels_with_stats AS
SELECT
    c.*,
    COUNT(m.id) as message_count,
    MAX(m.created_at) as last_message_at
FROM channels c
LEFT JOIN messages m ON c.id = m.channel_id AND m.deleted_at IS NULL
WHERE c.deleted_at IS NULL
GROUP BY c.id;

CREATE VIEW v_server_members_full AS
SELECT
    sm.server_id,
    sm.user_id,
    sm.nickname,
    sm.joined_at,
    sm.premium_since,
    u.username,
    u.discriminator,
    u.avatar_url as user_avatar,
    sm.avatar_url as member_avatar,
    COALESCE(
        array_agg(r.id ORDER BY r.position DESC) FILTER (WHERE r.id IS NOT NULL),
        '{}'
    ) as role_ids,
    COALESCE(
        bit_or(r.permissions),
        0
    ) as computed_permissions
FROM server_members sm
JOIN users u ON sm.user_id = u.id
LEFT JOIN server_members_roles smr ON sm.server_id = smr.server_id AND sm.user_id = smr.user_id
LEFT JOIN roles r ON smr.role_id = r.id
WHERE u.deleted_at IS NULL
GROUP BY sm.server_id, sm.user_id, u.username, u.discriminator, u.avatar_url;
