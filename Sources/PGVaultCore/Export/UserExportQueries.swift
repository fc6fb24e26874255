/// The statements of a user export. Every one names its columns (never
/// `SELECT *` or `to_jsonb(row)` of a user), takes the user's id as a parameter, and
/// reaches each table through an index (tests check the plans:
/// `ExportTests`, "plans").
///
/// The session runs with TimeZone UTC and DateStyle ISO, so timestamptz
/// columns arrive as `2024-05-01 12:00:00.25+00` and become ISO-8601 in Swift.
public enum UserExportQueries {
    /// The user's own row: profile and settings. No password_hash.
    public static let user = """
        SELECT id, public_id, username, discriminator, email, avatar_url, banner_url, bio,
               is_verified, is_bot, is_system, premium_type, settings,
               created_at, updated_at, deleted_at
        FROM users WHERE id = $1
        """

    /// Server memberships (idx_server_members_user), with the server's public facts.
    public static let memberships = """
        SELECT sm.server_id, s.public_id, s.name, s.description, s.icon_url,
               s.owner_id = sm.user_id AS is_owner, s.created_at, s.deleted_at,
               sm.nickname, sm.avatar_url, sm.joined_at, sm.premium_since, sm.deaf, sm.mute,
               sm.pending, sm.communication_disabled_until, sm.created_at, sm.updated_at
        FROM server_members sm
        JOIN servers s ON s.id = sm.server_id
        WHERE sm.user_id = $1
        ORDER BY sm.joined_at, sm.server_id
        """

    /// Roles the user holds, per server: from the memberships, through the
    /// primary key of server_members_roles (server_id, user_id, role_id).
    public static let roles = """
        SELECT smr.server_id, r.id, r.name, r.color, r.position, r.permissions,
               r.hoist, r.mentionable, r.managed, smr.assigned_at
        FROM server_members sm
        JOIN server_members_roles smr ON smr.server_id = sm.server_id AND smr.user_id = sm.user_id
        JOIN roles r ON r.id = smr.role_id
        WHERE sm.user_id = $1
        ORDER BY smr.server_id, r.position DESC, r.id
        """

    /// Servers the user owns (idx_servers_owner), member or not.
    public static let ownedServers = """
        SELECT s.id, s.public_id, s.name, s.created_at, s.deleted_at, s.member_count,
               EXISTS (SELECT 1 FROM server_members sm WHERE sm.server_id = s.id AND sm.user_id = $1) AS is_member
        FROM servers s
        WHERE s.owner_id = $1
        ORDER BY s.created_at, s.id
        """

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
        SELECT m.id, m.channel_id, m.created_at, m.type, m.flags, m.content, m.edited_at, m.deleted_at,
               m.reference_message_id, m.reference_channel_id, m.reference_server_id,
               ref.author_id, ru.username, ru.discriminator,
               m.mentions, m.mention_roles, m.mention_everyone, m.embeds,
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

    /// Where to split the user's channels so that about `$2` of their
    /// messages are in channels before it (idx_messages_author_channel, index only).
    public static let channelSplit = """
        SELECT channel_id FROM messages WHERE author_id = $1 ORDER BY channel_id OFFSET $2 LIMIT 1
        """

    /// The channels the user wrote in (idx_messages_author_channel, index only).
    public static let channelIDs = "SELECT DISTINCT channel_id FROM messages WHERE author_id = $1 ORDER BY channel_id"

    /// Channels the user wrote in (a batch of ids), with their servers' names.
    public static let channels = """
        SELECT c.id, c.type, c.name, c.topic, c.server_id, s.name, c.parent_id, c.nsfw,
               c.created_at, c.deleted_at
        FROM channels c LEFT JOIN servers s ON s.id = c.server_id
        WHERE c.id = ANY($1::bigint[])
        """

    /// The other people who wrote in a batch of DMs and group DMs
    /// (idx_messages_channel_created): their ids only; names come from `publicNames`.
    public static let dmParticipants = """
        SELECT DISTINCT m.channel_id, m.author_id FROM messages m
        WHERE m.channel_id = ANY($1::bigint[]) AND m.deleted_at IS NULL AND m.author_id <> $2
        ORDER BY m.channel_id, m.author_id
        """

    /// Public names (username#discriminator) of other users, by id.
    public static let publicNames = """
        SELECT id, username, discriminator FROM users WHERE id = ANY($1::bigint[])
        """

    /// Reactions the user made (idx_message_reactions_user), with the channel
    /// of the message reacted to (its partition's primary key).
    public static let reactions = """
        SELECT r.id, r.message_id, r.message_created_at, msg.channel_id,
               r.emoji_id, r.emoji_name, r.emoji_animated, r.created_at
        FROM message_reactions r
        LEFT JOIN LATERAL (
            SELECT m.channel_id FROM messages m
            WHERE m.id = r.message_id AND m.created_at = r.message_created_at LIMIT 1
        ) msg ON true
        WHERE r.user_id = $1
        ORDER BY r.created_at, r.id
        """

    /// Invites the user created (idx_invites_inviter), with the public name of
    /// a targeted user.
    public static let invites = """
        SELECT i.code, i.server_id, i.channel_id, i.max_uses, i.uses, i.max_age, i.temporary,
               i.target_type, i.target_user_id, tu.username, tu.discriminator,
               i.created_at, i.expires_at
        FROM invites i LEFT JOIN users tu ON tu.id = i.target_user_id
        WHERE i.inviter_id = $1
        ORDER BY i.created_at, i.code
        """

    /// Audit-log entries where the user acted, in time order: every partition
    /// yields them ordered from idx_audit_logs_user_created and the partitions
    /// are merged (no sort).
    public static let auditLog = """
        SELECT a.id, a.server_id, a.action_type, a.target_id, a.target_type,
               a.changes, a.options, a.reason, a.created_at
        FROM audit_logs a
        WHERE a.user_id = $1
        ORDER BY a.created_at, a.id
        """

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
