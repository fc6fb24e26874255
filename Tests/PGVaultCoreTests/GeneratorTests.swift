import Foundation
import PGClient
import PGVaultCore
import PGVaultGenerator
import TestSupport
import Testing

@Suite("synthetic data generator", .serialized)
struct GeneratorTests {
    static let tiny = try! GeneratorConfig.scale("tiny")

    /// A fresh database with every migration applied.
    static func migratedDatabase(_ major: Int? = nil) throws -> TestDatabase {
        let db = try TestServers.database(major, prefix: "gen")
        try Migrator(directory: RepoPaths.migrations).run(try db.connect())
        return db
    }

    /// The tiny scale (seed 1) on the newest server, generated once for the
    /// tests that only read it.
    static let shared: Result<(TestDatabase, GeneratorSummary), Error> = Result {
        let db = try migratedDatabase()
        return (db, try DataGenerator(config: tiny).run(conninfo: db.conninfo))
    }

    static func count(_ conn: PGConnection, _ sql: String, _ params: [String?] = []) throws -> Int {
        Int(try conn.query(sql, params).scalar ?? "") ?? -1
    }

    // MARK: - Loads with every constraint valid

    @Test("tiny scale loads with every constraint valid, rows in every partition", arguments: TestServers.versions)
    func tinyScale(major: Int) throws {
        let db = try Self.migratedDatabase(major)
        var lines: [String] = []
        let summary = try DataGenerator(config: Self.tiny).run(conninfo: db.conninfo) { lines.append($0) }
        let conn = try db.connect()
        try Self.expectLoadedIntact(conn, summary)
        #expect(lines.contains { $0.hasPrefix("messages: 5000 rows") })
        #expect(summary.rows("messages") == 5000)
        #expect(summary.rows("users") == 200)
        #expect(summary.rows("audit_logs") == 300)
    }

    @Test("a second, larger scale (2k users, 40k messages) also loads with every constraint valid")
    func largerScale() throws {
        let db = try Self.migratedDatabase()
        var config = GeneratorConfig(seed: 99, users: 2_000, messages: 40_000)
        config.chunkSize = 8_192  // several chunks per worker
        let summary = try DataGenerator(config: config).run(conninfo: db.conninfo)
        try Self.expectLoadedIntact(try db.connect(), summary)
        #expect(summary.rows("messages") == 40_000)
        #expect(summary.rows("server_members") > 2_000)
        #expect(summary.rows("message_reactions") > 10_000)
    }

    /// Row counts match the summary; no constraint is NOT VALID; every foreign
    /// key and CHECK holds when re-checked by hand; every partition has rows;
    /// triggers are enabled again and member_count is right.
    static func expectLoadedIntact(_ conn: PGConnection, _ summary: GeneratorSummary) throws {
        // The foreign keys dropped and re-added around each load are back exactly
        // as the migrations made them (names, definitions, per-partition copies).
        #expect(try constraints(conn) == referenceConstraints.get(conn.serverMajorVersion))

        #expect(summary.tables.map(\.table) == DataGenerator.tables)
        for table in DataGenerator.tables {
            #expect(try count(conn, "SELECT count(*) FROM \(SQL.ident(table))") == Int(summary.rows(table)), "\(table)")
            #expect(summary.rows(table) > 0, "\(table) is empty")
        }
        #expect(try conn.query("SELECT conname FROM pg_constraint WHERE NOT convalidated").rows.isEmpty)

        // Foreign keys (MATCH SIMPLE: a row with a NULL in the key is not checked).
        let fks = try conn.query("""
            SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
                   (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY k.o)
                      FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
                   (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY k.o)
                      FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n)
            FROM pg_constraint c
            WHERE c.contype = 'f' AND c.conparentid = 0 AND c.connamespace = 'public'::regnamespace
            """).rows
        #expect(fks.count >= 20)
        for fk in fks {
            let child = fk[3]!.split(separator: ",").map(String.init), parent = fk[4]!.split(separator: ",").map(String.init)
            let notNull = child.map { "x.\($0) IS NOT NULL" }.joined(separator: " AND ")
            let match = zip(child, parent).map { "p.\($1) = x.\($0)" }.joined(separator: " AND ")
            let orphans = try count(conn, "SELECT count(*) FROM \(fk[1]!) x WHERE \(notNull) AND NOT EXISTS (SELECT 1 FROM \(fk[2]!) p WHERE \(match))")
            #expect(orphans == 0, "\(fk[0]!): \(orphans) orphans")
        }
        // CHECK constraints, re-evaluated on every row.
        let checks = try conn.query("""
            SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE contype = 'c' AND conparentid = 0 AND connamespace = 'public'::regnamespace
            """).rows
        #expect(checks.count >= 10)
        for check in checks {
            let definition = check[2]!
            guard definition.hasPrefix("CHECK ") else { continue }
            let violations = try count(conn, "SELECT count(*) FROM \(check[1]!) WHERE NOT \(definition.dropFirst(6))")
            #expect(violations == 0, "\(check[0]!): \(violations) rows violate it")
        }

        // Every partition of messages and audit_logs, DEFAULT included, has rows.
        for parent in ["messages", "audit_logs"] {
            let partitions = try conn.query(
                "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = $1::regclass ORDER BY 1", [parent]
            ).rows.map { $0[0]! }
            #expect(partitions.count == 37, "\(parent): \(partitions.count) partitions")
            #expect(partitions.contains("\(parent)_default"))
            #expect(partitions.contains("\(parent)_2024_01") && partitions.contains("\(parent)_2026_12"))
            for partition in partitions {
                #expect(try count(conn, "SELECT count(*) FROM \(partition)") > 0, "\(partition) is empty")
            }
        }

        // The load disabled user triggers only inside its transactions.
        #expect(try count(conn, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O'") == 0)
        #expect(try count(conn, """
            SELECT count(*) FROM servers s
            WHERE member_count <> (SELECT count(*) FROM server_members m WHERE m.server_id = s.id)
            """) == 0)
        // The servers <-> channels cycle was closed.
        #expect(try count(conn, "SELECT count(*) FROM servers WHERE system_channel_id IS NOT NULL") > 0)
        #expect(try count(conn, "SELECT count(*) FROM servers WHERE rules_channel_id IS NOT NULL") > 0)
        #expect(try count(conn, "SELECT count(*) FROM channels WHERE last_message_id IS NOT NULL") > 0)
        // The generated column was computed by the server.
        #expect(try count(conn, "SELECT count(*) FROM invites WHERE (max_age = 0) <> (expires_at IS NULL)") == 0)
    }

    /// The constraints of a freshly migrated database, once per server version.
    static let referenceConstraints = PerVersion { major in try constraints(try migratedDatabase(major).connect()) }

    static func constraints(_ conn: PGConnection) throws -> [String] {
        try conn.query("""
            SELECT c.conname || ' ' || c.conrelid::regclass::text || ' ' || c.confrelid::regclass::text || ' '
                   || pg_get_constraintdef(c.oid) || ' ' || coalesce(p.conname, '') || ' ' || c.convalidated
            FROM pg_constraint c LEFT JOIN pg_constraint p ON p.oid = c.conparentid
            WHERE c.connamespace = 'public'::regnamespace ORDER BY 1
            """).rows.map { $0[0] ?? "" }
    }

    // MARK: - Content

    @Test("text hostile to COPY survives: tabs, newlines, backslashes, a literal \\N, quotes, Korean, emoji")
    func hostileText() throws {
        let (db, _) = try Self.shared.get()
        let conn = try db.connect()
        for fragment in ["\t", "\n", "\r", "\\", "\\N", "'", "\"", "😀", "👨‍👩‍👧‍👦", "한국어", "café", "\n\\.\n"] {
            #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE strpos(content, $1) > 0", [fragment]) > 0, "\(fragment.debugDescription)")
        }
        // The two characters \N are text, not NULL; NULL and empty are distinct too.
        let literal = try Self.count(conn, "SELECT count(*) FROM messages WHERE content = E'\\\\N'")
        #expect(literal > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE content = $1", ["\\N"]) == literal)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE content IS NULL") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE content = ''") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE content = $1", [GeneratorSamples.kitchenSink]) > 0)
        // Other text columns get hostile text too.
        #expect(try Self.count(conn, "SELECT count(*) FROM users WHERE bio ~ '[\\t\\n\\\\]'") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM attachments WHERE filename ~ '[\\t\\n\\\\\"]'") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM servers WHERE name ~ '[\\t\\n\\\\]'") > 0)

        // text[]: every hostile element survives array quoting plus COPY escaping,
        // "NULL" stays a string and "" an empty element.
        let json = try conn.query(
            "SELECT array_to_json(features)::text FROM servers WHERE $1 = ANY(features) ORDER BY id LIMIT 1", ["quote\"inside"]
        ).scalar ?? "[]"
        let features = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String] ?? []
        #expect(Array(features.suffix(GeneratorSamples.hostileFeatures.count)) == GeneratorSamples.hostileFeatures)
        #expect(try Self.count(conn, "SELECT count(*) FROM servers WHERE array_position(features, NULL) IS NOT NULL") == 0)

        // jsonb: escapes decoded (\u00e9, a surrogate pair, \", \\, \t), nesting kept.
        #expect(try Self.count(
            conn, "SELECT count(*) FROM messages WHERE embeds -> 0 -> 'footer' ->> 'text' = $1",
            ["été 🎉 \"quoted\" back\\slash\ttab"]) > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE jsonb_array_length(embeds) > 0 AND embeds -> 0 -> 'fields' IS NOT NULL") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM users WHERE settings -> 'nested' -> 'deep' -> 'deeper' ->> 1 = '2.5'") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM users WHERE jsonb_typeof(settings) <> 'object'") == 0)

        // bigint[] mentions name real users; replies point to an earlier message
        // of the same channel.
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE cardinality(mentions) > 0") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages m, unnest(m.mentions) u WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = u)") == 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE reference_message_id IS NOT NULL") > 0)
        #expect(try Self.count(conn, """
            SELECT count(*) FROM messages m WHERE reference_message_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM messages p
                WHERE p.id = m.reference_message_id AND p.channel_id = m.channel_id AND p.created_at < m.created_at)
            """) == 0)

        // Soft deletes, edits, DMs, NULL-able columns both ways.
        for table in ["users", "channels", "messages"] {
            #expect(try Self.count(conn, "SELECT count(*) FROM \(table) WHERE deleted_at IS NOT NULL") > 0, "\(table)")
            #expect(try Self.count(conn, "SELECT count(*) FROM \(table) WHERE deleted_at IS NULL") > 0, "\(table)")
        }
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE edited_at > created_at") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM channels WHERE type = 1 AND server_id IS NULL") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM message_reactions WHERE emoji_id IS NULL") > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM message_reactions WHERE emoji_id IS NOT NULL") > 0)
        #expect(try Self.count(conn, "SELECT count(DISTINCT type) FROM channels") >= 6)

        // The schema has no bytea column to fill (besides sqlx's bookkeeping); if
        // a migration adds one, the generator must learn to fill it.
        #expect(try Self.count(conn, """
            SELECT count(*) FROM information_schema.columns
            WHERE table_schema = 'public' AND data_type = 'bytea' AND table_name <> '_sqlx_migrations'
            """) == 0)
    }

    // MARK: - Determinism

    static func fingerprints(_ conn: PGConnection) throws -> [String: String] {
        var out: [String: String] = [:]
        for table in DataGenerator.tables {
            out[table] = try conn.query(
                "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM \(SQL.ident(table)) t"
            ).scalar
        }
        return out
    }

    @Test("same seed, same data (ids included, however many workers); another seed, other data")
    func determinism() throws {
        var config = Self.tiny
        config.seed = 7
        let a = try Self.migratedDatabase(), b = try Self.migratedDatabase(), c = try Self.migratedDatabase()
        let summaryA = try DataGenerator(config: config).run(conninfo: a.conninfo)
        var twoWorkers = config
        twoWorkers.workers = 2  // messages over two connections, checked row by row
        let summaryB = try DataGenerator(config: twoWorkers).run(conninfo: b.conninfo)
        try Self.expectLoadedIntact(try b.connect(), summaryB)
        var otherSeed = config
        otherSeed.seed = 8
        let summaryC = try DataGenerator(config: otherSeed).run(conninfo: c.conninfo)

        let fa = try Self.fingerprints(try a.connect())
        let fb = try Self.fingerprints(try b.connect())
        let fc = try Self.fingerprints(try c.connect())
        #expect(fa == fb)
        for table in DataGenerator.tables { #expect(fa[table] != fc[table], "\(table) did not change with the seed") }
        #expect(summaryA.tables == summaryB.tables)
        #expect(summaryA.heaviestUserID == summaryB.heaviestUserID)
        #expect(summaryC.seed == 8)
        // Nothing depends on the clock: no timestamp after the generated range.
        let conn = try a.connect()
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE created_at >= '2027-04-01' OR created_at < '2023-06-01'") == 0)
    }

    // MARK: - Skew

    @Test("skew: user #0 is a heavy user with messages in many channels and partitions, and more")
    func skew() throws {
        let (db, summary) = try Self.shared.get()
        let conn = try db.connect()
        let top = try conn.query("SELECT author_id, count(*) FROM messages GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").rows[0]
        #expect(top[0] == String(summary.heaviestUserID))
        #expect(top[1] == String(summary.heaviestUserMessages))
        #expect(try conn.query("SELECT username FROM users ORDER BY id LIMIT 1").scalar == "power_user")
        let first = try conn.query("SELECT id FROM users ORDER BY id LIMIT 1").scalar
        #expect(first == String(summary.heaviestUserID))

        let median = Double(try conn.query("""
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(n, 0))
            FROM users u LEFT JOIN (SELECT author_id, count(*) AS n FROM messages GROUP BY 1) m ON m.author_id = u.id
            """).scalar ?? "") ?? -1
        #expect(Double(summary.heaviestUserMessages) > 10 * max(median, 1))

        let id = String(summary.heaviestUserID)
        let spread = try conn.query(
            "SELECT count(DISTINCT channel_id), count(DISTINCT tableoid) FROM messages WHERE author_id = $1", [id]
        ).rows[0]
        #expect(Int(spread[0]!)! >= 5)
        #expect(Int(spread[1]!)! >= 10)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE author_id = $1 AND deleted_at IS NOT NULL", [id]) > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages m JOIN channels c ON c.id = m.channel_id WHERE m.author_id = $1 AND c.type = 1", [id]) > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM message_reactions WHERE user_id = $1", [id]) > 10)
        #expect(try Self.count(conn, "SELECT count(*) FROM attachments a JOIN messages m ON m.id = a.message_id AND m.created_at = a.message_created_at WHERE m.author_id = $1", [id]) > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM invites WHERE inviter_id = $1", [id]) > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM audit_logs WHERE user_id = $1", [id]) > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM servers WHERE owner_id = $1", [id]) > 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM server_members WHERE user_id = $1", [id]) >= 5)

        // Channels are skewed too: the busiest has many times the median.
        let channels = try conn.query("""
            SELECT max(n), percentile_cont(0.5) WITHIN GROUP (ORDER BY n)
            FROM (SELECT count(*) AS n FROM messages GROUP BY channel_id) x
            """).rows[0]
        #expect(Double(channels[0]!)! > 5 * Double(channels[1]!)!)
    }

    // MARK: - Refusals

    @Test("refuses an unmigrated or non-empty database, and impossible sizes")
    func refusals() throws {
        let empty = try TestServers.database(prefix: "gen")
        let unmigrated = #expect(throws: GeneratorError.self) { try DataGenerator(config: Self.tiny).run(conninfo: empty.conninfo) }
        #expect(unmigrated?.description.contains("run pgvault migrate first") == true)

        let (db, _) = try Self.shared.get()
        let again = #expect(throws: GeneratorError.self) { try DataGenerator(config: Self.tiny).run(conninfo: db.conninfo) }
        #expect(again?.description.contains("already has rows") == true)

        #expect(throws: GeneratorError.self) { try GeneratorConfig.scale("huge") }
        #expect(throws: GeneratorError.self) { try GeneratorConfig(users: 5, messages: 1000).validate() }
        #expect(throws: GeneratorError.self) { try GeneratorConfig(users: 100, messages: 10).validate() }
        #expect(try GeneratorConfig.scale("default").messages == 3_000_000)
        #expect(try GeneratorConfig.scale("small").users == 5_000)
    }
}

/// A value computed once per server major version.
final class PerVersion<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Value] = [:]
    private let make: @Sendable (Int) throws -> Value

    init(_ make: @escaping @Sendable (Int) throws -> Value) { self.make = make }

    func get(_ major: Int) throws -> Value {
        try lock.withLock {
            if let value = values[major] { return value }
            let value = try make(major)
            values[major] = value
            return value
        }
    }
}
