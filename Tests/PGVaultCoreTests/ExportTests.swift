import ArchiveIO
import CryptoDigest
import Foundation
import PGClient
@testable import PGVaultCore
import PGVaultGenerator
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Fixture

/// A small chat database around alice (1001): bob (1002) and carol (1003)
/// share her servers, channels, a DM and a group DM, reply to her and react
/// to her messages; 40 filler users make the tables big enough (every
/// messages and audit_logs partition, the DEFAULT ones included, holds rows)
/// for the planner to prefer the indexes. Every other user has a distinctive
/// email, password hash and message text, so a leak is easy to find.
enum ExportFixture {
    static let alice: Int64 = 1001
    static let alicePublicID = "11111111-1111-4111-8111-111111111111"

    /// Strings that must never appear in alice's package.
    static let forbidden = [
        "bob.private@example.org", "carol.hidden@example.net", "@example.net",
        "BobHashMustNotLeak", "CarolBcryptHashMustNotLeak", "AliceOwnHashNeverExported", "FillerHash", "$argon2", "$2b$",
        "bob-secret-message-", "carol-secret-text-", "filler chatter", "bob-settings-secret", "bob-private-photo",
    ]

    static let sql = #"""
        INSERT INTO users (id, public_id, username, discriminator, email, password_hash, bio, settings, is_verified, premium_type, created_at) VALUES
          (1001, '11111111-1111-4111-8111-111111111111', 'alice', '0001', 'alice@example.com',
           '$argon2id$v=19$m=65536,t=3,p=4$QWxpY2VTYWx0$AliceOwnHashNeverExported', 'I like "quotes" and \ backslashes',
           '{"theme": "dark", "locale": "en-GB"}', true, 2, '2024-01-02 10:00:00+00'),
          (1002, '22222222-2222-4222-8222-222222222222', 'bob', '0002', 'bob.private@example.org',
           '$argon2id$v=19$m=65536,t=3,p=4$Qm9iU2FsdA$BobHashMustNotLeak', 'bob bio',
           '{"theme": "light", "secret": "bob-settings-secret"}', true, 0, '2024-01-03 10:00:00+00'),
          (1003, '33333333-3333-4333-8333-333333333333', 'carol', '0003', 'carol.hidden@example.net',
           '$2b$12$CarolBcryptHashMustNotLeakXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX', NULL, '{}', false, 0, '2024-01-04 10:00:00+00');
        INSERT INTO users (id, username, discriminator, email, password_hash)
        SELECT 1100 + g, 'filler' || g, '0001', 'filler' || g || '@example.net',
               '$argon2id$v=19$m=65536,t=3,p=4$ZmlsbGVy$FillerHash' || g
        FROM generate_series(0, 39) g;

        INSERT INTO servers (id, owner_id, name, description, created_at) VALUES
          (2001, 1001, 'Alice Place', 'alice''s server', '2024-01-05 00:00:00+00'),
          (2002, 1002, 'Bob Hangout', NULL, '2024-01-06 00:00:00+00'),
          (2003, 1002, 'Bob Archive', NULL, '2024-01-07 00:00:00+00'),
          (2004, 1001, 'Alice Unjoined', NULL, '2024-01-08 00:00:00+00');
        INSERT INTO channels (id, server_id, type, name, topic) VALUES
          (3001, 2001, 0, 'general', 'welcome'), (3002, 2001, 0, 'random', NULL),
          (3003, 2002, 0, 'lobby', NULL), (3004, 2002, 0, 'art', NULL), (3005, 2003, 0, 'old-times', NULL),
          (3006, NULL, 1, 'dm', NULL), (3007, NULL, 3, 'trio', NULL), (3008, 2002, 0, 'bob-only', NULL);
        INSERT INTO roles (id, server_id, name, position, color, permissions) VALUES
          (5001, 2001, '@everyone', 0, 0, 0), (5002, 2001, 'Admin', 1, 16711680, 8),
          (5003, 2002, '@everyone', 0, 0, 0), (5004, 2002, 'Mod', 1, 255, 1024), (5005, 2002, 'Artist', 2, 65280, 0);
        INSERT INTO server_members (server_id, user_id, nickname, joined_at) VALUES
          (2001, 1001, 'Queen A', '2024-01-05 12:00:00+00'), (2001, 1002, NULL, '2024-01-09 00:00:00+00'),
          (2001, 1003, 'cc', '2024-01-10 00:00:00+00'), (2002, 1001, 'ally', '2024-02-01 00:00:00+00'),
          (2002, 1002, 'boss', '2024-01-06 00:00:00+00'), (2002, 1003, NULL, '2024-02-02 00:00:00+00');
        INSERT INTO server_members (server_id, user_id) SELECT 2002, 1100 + g FROM generate_series(0, 39) g;
        INSERT INTO server_members_roles (server_id, user_id, role_id) VALUES
          (2001, 1001, 5002), (2002, 1001, 5004), (2002, 1001, 5005), (2002, 1002, 5004), (2001, 1002, 5001);

        -- 24000 messages, one every 70 minutes from 2023-12 (DEFAULT partition)
        -- to 2027-02 (DEFAULT again): every i = 0 mod 25 is alice's, 1 bob's,
        -- 2 carol's, the rest fillers'.
        INSERT INTO messages (id, channel_id, author_id, content, created_at, deleted_at, edited_at, mentions, mention_roles, mention_everyone, embeds)
        SELECT i,
               CASE i % 25 WHEN 0 THEN (ARRAY[3001,3002,3003,3004,3005,3006,3007])[1 + (i / 25) % 7]
                           WHEN 1 THEN (ARRAY[3001,3003,3006,3007,3008])[1 + (i / 25) % 5]
                           WHEN 2 THEN (ARRAY[3001,3003,3007])[1 + (i / 25) % 3]
                           ELSE (ARRAY[3001,3002,3003,3004,3008])[1 + i % 5] END,
               CASE i % 25 WHEN 0 THEN 1001 WHEN 1 THEN 1002 WHEN 2 THEN 1003 ELSE 1100 + i % 40 END,
               CASE i % 25 WHEN 0 THEN 'alice message ' || i WHEN 1 THEN 'bob-secret-message-' || i
                           WHEN 2 THEN 'carol-secret-text-' || i ELSE 'filler chatter ' || i END,
               timestamptz '2023-12-01 00:00:00+00' + i * interval '70 minutes',
               CASE WHEN i % 125 = 0 THEN timestamptz '2023-12-01 00:00:00+00' + i * interval '70 minutes' + interval '1 day' END,
               CASE WHEN i % 75 = 0 THEN timestamptz '2023-12-01 00:00:00+00' + i * interval '70 minutes' + interval '5 minutes' END,
               CASE WHEN i % 25 = 0 AND (i / 25) % 5 = 1 THEN ARRAY[1002, 1003]::bigint[] ELSE '{}' END,
               CASE WHEN i % 25 = 0 AND (i / 25) % 5 = 1 THEN ARRAY[5004]::bigint[] ELSE '{}' END,
               i % 25 = 0 AND (i / 25) % 20 = 3,
               CASE WHEN i % 25 = 0 AND (i / 25) % 10 = 2 THEN '[{"title": "alice link", "url": "https://example.com/a"}]'::jsonb ELSE '[]' END
        FROM generate_series(1, 24000) i;
        -- A message id above 2^53, and text that needs escaping.
        INSERT INTO messages (id, channel_id, author_id, content, created_at) VALUES
          (9007199254740993, 3001, 1001, E'alice big id: "quotes", a \\ backslash, a tab\tand a newline\nhere', '2025-06-15 12:00:00.123456+00');
        -- alice replies to bob, bob to alice; one of alice's replies points at a message that is gone.
        UPDATE messages m SET type = 19, reference_message_id = r.id, reference_channel_id = r.channel_id, reference_server_id = c.server_id
          FROM messages r JOIN channels c ON c.id = r.channel_id
         WHERE m.author_id = 1001 AND (m.id / 25) % 3 = 0 AND r.id = m.id - 24;
        UPDATE messages m SET type = 19, reference_message_id = r.id, reference_channel_id = r.channel_id
          FROM messages r
         WHERE m.author_id = 1002 AND (m.id / 25) % 4 = 0 AND r.id = m.id - 1;
        UPDATE messages SET type = 19, reference_message_id = 99999999, reference_channel_id = 3001 WHERE id = 50;

        INSERT INTO attachments (id, message_id, message_created_at, filename, content_type, size, url, width, height, duration_secs)
        SELECT 600000 + m.id, m.id, m.created_at,
               CASE WHEN m.author_id = 1001 THEN 'alice-file-' || m.id || '.png'
                    WHEN m.author_id = 1002 THEN 'bob-private-photo-' || m.id || '.png'
                    ELSE 'filler-' || m.id || '.bin' END,
               'image/png', 1000 + m.id % 1000, 'https://cdn.example.com/' || m.id, 640, 480,
               CASE WHEN m.id % 2 = 0 THEN 1.5 END
        FROM messages m
        WHERE (m.author_id IN (1001, 1002) AND (m.id / 25) % 6 = 1) OR (m.author_id >= 1100 AND m.id % 3 = 0);
        INSERT INTO attachments (id, message_id, message_created_at, filename, content_type, size, url)
        SELECT 700000 + m.id, m.id, m.created_at, 'alice-second-' || m.id || '.txt', 'text/plain', 12, 'https://cdn.example.com/b/' || m.id
        FROM messages m WHERE m.author_id = 1001 AND (m.id / 25) % 12 = 1;

        INSERT INTO message_reactions (message_id, message_created_at, user_id, emoji_id, emoji_name, emoji_animated, created_at)
        SELECT m.id, m.created_at, 1001, NULL, '👍', false, m.created_at + interval '1 minute'
          FROM messages m WHERE m.author_id = 1002 AND (m.id / 25) % 2 = 0
        UNION ALL
        SELECT m.id, m.created_at, 1001, 7001, 'partyparrot', true, m.created_at + interval '2 minutes'
          FROM messages m WHERE m.author_id = 1002 AND (m.id / 25) % 8 = 0
        UNION ALL
        SELECT m.id, m.created_at, 1001, NULL, '🎉', false, m.created_at + interval '3 minutes'
          FROM messages m WHERE m.author_id = 1001 AND (m.id / 25) % 10 = 0
        UNION ALL
        SELECT m.id, m.created_at, 1002, NULL, '❤️', false, m.created_at + interval '4 minutes'
          FROM messages m WHERE m.author_id = 1001 AND (m.id / 25) % 3 = 0
        UNION ALL
        SELECT m.id, m.created_at, 1100 + (m.id * 7) % 40, NULL, '👀', false, m.created_at
          FROM messages m WHERE m.author_id >= 1100 AND m.id % 2 = 0;

        INSERT INTO invites (code, server_id, channel_id, inviter_id, max_uses, uses, max_age, target_user_id, created_at) VALUES
          ('ALICE1', 2001, 3001, 1001, 0, 3, 86400, NULL, '2024-03-01 00:00:00+00'),
          ('ALICE2', 2001, 3002, 1001, 1, 0, 0, 1002, '2025-03-01 00:00:00+00'),
          ('ALICE3', 2002, 3003, 1001, 5, 1, 3600, NULL, '2026-03-01 00:00:00+00'),
          ('BOB1', 2002, 3003, 1002, 0, 0, 86400, 1001, '2024-03-01 00:00:00+00'),
          ('BOB2', 2002, 3004, 1002, 0, 0, 86400, NULL, '2024-04-01 00:00:00+00');

        -- 30000 audit entries by others over every partition, and alice's 45.
        INSERT INTO audit_logs (server_id, user_id, action_type, target_id, target_type, changes, created_at)
        SELECT 2002, CASE WHEN g % 10 = 0 THEN 1002 ELSE 1100 + g % 40 END, 1, g, 'channels',
               jsonb_build_object('n', g), timestamptz '2023-12-01 00:00:00+00' + g * interval '56 minutes'
        FROM generate_series(1, 30000) g;
        INSERT INTO audit_logs (id, server_id, user_id, action_type, target_id, target_type, changes, reason, created_at)
        SELECT 800001, 2001, 1001, 24, 1002, 'users',
               jsonb_build_object('old', to_jsonb(u), 'new', to_jsonb(u) || '{"username": "bob"}'), 'renamed bob',
               '2024-05-10 00:00:00+00'
        FROM users u WHERE u.id = 1002;
        INSERT INTO audit_logs (id, server_id, user_id, action_type, target_id, target_type, changes, options, reason, created_at)
        SELECT 800002, 2002, 1001, 72, m.id, 'messages', to_jsonb(m), '{"channel_id": "3003", "count": 1}', 'spam',
               '2025-03-04 00:00:00+00'
        FROM messages m WHERE m.id = 26;
        INSERT INTO audit_logs (id, server_id, user_id, action_type, target_id, target_type, changes, options, reason, created_at) VALUES
          (800003, 2001, 1001, 40, NULL, 'invites',
           '{"note": "invited bob.private@example.org and alice@example.com", "email": "alice@example.com", "contact": {"email": "carol.hidden@example.net"}}',
           NULL, 'asked by carol.hidden@example.net', '2023-06-01 00:00:00+00'),
          (800004, 2001, 1001, 2, 1001, 'users',
           '{"password_hash": "$argon2id$v=19$m=65536,t=3,p=4$QWxpY2VTYWx0$AliceOwnHashNeverExported", "bio": "new bio"}',
           NULL, NULL, '2026-11-02 00:00:00+00'),
          (800005, 2002, 1001, 25, 5004, 'roles', '{"role": {"id": 5004, "name": "Mod"}, "big": 9007199254740993}',
           '{"members": [1002, 1003]}', NULL, '2027-03-01 00:00:00+00');
        INSERT INTO audit_logs (id, server_id, user_id, action_type, target_id, target_type, changes, created_at)
        SELECT 810000 + g, 2001, 1001, 1, g, 'channels', jsonb_build_object('step', g),
               timestamptz '2024-01-15 00:00:00+00' + g * interval '25 days'
        FROM generate_series(1, 40) g;
        """#

    /// A fresh database with the schema and the fixture, analyzed.
    static func make(_ major: Int? = nil) throws -> TestDatabase {
        let db = try TestServers.database(major, prefix: "export")
        let conn = try db.connect()
        try Migrator(directory: RepoPaths.migrations).run(conn)
        try conn.execute(sql)
        try conn.execute("ANALYZE")
        return db
    }

    /// One fixture database per server version, shared by the tests that
    /// only read it.
    static func shared(_ major: Int? = nil) throws -> TestDatabase {
        try cache.get(major ?? TestServers.newest) { try make($0) }
    }

    private static let cache = SharedDatabases()
}

private final class SharedDatabases: @unchecked Sendable {
    private let lock = NSLock()
    private var made: [Int: Result<TestDatabase, Error>] = [:]

    func get(_ major: Int, _ make: (Int) throws -> TestDatabase) throws -> TestDatabase {
        lock.lock()
        defer { lock.unlock() }
        if let existing = made[major] { return try existing.get() }
        let result = Result { try make(major) }
        made[major] = result
        return try result.get()
    }
}

// MARK: - Helpers

/// Every file of a zip, in order, read back with ArchiveIO's reader.
func readPackage(_ path: String) throws -> [(path: String, bytes: [UInt8])] {
    let reader = try ArchiveReader(path: path)
    var files: [(String, [UInt8])] = []
    while let entry = try reader.nextEntry() {
        var bytes: [UInt8] = []
        try reader.readData { bytes.append(contentsOf: $0) }
        files.append((entry.path, bytes))
    }
    return files
}

private func jsonObject(_ bytes: [UInt8]) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
}

private func fileMode(_ path: String) -> mode_t {
    var st = stat()
    return stat(path, &st) == 0 ? st.st_mode & 0o777 : 0
}

private func int(_ conn: PGConnection, _ sql: String, _ params: [String?] = []) throws -> Int {
    Int(try conn.query(sql, params).scalar ?? "") ?? -1
}

/// What the database holds for `user`, by the manifest's count names.
private func databaseCounts(_ conn: PGConnection, user: String) throws -> [String: Int] {
    let statements: [(String, String)] = [
        ("server_memberships", "SELECT count(*) FROM server_members WHERE user_id = $1"),
        ("owned_servers", "SELECT count(*) FROM servers WHERE owner_id = $1"),
        ("role_assignments", "SELECT count(*) FROM server_members_roles WHERE user_id = $1"),
        ("channels", "SELECT count(DISTINCT channel_id) FROM messages WHERE author_id = $1"),
        ("messages", "SELECT count(*) FROM messages WHERE author_id = $1"),
        ("deleted_messages", "SELECT count(*) FROM messages WHERE author_id = $1 AND deleted_at IS NOT NULL"),
        ("replies", "SELECT count(*) FROM messages WHERE author_id = $1 AND reference_message_id IS NOT NULL"),
        ("attachments", """
            SELECT count(*) FROM attachments t
            JOIN messages m ON m.id = t.message_id AND m.created_at = t.message_created_at WHERE m.author_id = $1
            """),
        ("reactions", "SELECT count(*) FROM message_reactions WHERE user_id = $1"),
        ("invites", "SELECT count(*) FROM invites WHERE inviter_id = $1"),
        ("audit_log_entries", "SELECT count(*) FROM audit_logs WHERE user_id = $1"),
    ]
    return Dictionary(uniqueKeysWithValues: try statements.map { ($0.0, try int(conn, $0.1, [user])) })
}

/// Checks a package's files against the database: the manifest's counts, each
/// channel's messages (deleted ones flagged), and the lengths of the other
/// arrays. Returns the database's counts.
@discardableResult
func expectPackageMatchesDatabase(
    _ files: [(path: String, bytes: [UInt8])], _ conn: PGConnection, user: String
) throws -> [String: Int] {
    let byPath = Dictionary(uniqueKeysWithValues: files.map { ($0.path, $0.bytes) })
    for file in files where file.path != "README.txt" {
        #expect(throws: Never.self, "\(file.path) is not JSON") { _ = try jsonObject(file.bytes) }
    }
    let manifest = try #require(try jsonObject(byPath["manifest.json"] ?? []) as? [String: Any])
    let expected = try databaseCounts(conn, user: user)
    #expect(manifest["counts"] as? [String: Int] == expected)

    let perChannel = try conn.query(
        "SELECT channel_id, count(*), count(deleted_at) FROM messages WHERE author_id = $1 GROUP BY 1 ORDER BY 1", [user])
    let index = try #require(try jsonObject(byPath["messages/index.json"] ?? []) as? [String: Any])
    #expect((index["channels"] as? [[String: Any]])?.map { $0["channel_id"] as? String } == perChannel.rows.map { $0[0] })
    for row in perChannel.rows {
        let id = row[0] ?? ""
        let messages = try #require(try jsonObject(byPath["messages/c\(id)/messages.json"] ?? []) as? [[String: Any]])
        #expect(messages.count == Int(row[1] ?? ""), "messages in c\(id)")
        #expect(messages.filter { $0["deleted"] as? Bool == true }.count == Int(row[2] ?? ""), "deleted in c\(id)")
        #expect(messages.allSatisfy { ($0["deleted"] as? Bool) == ($0["deleted_at"] is String) })
        let times = messages.compactMap { $0["created_at"] as? String }
        #expect(times == times.sorted(), "c\(id) in time order")
        #expect(byPath["messages/c\(id)/channel.json"] != nil)
    }
    func count(_ path: String) throws -> Int { (try jsonObject(byPath[path] ?? []) as? [Any])?.count ?? -1 }
    #expect(try count("reactions/reactions.json") == expected["reactions"])
    #expect(try count("invites/invites.json") == expected["invites"])
    #expect(try count("audit_log/audit_log.json") == expected["audit_log_entries"])
    let servers = try #require(try jsonObject(byPath["servers/index.json"] ?? []) as? [String: Any])
    #expect((servers["memberships"] as? [Any])?.count == expected["server_memberships"])
    #expect((servers["owned_servers"] as? [Any])?.count == expected["owned_servers"])
    return expected
}

/// Records an issue for every file that contains any of `secrets`.
private func expectNoSecrets(_ files: [(path: String, bytes: [UInt8])], _ secrets: [String]) {
    for file in files {
        let text = String(decoding: file.bytes, as: UTF8.self)
        for secret in secrets where text.contains(secret) {
            Issue.record("\(file.path) contains '\(secret)'")
        }
    }
}

/// Every other user's email and every password hash (the user's own included).
private func othersSecrets(_ conn: PGConnection, user: String) throws -> (emails: [String], hashes: [String]) {
    (try conn.query("SELECT email FROM users WHERE id <> $1", [user]).rows.compactMap { $0[0] },
     try conn.query("SELECT password_hash FROM users").rows.compactMap { $0[0] })
}

// MARK: - Tests

@Suite("per-user export")
struct ExportTests {
    @Test("--user forms: id, public_id, email, username#discriminator")
    func selectorForms() throws {
        #expect(try UserSelector(parsing: "1001") == .id(1001))
        #expect(try UserSelector(parsing: ExportFixture.alicePublicID.uppercased()) == .publicID(ExportFixture.alicePublicID))
        #expect(try UserSelector(parsing: "Alice@Example.com") == .email("Alice@Example.com"))
        #expect(try UserSelector(parsing: "alice#0001") == .tag(username: "alice", discriminator: "0001"))
        for bad in ["alice", "alice#12", "#0001", "99999999999999999999", ""] {
            let error = #expect(throws: PGVaultError.self) { try UserSelector(parsing: bad) }
            #expect(error?.kind == .usage)
        }
    }

    @Test("every statement's columns: positions in declaration order, one distinct SELECT expression each")
    func selectColumns() {
        func check<C: SelectColumns>(_: C.Type) {
            #expect(C.allCases.map(\.rawValue) == Array(0..<C.count), "\(C.self)")
            #expect(Set(C.allCases.map(\.sql)).count == C.count, "\(C.self)")
        }
        check(UserExportQueries.UserColumn.self)
        check(UserExportQueries.MembershipColumn.self)
        check(UserExportQueries.RoleColumn.self)
        check(UserExportQueries.OwnedServerColumn.self)
        check(UserExportQueries.MessageColumn.self)
        check(UserExportQueries.ChannelColumn.self)
        check(UserExportQueries.DMParticipantColumn.self)
        check(UserExportQueries.PublicNameColumn.self)
        check(UserExportQueries.ReactionColumn.self)
        check(UserExportQueries.InviteColumn.self)
        check(UserExportQueries.AuditLogColumn.self)
        #expect(UserExportQueries.messages.contains("SELECT m.id, m.channel_id, m.created_at, m.type"))
    }

    @Test("JSON: escaping, field order, numbers kept as text, round trip through the parser")
    func json() throws {
        let value = ExportJSON.object([
            "b": .string("quote \" backslash \\ tab \t newline \n nul \u{0} é ✓"),
            "a": .number("9007199254740993"), "c": .array([.null, .bool(true), .object([:])]),
        ])
        let text = String(decoding: value.serialized(), as: UTF8.self)
        #expect(text.hasPrefix("{\n  \"b\": "))
        #expect(text.contains("\"a\": 9007199254740993"))
        #expect(text.contains("\\u0000"))
        #expect(try ExportJSON.json(text) == value)
        #expect(try jsonObject(value.serialized()) is [String: Any])
        // On one line (for a temporary file of lines), read back the same.
        var compact = JSONBuffer()
        defer { compact.release() }
        value.writeCompact(into: &compact)
        #expect(!compact.array.contains(UInt8(ascii: "\n")))
        #expect(String(decoding: compact.array, as: UTF8.self).hasSuffix(#","a":9007199254740993,"c":[null,true,{}]}"#))
        #expect(try ExportJSONParser.parse(bytes: compact.array) == value)
        #expect(ExportTime.iso8601("2024-05-01 12:00:00+00") == "2024-05-01T12:00:00.000000Z")
        #expect(ExportTime.iso8601("2024-05-01 12:00:00.25+00") == "2024-05-01T12:00:00.250000Z")
        #expect(ExportTime.iso8601("infinity") == "infinity")
        #expect(ExportJSON.float("NaN") == .null)
        #expect(ExportJSON.idArray("{1,9007199254740993}") == .array([.string("1"), .string("9007199254740993")]))

        // JSON from the database reformatted without building it: the same text.
        for input in [
            #"[]"#, #" { } "#, #"[{"a": [], "b": {}, "c": [1, -2.5e+3, true, false, null]}]"#,
            #"{"s": "plain é 👍🏽 日本語", "e": "q\"b\\s\/t\tn\nu\u00e9\ud83d\ude00\ud800x", "raw\u0001": "c\#u{1}d"}"#,
            "[\"\u{7F}\", \"\u{80}\"]", #"{"k":{"k":{"k":[["deep"]]}}}"#, "[1,\n\t2 ,\r3]",
        ] {
            var out = JSONBuffer()
            defer { out.release() }
            try ExportJSONParser.reformat(bytes: Array(input.utf8), indent: 2, into: &out)
            var tree = JSONBuffer()
            defer { tree.release() }
            try ExportJSON.json(input).write(into: &tree, indent: 2)
            #expect(out.array == tree.array, "\(input)")
        }
        for bad in ["[1,]", "{\"a\" 1}", "[1] x", "\"open", "[" + String(repeating: "[", count: 600) + "]"] {
            var out = JSONBuffer()
            defer { out.release() }
            #expect(throws: PGVaultError.self) { try ExportJSONParser.reformat(bytes: Array(bad.utf8), indent: 0, into: &out) }
        }
    }

    @Test("an object whose last field is a streamed array: the same file as the whole object written at once")
    func streamedObject() throws {
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        let fields: [ExportJSON.Field] = [
            .init("count", .int(7)), .init("nested", .object(["a": .array([.string("x \"y\"")]), "b": .null])),
        ]
        // No element, a few, and enough to fill the writer's buffer several times.
        let cases: [[ExportJSON]] = [[], [.null, .int(1), .object(["k": .string("v")])], (0..<3000).map {
            .object(["i": .int($0), "text": .string(String(repeating: "é\t", count: $0 % 200))])
        }]
        let writer = try ExportPackageWriter(path: folder.path + "/p.zip", mtime: 0)
        for (n, elements) in cases.enumerated() {
            try writer.add("whole\(n).json", json: .object(fields + [.init("items", .array(elements))]))
            var stream = try writer.beginArray("streamed\(n).json", after: fields, key: "items")
            for element in elements { try stream.append(element) }
            try stream.finish()
            #expect(stream.count == elements.count)
        }
        // A top-level array, as before.
        try writer.addArray("array.json") { for element in cases[1] { try $0.append(element) } }
        try writer.close()
        let files = Dictionary(uniqueKeysWithValues: try readPackage(folder.path + "/p.zip").map { ($0.path, $0.bytes) })
        let records = Dictionary(uniqueKeysWithValues: writer.files.map { ($0.path, $0) })
        for n in cases.indices {
            #expect(files["streamed\(n).json"] == files["whole\(n).json"], "case \(n)")
            #expect(records["streamed\(n).json"]?.sha256 == records["whole\(n).json"]?.sha256)
            #expect(records["streamed\(n).json"]?.bytes == Int64(files["whole\(n).json"]?.count ?? -1))
        }
        #expect(files["array.json"] == ExportJSON.array(cases[1]).serialized())
    }

    @Test("temporary names, and which leftovers a starting worker removes")
    func partialFiles() throws {
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        let host = ExportFiles.sanitized(ExportFiles.hostName)
        #expect(ExportFiles.partialPath(for: folder.path + "/u.zip", attempt: 2)
            == folder.path + "/.u.zip.partial-\(host)-\(getpid())-a2")
        let dead: Int32 = 4_194_303  // above any pid in use here (pid_max is 4194304)
        let names = [
            ".a.zip.partial-\(host)-\(dead)-a1",      // this machine, process gone: removed
            ".b.zip.partial-\(host)-\(dead)",         // (export-user's form): removed
            ".c.zip.partial-\(host)-\(getppid())-a1", // process alive: kept
            ".d.zip.partial-\(host)-2-\(dead)-a1",    // host "<ours>-2": not ours, kept
            "e.zip",                                    // a package: kept
        ]
        for name in names { #expect(FileManager.default.createFile(atPath: folder.path + "/" + name, contents: Data())) }
        #expect(ExportFiles.removeOrphanedPartials(in: folder.path).sorted() == Array(names[0...1]))
        #expect(folder.names == Array(names[2...]).sorted())
        #expect(ExportFiles.removePartials(of: "c.zip", in: folder.path) == [names[2]])
    }

    @Test("audit redaction rules")
    func redaction() throws {
        var r = AuditRedaction(userID: "1001", ownEmail: "alice@example.com")
        r.otherUsersEmails = ["bob@x.org"]
        let input = try ExportJSON.json("""
            {"old": {"id": 1002, "username": "bob", "discriminator": "0002", "email": "bob@x.org",
                     "password_hash": "$argon2id$abc", "settings": {"a": 1}, "bio": "hi"},
             "self": {"id": "1001", "username": "alice", "discriminator": "0001", "email": "alice@example.com",
                      "password_hash": "$argon2id$own", "settings": {"a": 1}},
             "msg": {"id": 5, "author_id": 1002, "content": "secret", "channel_id": 3},
             "own_msg": {"id": 6, "author_id": "1001", "content": "mine"},
             "note": "mail bob@x.org or alice@example.com", "h": "$2b$10$zzz", "token": "t"}
            """)
        let out = r.redact(input)
        #expect(out["old"] == .object([
            "id": .number("1002"), "username": .string("bob"), "discriminator": .string("0002"),
            "email": .string("[redacted]"), "password_hash": .string("[redacted]"),
            "settings": .string("[redacted]"), "bio": .string("[redacted]"),
        ]))
        #expect(out["self"]?["email"] == .string("alice@example.com"))
        #expect(out["self"]?["password_hash"] == .string("[redacted]"))
        #expect(out["self"]?["settings"] == .object(["a": .number("1")]))
        #expect(out["msg"]?["content"] == .string("[redacted]"))
        #expect(out["msg"]?["channel_id"] == .number("3"))
        #expect(out["own_msg"]?["content"] == .string("mine"))
        #expect(out["note"] == .string("mail [redacted email] or alice@example.com"))
        #expect(out["h"] == .string("[redacted]"))
        #expect(out["token"] == .string("[redacted]"))
        #expect(AuditRedaction.emailCandidates(in: "x <a.b+c@d-e.co.uk>, y@z.") == ["a.b+c@d-e.co.uk"])
    }

    @Test("alice's package: layout, counts equal the database's, checksums, nothing private of others")
    func package() throws {
        let db = try ExportFixture.shared()
        let conn = try db.connect()
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        let output = folder.path + "/alice.zip"
        let summary = try UserExporter.export(conn: conn, user: "alice#0001", output: output)

        // Owner-only, complete under its final name, nothing else left.
        #expect(fileMode(output) == 0o600)
        #expect(folder.names == ["alice.zip"])
        let digest = try ExportFiles.sizeAndDigest(of: output)
        #expect(summary.bytes == digest.bytes && summary.sha256 == digest.sha256)
        #expect(summary.result.userID == ExportFixture.alice && summary.result.tag == "alice#0001")

        let files = try readPackage(output)
        let byPath = Dictionary(uniqueKeysWithValues: files.map { ($0.path, $0.bytes) })
        #expect(files.first?.path == "README.txt")
        #expect(files.last?.path == "manifest.json")
        for required in ["account/user.json", "servers/index.json", "messages/index.json", "reactions/reactions.json",
                         "invites/invites.json", "audit_log/audit_log.json"] {
            #expect(byPath[required] != nil, "missing \(required)")
        }
        // Every file but README.txt is valid JSON.
        for file in files where file.path != "README.txt" {
            #expect(throws: Never.self, "\(file.path) is not JSON") { _ = try jsonObject(file.bytes) }
        }

        // The manifest lists every other file with its exact size and SHA-256.
        let manifest = try #require(try jsonObject(byPath["manifest.json"]!) as? [String: Any])
        #expect(manifest["format"] as? String == "pgvault-user-export")
        let listed = try #require(manifest["files"] as? [[String: Any]])
        #expect(listed.map { $0["path"] as? String } == files.dropLast().map(\.path))
        for entry in listed {
            let path = entry["path"] as? String ?? ""
            let bytes = byPath[path] ?? []
            #expect((entry["bytes"] as? NSNumber)?.intValue == bytes.count, "\(path) size")
            #expect(try entry["sha256"] as? String == SHA2.hex(.sha256, of: bytes), "\(path) sha256")
        }

        // Every count, and every file's contents, equal the database's.
        let a = String(ExportFixture.alice)
        let expected = try expectPackageMatchesDatabase(files, conn, user: a)
        #expect(expected["messages"] == 961 && expected["deleted_messages"] == 192 && expected["channels"] == 7)
        #expect(expected["audit_log_entries"] == 45 && expected["invites"] == 3 && expected["owned_servers"] == 2)
        #expect(byPath["servers/s2001.json"] != nil && byPath["servers/s2002.json"] != nil && byPath["servers/s2003.json"] == nil)

        // Privacy: no other user's email, no password hash (alice's own
        // included), no other user's message text or settings, in any file.
        let (emails, hashes) = try othersSecrets(conn, user: a)
        #expect(emails.count == 42 && hashes.count == 43)
        expectNoSecrets(files, emails + hashes + ExportFixture.forbidden)

        // What alice's package does say.
        let user = try #require(try jsonObject(byPath["account/user.json"]!) as? [String: Any])
        #expect(user["email"] as? String == "alice@example.com")
        #expect(user["password_hash"] == nil)
        #expect((user["settings"] as? [String: Any])?["theme"] as? String == "dark")
        #expect(user["bio"] as? String == #"I like "quotes" and \ backslashes"#)
        let general = String(decoding: byPath["messages/c3001/messages.json"]!, as: UTF8.self)
        #expect(general.contains(#""id": "9007199254740993""#))
        #expect(general.contains(#"alice big id: \"quotes\", a \\ backslash, a tab\tand a newline\nhere"#))
        #expect(general.contains(#""created_at": "2025-06-15T12:00:00.123456Z""#))
        let dm = try #require(try jsonObject(byPath["messages/c3006/channel.json"]!) as? [String: Any])
        #expect((dm["recipients"] as? [[String: Any]])?.map { $0["name"] as? String } == ["bob#0002"])
        let trio = try #require(try jsonObject(byPath["messages/c3007/channel.json"]!) as? [String: Any])
        #expect((trio["recipients"] as? [[String: Any]])?.map { $0["name"] as? String } == ["bob#0002", "carol#0003"])
        // A reply names the referenced message's author (public name), not its text.
        let lobby = try #require(try jsonObject(byPath["messages/c3003/messages.json"]!) as? [[String: Any]])
        let replies = lobby.compactMap { $0["reply_to"] as? [String: Any] }
        let reply = try #require(replies.first { $0["message_id"] as? String == "201" })
        #expect((reply["author"] as? [String: Any])?["name"] as? String == "bob#0002")
        #expect(reply["channel_id"] as? String == "3007")
        // Message 50 replies to a message that is no longer held: no author.
        let gone = try #require(replies.first { $0["message_id"] as? String == "99999999" })
        #expect(gone["author"] is NSNull)
        // Audit entries: other users' data replaced, the shape kept.
        let audit = String(decoding: byPath["audit_log/audit_log.json"]!, as: UTF8.self)
        #expect(audit.contains(#""username": "bob""#) && audit.contains("[redacted]") && audit.contains("[redacted email]"))
        #expect(audit.contains(#""big": 9007199254740993"#))
        #expect(audit.contains("alice@example.com"))
        let readme = String(decoding: byPath["README.txt"]!, as: UTF8.self)
        #expect(readme.contains("alice#0001") && readme.contains(summary.result.generatedAt))
    }

    @Test("the four --user forms find the same user; an unknown user is a clear error and writes nothing")
    func userForms() throws {
        let db = try ExportFixture.shared()
        let conn = try db.connect()
        for input in ["1001", ExportFixture.alicePublicID, "ALICE@example.com", "alice#0001"] {
            let id = try conn.transaction { try UserSelector(parsing: input).resolveID($0, input: input) }
            #expect(id == ExportFixture.alice, "\(input)")
        }
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        let unknown = [
            ("424242", "id"), ("99999999-9999-4999-8999-999999999999", "public_id"),
            ("nobody@example.com", "email"), ("nobody#0001", "username#discriminator"),
        ]
        for (input, form) in unknown {
            let error = #expect(throws: PGVaultError.self) {
                try UserExporter.export(conn: conn, user: input, output: folder.path + "/x.zip")
            }
            let expected = UserExportError.unknownUser(input: input, form: form)
            #expect(error?.kind == expected.kind && error?.message == expected.message)
            let message = "\(UserExportError.unknownUser(input: input, form: form))"
            #expect(message.contains("no user matches --user '\(input)'") && message.contains(form))
        }
        #expect(folder.names.isEmpty)
        #expect(conn.isHealthy)

        // An existing file is never overwritten.
        #expect(FileManager.default.createFile(atPath: folder.path + "/taken.zip", contents: Data("keep".utf8)))
        #expect(throws: PGVaultError.self) {
            try UserExporter.export(conn: conn, user: "1001", output: folder.path + "/taken.zip")
        }
        #expect(try String(contentsOfFile: folder.path + "/taken.zip", encoding: .utf8) == "keep")
        #expect(folder.names == ["taken.zip"])
    }

    @Test("CLI: export-user prints one JSON summary; an unknown user exits 2 with a clear message")
    func commandLine() throws {
        let db = try ExportFixture.shared()
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        let binary = try Shell.pgvault()
        let ok = try Shell.capture([binary, "export-user", "--dbname", db.conninfo, "--user", "alice@example.com",
                                    "--output", folder.path + "/a.zip", "--json"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let summary = try #require(try jsonObject(Array(ok.stdout.utf8)) as? [String: Any])
        #expect(summary["status"] as? String == "done" && summary["userID"] as? String == "1001")
        #expect(summary["output"] as? String == folder.path + "/a.zip")
        #expect((summary["counts"] as? [String: Int])?["messages"] == 961)
        #expect(summary["sha256"] as? String == (try ExportFiles.sizeAndDigest(of: folder.path + "/a.zip")).sha256)
        #expect(ok.stdout.split(separator: "\n").count == 1)

        let unknown = try Shell.capture([binary, "export-user", "--dbname", db.conninfo, "--user", "nobody#0001",
                                         "--output", folder.path + "/b.zip"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no user matches --user 'nobody#0001' (looked up as username#discriminator)"), "\(unknown.stderr)")
        let malformed = try Shell.capture([binary, "export-user", "--dbname", db.conninfo, "--user", "nobody",
                                           "--output", folder.path + "/b.zip"])
        #expect(malformed.status == 64, "\(malformed.stderr)")
        #expect(folder.names == ["a.zip"])
    }

    /// The tables whose every access must go through an index.
    static let indexOnly = ["messages", "message_reactions", "attachments", "audit_logs"]

    /// Seq Scan nodes on those tables (or their partitions) in an EXPLAIN (FORMAT JSON) plan.
    static func seqScans(in node: Any) -> [String] {
        var found: [String] = []
        if let object = node as? [String: Any] {
            if object["Node Type"] as? String == "Seq Scan", let relation = object["Relation Name"] as? String,
               indexOnly.contains(where: { relation == $0 || relation.hasPrefix($0 + "_") }) {
                found.append(relation)
            }
            for value in object.values { found += seqScans(in: value) }
        } else if let array = node as? [Any] {
            for value in array { found += seqScans(in: value) }
        }
        return found
    }

    /// EXPLAIN (FORMAT JSON) of every export statement, as it runs (cursors
    /// through DECLARE; COPY plans its query for all rows, as a plain
    /// statement), inside a snapshot with the export's settings; returns the
    /// statements with Seq Scans on the index-only tables.
    static func seqScans(_ conn: PGConnection, user: String, channel: String) throws -> [(String, [String])] {
        try conn.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { conn in
            try conn.execute(UserExportQueries.session)
            return try UserExportQueries.all.compactMap { statement in
                let sql = statement.streaming == .cursor ? "DECLARE plan_check NO SCROLL CURSOR FOR \(statement.sql)" : statement.sql
                let plan = try conn.query("EXPLAIN (FORMAT JSON) " + sql, statement.parameters(user, channel)).scalar ?? ""
                let scans = seqScans(in: try jsonObject(Array(plan.utf8)))
                return scans.isEmpty ? nil : (statement.name, scans)
            }
        }
    }

    @Test("every statement reaches messages, reactions, attachments and audit logs through indexes", arguments: TestServers.matrix)
    func plans(major: Int) throws {
        let db = try ExportFixture.shared(major)
        let conn = try db.connect()
        for (name, scans) in try Self.seqScans(conn, user: "1001", channel: "3006") {
            Issue.record("\(name) on PostgreSQL \(major): Seq Scan on \(scans.joined(separator: ", "))")
        }
        // The streamed statements merge the partitions' ordered index scans: no sort.
        try conn.transaction("BEGIN READ ONLY") { conn in
            try conn.execute(UserExportQueries.session)
            for (statement, index, cursor, parameters) in [
                (UserExportQueries.messages, "author_id_channel_id_created_at_id_idx", false, ["1001", "3001", String(Int64.max)]),
                (UserExportQueries.auditLog, "user_id_created_at_id_idx", true, ["1001"]),
            ] {
                let plan = try conn.query("EXPLAIN " + (cursor ? "DECLARE c NO SCROLL CURSOR FOR " : "") + statement, parameters).rows
                    .compactMap { $0[0] }.joined(separator: "\n")
                #expect(plan.contains("Merge Append") && plan.contains(index), "\(plan)")
                // The only ordering is the Merge Append's own (a json_agg may sort one message's attachments).
                let orderings = plan.split(separator: "\n").filter { $0.contains("Sort Key: m.channel_id") || $0.contains("Sort Key: a.created_at") }
                #expect(orderings.count == 1, "\(plan)")
            }
        }
    }

    @Test("a generated heavy user (many channels and partitions): every count equals the database's, nothing of others leaks",
          arguments: TestServers.matrix)
    func generatedHeavyUser(major: Int) throws {
        let db = try TestServers.database(major, prefix: "export_gen")
        let conn = try db.connect()
        try Migrator(directory: RepoPaths.migrations).run(conn)
        let generated = try DataGenerator(config: try GeneratorConfig.scale("tiny")).run(conninfo: db.conninfo)
        let user = String(generated.heaviestUserID)
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        let summary = try UserExporter.export(conn: conn, user: user, output: folder.path + "/heavy.zip")

        let files = try readPackage(folder.path + "/heavy.zip")
        let expected = try expectPackageMatchesDatabase(files, conn, user: user)
        #expect(Int64(expected["messages"] ?? 0) == generated.heaviestUserMessages)

        // Reactions, channel descriptions and the later half of the channels'
        // messages read on a second connection, in the same snapshot, while
        // the messages stream: the same files.
        var options = UserExportOptions()
        options.connect = { try db.connect() }
        options.splitMessagesFrom = 1
        _ = try UserExporter.export(conn: conn, user: user, output: folder.path + "/alongside.zip", options: options)
        let alongside = try readPackage(folder.path + "/alongside.zip")
        #expect(alongside.map(\.path) == files.map(\.path))
        for (file, other) in zip(files, alongside) where !["README.txt", "manifest.json"].contains(file.path) {
            #expect(file.bytes == other.bytes, "\(file.path)")
        }
        let partitions = try int(conn, "SELECT count(DISTINCT tableoid) FROM messages WHERE author_id = $1", [user])
        #expect(partitions >= 30 && (expected["channels"] ?? 0) >= 10, "\(partitions) partitions, \(expected["channels"] ?? 0) channels")

        // No other user's email, no password hash at all, anywhere.
        let (emails, hashes) = try othersSecrets(conn, user: user)
        expectNoSecrets(files, emails + hashes)
        #expect(summary.result.counts.messages == expected["messages"])

    }

    @Test("a user who wrote in 1,200 channels (three batches of descriptions): every channel in index.json once, and its channel.json, on one connection or two",
)
    func manyChannels() throws {
        let db = try TestServers.database(prefix: "export_many")
        let conn = try db.connect()
        try Migrator(directory: RepoPaths.migrations).run(conn)
        // Channel ids 9000-10199: their text order is not their order.
        // Channel 9000 + g holds 1 + g % 4 of the user's messages, spread
        // over several months, the third of them deleted; the last 50 are
        // DMs where a friend wrote too.
        try conn.execute(#"""
            INSERT INTO users (id, username, discriminator, email, password_hash) VALUES
              (1, 'many', '0001', 'many@example.com', 'x'), (2, 'friend', '0002', 'friend@example.com', 'y');
            INSERT INTO servers (id, owner_id, name) SELECT 100 + g, 2, 'server "' || g || '"' FROM generate_series(0, 2) g;
            INSERT INTO channels (id, server_id, type, name, topic)
            SELECT 9000 + g, 100 + g % 3, 0, 'channel ' || g, 'topic ' || g FROM generate_series(0, 1149) g;
            INSERT INTO channels (id, server_id, type, name) SELECT 9000 + g, NULL, 1, 'dm ' || g FROM generate_series(1150, 1199) g;
            INSERT INTO messages (id, channel_id, author_id, content, created_at, deleted_at)
            SELECT g * 10 + k, 9000 + g, 1, 'message ' || k,
                   timestamptz '2024-03-01 00:00:00+00' + ((g * 10 + k) * 7919 % 12000) * interval '17 minutes',
                   CASE WHEN k = 2 THEN timestamptz '2025-01-01 00:00:00+00' END
            FROM generate_series(0, 1199) g, generate_series(0, 3) k WHERE k <= g % 4;
            INSERT INTO messages (id, channel_id, author_id, content, created_at)
            SELECT 100000 + g, 9000 + g, 2, 'hello', timestamptz '2024-06-01 00:00:00+00' FROM generate_series(1150, 1199) g;
            ANALYZE;
            """#)
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }

        // One connection; a second one for the descriptions; a second one
        // for the descriptions and the later half of the channels' messages.
        var packages: [[(path: String, bytes: [UInt8])]] = []
        for split in [nil, Int64.max, 1] {
            var options = UserExportOptions()
            if let split {
                options.connect = { try db.connect() }
                options.splitMessagesFrom = split
            }
            let output = folder.path + "/p\(packages.count).zip"
            _ = try UserExporter.export(conn: conn, user: "1", output: output, options: options)
            packages.append(try readPackage(output))
        }
        // The split falls in the middle of the channels.
        let total = try int(conn, "SELECT count(*) FROM messages WHERE author_id = 1")
        let splitAt = try int(conn, UserExportQueries.channelSplit, ["1", String(total / 2)])
        #expect(splitAt > 9100 && splitAt < 10100, "\(splitAt)")

        let files = packages[0]
        let expected = try expectPackageMatchesDatabase(files, conn, user: "1")
        #expect(expected["channels"] == 1200 && expected["messages"] == total)
        for other in packages.dropFirst() {
            #expect(other.map(\.path) == files.map(\.path))
            for (file, same) in zip(files, other) where !["README.txt", "manifest.json"].contains(file.path) {
                #expect(file.bytes == same.bytes, "\(file.path)")
            }
        }
        let byPath = Dictionary(uniqueKeysWithValues: files.map { ($0.path, $0.bytes) })
        #expect(files.filter { $0.path.hasSuffix("/channel.json") }.count == 1200)

        let database = try conn.query("""
            SELECT c.id, c.name, c.type, s.id, s.name, count(*), count(m.deleted_at)
            FROM messages m JOIN channels c ON c.id = m.channel_id LEFT JOIN servers s ON s.id = c.server_id
            WHERE m.author_id = 1 GROUP BY c.id, s.id ORDER BY c.id
            """).rows
        let index = try #require(try jsonObject(byPath["messages/index.json"] ?? []) as? [String: Any])
        let channels = try #require(index["channels"] as? [[String: Any]])
        #expect(channels.count == 1200 && Set(channels.compactMap { $0["channel_id"] as? String }).count == 1200)
        #expect(index["message_count"] as? Int == total)
        #expect(index["deleted_message_count"] as? Int == expected["deleted_messages"])
        #expect(Array(index.keys).sorted() == ["channels", "deleted_message_count", "message_count"])
        for (entry, row) in zip(channels, database) {
            let id = row[0] ?? ""
            #expect(entry["channel_id"] as? String == id)
            #expect(entry["name"] as? String == row[1], "\(id)")
            #expect(entry["type"] as? Int == Int(row[2] ?? ""), "\(id)")
            #expect(entry["server_id"] as? String == row[3] && entry["server_name"] as? String == row[4], "\(id)")
            #expect(entry["message_count"] as? Int == Int(row[5] ?? "") && entry["deleted_message_count"] as? Int == Int(row[6] ?? ""))
            #expect(entry["folder"] as? String == "messages/c\(id)/")
            let channel = try #require(try jsonObject(byPath["messages/c\(id)/channel.json"] ?? []) as? [String: Any])
            #expect(channel["id"] as? String == id && channel["name"] as? String == row[1], "\(id)")
            #expect(channel["message_count"] as? Int == Int(row[5] ?? ""), "\(id)")
            #expect(channel["deleted_message_count"] as? Int == Int(row[6] ?? ""), "\(id)")
            if row[2] == "1" {
                #expect(channel["server"] is NSNull && entry["server_id"] is NSNull)
                #expect((channel["recipients"] as? [[String: Any]])?.map { $0["name"] as? String } == ["friend#0002"], "\(id)")
            } else {
                #expect((channel["server"] as? [String: Any])?["name"] as? String == row[4], "\(id)")
            }
        }
    }

    // MARK: Request queue

    static func worker(
        _ db: TestDatabase, _ folder: TestScratch.Folder, _ name: String, lease: Double = 60, pausePerFile: Bool = false
    ) -> ExportQueueWorker {
        var config = ExportWorkerConfiguration(conninfo: db.conninfo, outputDirectory: folder.path, workerID: name)
        config.once = true
        config.leaseSeconds = lease
        // Slows every export a little so that two workers surely overlap.
        if pausePerFile { config.exportOptions.afterFile = { _, _ in usleep(10_000) } }
        return ExportQueueWorker(config)
    }

    @Test("two workers share one queue: every request is processed exactly once")
    func twoWorkers() async throws {
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let users: [Int64] = [1001, 1002, 1003] + (1100..<1117).map { Int64($0) }
        let ids = try users.map { try ExportQueue.enqueue(conn, userID: $0) }
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }

        async let first = Self.worker(db, folder, "worker-a", pausePerFile: true).run()
        async let second = Self.worker(db, folder, "worker-b", pausePerFile: true).run()
        let (a, b) = try await (first, second)

        let byA = a.map(\.request.id), byB = b.map(\.request.id)
        #expect(Set(byA).isDisjoint(with: byB))
        #expect(byA.count + byB.count == ids.count)
        #expect(Set(byA + byB) == Set(ids))
        #expect(!byA.isEmpty && !byB.isEmpty, "both workers took requests: \(byA.count) and \(byB.count)")
        #expect((a + b).allSatisfy { $0.status == .done && $0.request.attempt == 1 })

        let rows = try conn.query("""
            SELECT id, user_id, status, attempts, claimed_by, output_path, output_bytes, output_sha256, completed_at IS NOT NULL
            FROM data_export_requests ORDER BY id
            """).rows
        #expect(rows.count == ids.count)
        for row in rows {
            let id = Int64(row[0] ?? "") ?? 0
            #expect(row[2] == "done" && row[3] == "1" && row[8] == "t", "request \(id): \(row)")
            #expect(row[4] == (byA.contains(id) ? "worker-a" : "worker-b"))
            let path = row[5] ?? ""
            #expect(path == folder.path + "/user-\(row[1] ?? "")-request-\(id).zip")
            let file = try ExportFiles.sizeAndDigest(of: path)
            #expect(String(file.bytes) == row[6] && file.sha256 == row[7])
            #expect(fileMode(path) == 0o600)
        }
        #expect(folder.names.count == ids.count)
        #expect(folder.names.allSatisfy { !$0.hasPrefix(".") })
    }

    @Test("a failing request is retried up to max_attempts and its error kept")
    func retries() async throws {
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let id = try ExportQueue.enqueue(conn, userID: 1003, maxAttempts: 3)
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        // A folder under the package's final name: every publish (rename) fails.
        let blocker = folder.path + "/user-1003-request-\(id).zip"
        try FileManager.default.createDirectory(atPath: blocker + "/occupied", withIntermediateDirectories: true)

        let outcomes = try await Self.worker(db, folder, "w").run()
        #expect(outcomes.map(\.status) == [.retry, .retry, .failed])
        #expect(outcomes.map(\.request.attempt) == [1, 2, 3])
        let row = try #require(try conn.query(
            "SELECT status, attempts, last_error, output_path FROM data_export_requests WHERE id = $1", [String(id)]).rows.first)
        #expect(row[0] == "failed" && row[1] == "3" && row[3] == nil)
        #expect(row[2]?.contains("cannot rename to '\(blocker)'") == true, "last_error: \(row[2] ?? "nil")")
        #expect(folder.names == ["user-1003-request-\(id).zip"])  // the blocker; no partial left

        // Fixed and given another attempt, it completes; the earlier error stays on record.
        try FileManager.default.removeItem(atPath: blocker)
        try conn.execute("UPDATE data_export_requests SET status = 'pending', max_attempts = 4 WHERE id = \(id)")
        let again = try await Self.worker(db, folder, "w").run()
        #expect(again.map(\.status) == [.done])
        let done = try conn.query("SELECT status, attempts, last_error IS NOT NULL FROM data_export_requests WHERE id = $1", [String(id)]).rows[0]
        #expect(done == ["done", "4", "t"])
    }

    @Test("a stopping worker gives its request back without counting the attempt")
    func stopReleases() async throws {
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let id = try ExportQueue.enqueue(conn, userID: 1001)
        let folder = try TestScratch.Folder("export")
        defer { folder.remove() }
        let stop = ExportStopSignal()
        var config = Self.worker(db, folder, "stopper").configuration
        config.once = false
        config.exportOptions.afterFile = { _, files in if files == 3 { stop.request("SIGTERM") } }
        let outcomes = try await ExportQueueWorker(config).run(stop: stop)
        #expect(outcomes.map(\.status) == [.released])
        let row = try conn.query("SELECT status, attempts, lease_expires_at FROM data_export_requests WHERE id = $1", [String(id)]).rows[0]
        #expect(row == ["pending", "0", nil])
        #expect(folder.names.isEmpty)
    }

    /// Starts a program with stdout and stderr going to files; returns its pid.
    static func spawn(_ argv: [String], environment: [String: String], stdout: String, stderr: String) throws -> pid_t {
        try Subprocess.spawn(argv, stdoutPath: stdout, stderrPath: stderr, extraEnvironment: environment)
    }

    @Test("a worker killed mid-export leaves the request retriable and no partial package")
    func killedWorker() async throws {
        let db = try ExportFixture.make()
        let conn = try db.connect()
        let id = try ExportQueue.enqueue(conn, userID: 1001)
        let folder = try TestScratch.Folder("export"), logs = try TestScratch.Folder("export-logs")
        defer {
            folder.remove()
            logs.remove()
        }
        let finalName = "user-1001-request-\(id).zip"
        let pid = try Self.spawn(
            [try Shell.pgvault(), "export-worker", "--dbname", db.conninfo, "--output-dir", folder.path,
             "--once", "--lease", "2", "--worker-id", "doomed"],
            environment: ["PGVAULT_TEST_EXPORT_PAUSE_AFTER_FILES": "4", "PGVAULT_TEST_EXPORT_PAUSE_SECONDS": "120"],
            stdout: logs.path + "/out", stderr: logs.path + "/err")
        var killed = false
        defer { if !killed { kill(pid, SIGKILL); var s: Int32 = 0; waitpid(pid, &s, 0) } }

        // Mid-export: four files written, the worker paused (and renewing its lease).
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let err = (try? String(contentsOfFile: logs.path + "/err", encoding: .utf8)) ?? ""
            if err.contains("test pause after 4 files") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let log = (try? String(contentsOfFile: logs.path + "/err", encoding: .utf8)) ?? ""
        try #require(log.contains("test pause after 4 files"), "worker log: \(log)")
        #expect(try conn.query("SELECT status, attempts, claimed_by FROM data_export_requests").rows == [["running", "1", "doomed"]])
        #expect(folder.names.count == 1 && folder.names[0].hasPrefix("." + finalName + ".partial-"), "\(folder.names)")

        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        killed = true
        #expect(status & 0x7f == SIGKILL)
        // Nothing under the final name; the claim still stands until its lease runs out.
        #expect(!folder.names.contains(finalName))
        #expect(try conn.query("SELECT status FROM data_export_requests").scalar == "running")
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try conn.query("SELECT lease_expires_at < now() FROM data_export_requests").scalar == "t")

        // The next worker takes it back, removes the partial file, and completes it.
        let outcomes = try await Self.worker(db, folder, "rescuer").run()
        #expect(outcomes.map(\.status) == [.done])
        #expect(outcomes.first?.request.attempt == 2)
        let row = try conn.query("SELECT status, attempts, claimed_by, last_error, output_sha256 FROM data_export_requests").rows[0]
        #expect(row[0] == "done" && row[1] == "2" && row[2] == "rescuer")
        #expect(row[3]?.contains("attempt 1 of 3 by doomed: lease expired") == true, "last_error: \(row[3] ?? "nil")")
        #expect(folder.names == [finalName])
        #expect(try ExportFiles.sizeAndDigest(of: folder.path + "/" + finalName).sha256 == row[4])
        let files = try readPackage(folder.path + "/" + finalName)
        let manifest = try #require(try jsonObject(files.last?.bytes ?? []) as? [String: Any])
        #expect((manifest["counts"] as? [String: Int])?["messages"] == 961)
    }
}
