/// The statements of a user export. Every one names its columns (never
/// `SELECT *` or `to_jsonb(row)` of a user), in a ``SelectColumns`` enum
/// after it that builds the SELECT list and reads the rows, takes the user's id as a parameter, and
/// reaches each table through an index (tests check the plans:
/// `ExportTests`, "plans").
///
/// The session runs with TimeZone UTC and DateStyle ISO, so timestamptz
/// columns arrive as `2024-05-01 12:00:00.25+00` and become ISO-8601 in Swift.
public enum UserExportQueries {
    /// The user's own row: profile and settings. No password_hash.
    public static let user = """
        SELECT \(UserColumn.selectList)
        FROM users WHERE id = $1
        """

    /// The columns of ``user``.
    enum UserColumn: Int, SelectColumns {
        case id, publicID, username, discriminator, email, avatarURL, bannerURL, bio, isVerified, isBot,
            isSystem, premiumType, settings, createdAt, updatedAt, deletedAt

        var sql: String {
            switch self {
            case .id: "id"
            case .publicID: "public_id"
            case .username: "username"
            case .discriminator: "discriminator"
            case .email: "email"
            case .avatarURL: "avatar_url"
            case .bannerURL: "banner_url"
            case .bio: "bio"
            case .isVerified: "is_verified"
            case .isBot: "is_bot"
            case .isSystem: "is_system"
            case .premiumType: "premium_type"
            case .settings: "settings"
            case .createdAt: "created_at"
            case .updatedAt: "updated_at"
            case .deletedAt: "deleted_at"
            }
        }
    }

    /// Server memberships (idx_server_members_user), with the server's public facts.
    public static let memberships = """
        SELECT \(MembershipColumn.selectList)
        FROM server_members sm
        JOIN servers s ON s.id = sm.server_id
        WHERE sm.user_id = $1
        ORDER BY sm.joined_at, sm.server_id
        """

    /// The columns of ``memberships``.
    enum MembershipColumn: Int, SelectColumns {
        case serverID, publicID, name, description, iconURL, isOwner, serverCreatedAt, serverDeletedAt, nickname,
            avatarURL, joinedAt, premiumSince, deaf, mute, pending, communicationDisabledUntil, createdAt,
            updatedAt

        var sql: String {
            switch self {
            case .serverID: "sm.server_id"
            case .publicID: "s.public_id"
            case .name: "s.name"
            case .description: "s.description"
            case .iconURL: "s.icon_url"
            case .isOwner: "s.owner_id = sm.user_id AS is_owner"
            case .serverCreatedAt: "s.created_at"
            case .serverDeletedAt: "s.deleted_at"
            case .nickname: "sm.nickname"
            case .avatarURL: "sm.avatar_url"
            case .joinedAt: "sm.joined_at"
            case .premiumSince: "sm.premium_since"
            case .deaf: "sm.deaf"
            case .mute: "sm.mute"
            case .pending: "sm.pending"
            case .communicationDisabledUntil: "sm.communication_disabled_until"
            case .createdAt: "sm.created_at"
            case .updatedAt: "sm.updated_at"
            }
        }
    }

    /// Roles the user holds, per server: from the memberships, through the
    /// primary key of server_members_roles (server_id, user_id, role_id).
    public static let roles = """
        SELECT \(RoleColumn.selectList)
        FROM server_members sm
        JOIN server_members_roles smr ON smr.server_id = sm.server_id AND smr.user_id = sm.user_id
        JOIN roles r ON r.id = smr.role_id
        WHERE sm.user_id = $1
        ORDER BY smr.server_id, r.position DESC, r.id
        """

    /// The columns of ``roles``.
    enum RoleColumn: Int, SelectColumns {
        case serverID, id, name, color, position, permissions, hoist, mentionable, managed, assignedAt

        var sql: String {
            switch self {
            case .serverID: "smr.server_id"
            case .id: "r.id"
            case .name: "r.name"
            case .color: "r.color"
            case .position: "r.position"
            case .permissions: "r.permissions"
            case .hoist: "r.hoist"
            case .mentionable: "r.mentionable"
            case .managed: "r.managed"
            case .assignedAt: "smr.assigned_at"
            }
        }
    }

    /// Servers the user owns (idx_servers_owner), member or not.
    public static let ownedServers = """
        SELECT \(OwnedServerColumn.selectList)
        FROM servers s
        WHERE s.owner_id = $1
        ORDER BY s.created_at, s.id
        """

    /// The columns of ``ownedServers``.
    enum OwnedServerColumn: Int, SelectColumns {
        case id, publicID, name, createdAt, deletedAt, memberCount, isMember

        var sql: String {
            switch self {
            case .id: "s.id"
            case .publicID: "s.public_id"
            case .name: "s.name"
            case .createdAt: "s.created_at"
            case .deletedAt: "s.deleted_at"
            case .memberCount: "s.member_count"
            case .isMember: "EXISTS (SELECT 1 FROM server_members sm WHERE sm.server_id = s.id AND sm.user_id = $1) AS is_member"
            }
        }
    }

    /// How many messages the user wrote (progress; idx_messages_author, index only).
    public static let messageCount = "SELECT count(*) FROM messages WHERE author_id = $1"

    /// The user's messages in the channels with ids from $2 to $3,
    /// soft-deleted ones included, one channel after the other and in time
    /// order within a channel: every partition yields them
    /// in that order from idx_messages_author_channel and the partitions are
    /// merged, so nothing is sorted and the rows stream from the first one
    /// (run through COPY, see `copy(_:userID:)`).
    ///
    /// Per message: the id and public name of a referenced message's author
    /// (only for a reply: the primary key of the partitions from a month
    /// before the reply up to it, where a reply's target almost always is,
    /// else of every partition; then users' primary key; the referenced
    /// message's text is never read), and its attachments
    /// (idx_attachments_message). Which messages have attachments is found
    /// once, by one index-only scan of idx_attachments_message for all the
    /// user's message ids, so only those are probed one by one.
    public static let messages = """
        SELECT \(MessageColumn.selectList)
        FROM messages m
        LEFT JOIN LATERAL (
            SELECT CASE WHEN m.reference_message_id IS NOT NULL THEN coalesce(
                       (SELECT r.author_id FROM messages r
                         WHERE r.id = m.reference_message_id
                           AND r.created_at <= m.created_at AND r.created_at > m.created_at - interval '1 month'
                         LIMIT 1),
                       (SELECT r.author_id FROM messages r WHERE r.id = m.reference_message_id LIMIT 1))
                   END AS author_id
            OFFSET 0
        ) ref ON true
        LEFT JOIN users ru ON ru.id = ref.author_id
        WHERE m.author_id = $1 AND m.channel_id BETWEEN $2 AND $3
        ORDER BY m.channel_id, m.created_at, m.id
        """

    /// The columns of ``messages``: the attachments are one json array per message.
    enum MessageColumn: Int, SelectColumns {
        case id, channelID, createdAt, type, flags, content, editedAt, deletedAt, referenceMessageID,
            referenceChannelID, referenceServerID, referenceAuthorID, referenceAuthorUsername,
            referenceAuthorDiscriminator, mentions, mentionRoles, mentionEveryone, embeds, attachments

        var sql: String {
            switch self {
            case .id: "m.id"
            case .channelID: "m.channel_id"
            case .createdAt: "m.created_at"
            case .type: "m.type"
            case .flags: "m.flags"
            case .content: "m.content"
            case .editedAt: "m.edited_at"
            case .deletedAt: "m.deleted_at"
            case .referenceMessageID: "m.reference_message_id"
            case .referenceChannelID: "m.reference_channel_id"
            case .referenceServerID: "m.reference_server_id"
            case .referenceAuthorID: "ref.author_id"
            case .referenceAuthorUsername: "ru.username"
            case .referenceAuthorDiscriminator: "ru.discriminator"
            case .mentions: "m.mentions"
            case .mentionRoles: "m.mention_roles"
            case .mentionEveryone: "m.mention_everyone"
            case .embeds: "m.embeds"
            case .attachments:
                """
                CASE WHEN m.id IN (SELECT a.message_id FROM attachments a
                                    WHERE a.message_id = ANY (ARRAY(SELECT mine.id FROM messages mine
                                                                   WHERE mine.author_id = $1 AND mine.channel_id BETWEEN $2 AND $3)))
                THEN (SELECT json_agg(json_build_object(
                                 'id', a.id::text, 'filename', a.filename, 'content_type', a.content_type,
                                 'size', a.size, 'url', a.url, 'proxy_url', a.proxy_url,
                                 'width', a.width, 'height', a.height, 'duration_secs', a.duration_secs,
                                 'ephemeral', a.ephemeral, 'created_at', a.created_at::text)
                             ORDER BY a.id)
                        FROM attachments a
                       WHERE a.message_id = m.id AND a.message_created_at = m.created_at)
                END AS attachments
                """
            }
        }
    }

    /// Where to split the user's channels so that about `$2` of their
    /// messages are in channels before it (idx_messages_author_channel, index only).
    public static let channelSplit = """
        SELECT channel_id FROM messages WHERE author_id = $1 ORDER BY channel_id OFFSET $2 LIMIT 1
        """

    /// The channels the user wrote in (idx_messages_author_channel, index only).
    public static let channelIDs = "SELECT DISTINCT channel_id FROM messages WHERE author_id = $1 ORDER BY channel_id"

    /// Channels the user wrote in (a batch of ids), with their servers' names.
    public static let channels = """
        SELECT \(ChannelColumn.selectList)
        FROM channels c LEFT JOIN servers s ON s.id = c.server_id
        WHERE c.id = ANY($1::bigint[])
        """

    /// The columns of ``channels``.
    enum ChannelColumn: Int, SelectColumns {
        case id, type, name, topic, serverID, serverName, parentID, nsfw, createdAt, deletedAt

        var sql: String {
            switch self {
            case .id: "c.id"
            case .type: "c.type"
            case .name: "c.name"
            case .topic: "c.topic"
            case .serverID: "c.server_id"
            case .serverName: "s.name"
            case .parentID: "c.parent_id"
            case .nsfw: "c.nsfw"
            case .createdAt: "c.created_at"
            case .deletedAt: "c.deleted_at"
            }
        }
    }

    /// The other people who wrote in a batch of DMs and group DMs
    /// (idx_messages_channel_created): their ids only; names come from `publicNames`.
    public static let dmParticipants = """
        SELECT DISTINCT \(DMParticipantColumn.selectList) FROM messages m
        WHERE m.channel_id = ANY($1::bigint[]) AND m.deleted_at IS NULL AND m.author_id <> $2
        ORDER BY m.channel_id, m.author_id
        """

    /// The columns of ``dmParticipants``.
    enum DMParticipantColumn: Int, SelectColumns {
        case channelID, authorID

        var sql: String {
            switch self {
            case .channelID: "m.channel_id"
            case .authorID: "m.author_id"
            }
        }
    }

    /// Public names (username#discriminator) of other users, by id.
    public static let publicNames = """
        SELECT \(PublicNameColumn.selectList) FROM users WHERE id = ANY($1::bigint[])
        """

    /// The columns of ``publicNames``.
    enum PublicNameColumn: Int, SelectColumns {
        case id, username, discriminator

        var sql: String {
            switch self {
            case .id: "id"
            case .username: "username"
            case .discriminator: "discriminator"
            }
        }
    }

    /// Reactions the user made (idx_message_reactions_user), with the channel
    /// of the message reacted to (its partition's primary key).
    public static let reactions = """
        SELECT \(ReactionColumn.selectList)
        FROM message_reactions r
        LEFT JOIN LATERAL (
            SELECT m.channel_id FROM messages m
            WHERE m.id = r.message_id AND m.created_at = r.message_created_at LIMIT 1
        ) msg ON true
        WHERE r.user_id = $1
        ORDER BY r.created_at, r.id
        """

    /// The columns of ``reactions``.
    enum ReactionColumn: Int, SelectColumns {
        case id, messageID, messageCreatedAt, channelID, emojiID, emojiName, emojiAnimated, createdAt

        var sql: String {
            switch self {
            case .id: "r.id"
            case .messageID: "r.message_id"
            case .messageCreatedAt: "r.message_created_at"
            case .channelID: "msg.channel_id"
            case .emojiID: "r.emoji_id"
            case .emojiName: "r.emoji_name"
            case .emojiAnimated: "r.emoji_animated"
            case .createdAt: "r.created_at"
            }
        }
    }

    /// Invites the user created (idx_invites_inviter), with the public name of
    /// a targeted user.
    public static let invites = """
        SELECT \(InviteColumn.selectList)
        FROM invites i LEFT JOIN users tu ON tu.id = i.target_user_id
        WHERE i.inviter_id = $1
        ORDER BY i.created_at, i.code
        """

    /// The columns of ``invites``.
    enum InviteColumn: Int, SelectColumns {
        case code, serverID, channelID, maxUses, uses, maxAge, temporary, targetType, targetUserID,
            targetUsername, targetDiscriminator, createdAt, expiresAt

        var sql: String {
            switch self {
            case .code: "i.code"
            case .serverID: "i.server_id"
            case .channelID: "i.channel_id"
            case .maxUses: "i.max_uses"
            case .uses: "i.uses"
            case .maxAge: "i.max_age"
            case .temporary: "i.temporary"
            case .targetType: "i.target_type"
            case .targetUserID: "i.target_user_id"
            case .targetUsername: "tu.username"
            case .targetDiscriminator: "tu.discriminator"
            case .createdAt: "i.created_at"
            case .expiresAt: "i.expires_at"
            }
        }
    }

    /// Audit-log entries where the user acted, in time order: every partition
    /// yields them ordered from idx_audit_logs_user_created and the partitions
    /// are merged (no sort).
    public static let auditLog = """
        SELECT \(AuditLogColumn.selectList)
        FROM audit_logs a
        WHERE a.user_id = $1
        ORDER BY a.created_at, a.id
        """

    /// The columns of ``auditLog``.
    enum AuditLogColumn: Int, SelectColumns {
        case id, serverID, actionType, targetID, targetType, changes, options, reason, createdAt

        var sql: String {
            switch self {
            case .id: "a.id"
            case .serverID: "a.server_id"
            case .actionType: "a.action_type"
            case .targetID: "a.target_id"
            case .targetType: "a.target_type"
            case .changes: "a.changes"
            case .options: "a.options"
            case .reason: "a.reason"
            case .createdAt: "a.created_at"
            }
        }
    }

    /// Which of the candidate addresses belong to other users (the unique
    /// index on email), for redacting audit entries.
    public static let otherUsersEmails = """
        SELECT lower(email) FROM users WHERE email = ANY($1::text[]) AND id <> $2
        """

    /// Every statement, with parameters for a plan check: the user's id and,
    /// where a statement needs one, a channel id.
    public static let all: [Statement] = [
        Statement("user", user) { u, _ in [u] },
        Statement("memberships", memberships) { u, _ in [u] },
        Statement("roles", roles) { u, _ in [u] },
        Statement("owned_servers", ownedServers) { u, _ in [u] },
        Statement("message_count", messageCount) { u, _ in [u] },
        Statement("message_split", channelSplit) { u, _ in [u, "0"] },
        Statement("messages", messages, streaming: .copy) { u, _ in [u, String(Int64.min), String(Int64.max)] },
        Statement("channel_ids", channelIDs) { u, _ in [u] },
        Statement("channels", channels) { _, c in ["{\(c)}"] },
        Statement("dm_participants", dmParticipants) { u, c in ["{\(c)}", u] },
        Statement("public_names", publicNames) { u, _ in ["{\(u)}"] },
        Statement("reactions", reactions, streaming: .copy) { u, _ in [u] },
        Statement("invites", invites) { u, _ in [u] },
        Statement("audit_log", auditLog, streaming: .cursor) { u, _ in [u] },
        Statement("other_users_emails", otherUsersEmails) { u, _ in ["{someone@example.com}", u] },
    ]

    /// Settings of the export's transaction. The user's rows are few and
    /// scattered among everyone's, and reached through indexes from memory
    /// more than from disk: with random_page_cost at 1.1 (instead of 4) the
    /// planner also prefers the merged ordered index scans for the statements
    /// run through COPY, which it plans for all their rows rather than the
    /// first ones as for a cursor.
    public static let session = """
        SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres';
        SET LOCAL random_page_cost = 1.1
        """

    /// `COPY (statement) TO STDOUT` for a statement whose parameters are
    /// integers (the user's id, resolved in the snapshot, and channel ids):
    /// COPY takes no parameters, so they are written in as literals.
    public static func copy(_ sql: String, _ parameters: Int64...) -> String {
        var sql = sql
        for (n, value) in parameters.enumerated().reversed() {
            sql = sql.replacingOccurrences(of: "$\(n + 1)", with: "'\(value)'::bigint")
        }
        return "COPY (" + sql + ") TO STDOUT"
    }

    public struct Statement: Sendable {
        /// How a statement's rows reach the export.
        public enum Streaming: Sendable {
            /// All at once (a few rows).
            case none
            /// Through a cursor (`DECLARE ... NO SCROLL CURSOR FOR`), a page at a time.
            case cursor
            /// As one `COPY (...) TO STDOUT`, a row at a time.
            case copy
        }

        public let name: String
        public let sql: String
        public let streaming: Streaming
        public let parameters: @Sendable (_ userID: String, _ channelID: String) -> [String?]

        init(
            _ name: String, _ sql: String, streaming: Streaming = .none,
            parameters: @escaping @Sendable (_ userID: String, _ channelID: String) -> [String?]
        ) {
            self.name = name
            self.sql = sql
            self.streaming = streaming
            self.parameters = parameters
        }
    }
}
