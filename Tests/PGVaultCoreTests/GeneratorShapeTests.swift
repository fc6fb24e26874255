import PGClient
import PGVaultCore
import PGVaultGenerator
import TestSupport
import Testing

/// The `many-partitions` shape (issue 22) and the `large` scale's sizes.
@Suite("generator shapes and scales")
struct GeneratorShapeTests {
    /// The tiny scale's rows over 50 daily partitions: 5,000 messages, 100 a day.
    static func manyPartitions(seed: UInt64 = 1) throws -> GeneratorConfig {
        let tiny = try GeneratorConfig.scale("tiny", seed: seed)
        var config = GeneratorConfig(seed: seed, users: tiny.users, messages: tiny.messages)
        config.dailyPartitions = try GeneratorConfig.shape("many-partitions", partitions: 50, seed: seed).dailyPartitions
        return config
    }

    /// messages' partitions with their bounds as the server prints them (UTC), and rows.
    static func partitions(_ conn: PGConnection) throws -> [(name: String, bound: String, rows: Int)] {
        try conn.execute("SET TimeZone = 'UTC'")
        return try conn.query("""
            SELECT p.relname, pg_get_expr(p.relpartbound, p.oid),
                   (SELECT count(*) FROM messages m WHERE m.tableoid = p.oid)
            FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
            WHERE i.inhparent = 'messages'::regclass ORDER BY 1
            """).rows.map { (try $0.string(0), try $0.string(1), Int(try $0.string(2)) ?? -1) }
    }

    @Test("many-partitions: daily partitions named and bounded like the migrations' monthly ones, rows in every one, deterministic",
          arguments: TestServers.versions)
    func manyPartitions(major: Int) throws {
        let a = try GeneratorTests.migratedDatabase(major), b = try GeneratorTests.migratedDatabase(major)
        let summary = try DataGenerator(config: try Self.manyPartitions()).run(conninfo: a.conninfo)
        _ = try DataGenerator(config: try Self.manyPartitions()).run(conninfo: b.conninfo)
        let conn = try a.connect()
        let parts = try Self.partitions(conn)
        // 50 daily partitions from 2024-01-01 and the DEFAULT one; no monthly one is left.
        #expect(parts.count == 51)
        #expect(parts.map(\.name).contains("messages_default"))
        #expect(!parts.contains { $0.name.range(of: #"^messages_\d{4}_\d{2}$"#, options: .regularExpression) != nil })
        let daily = parts.filter { $0.name != "messages_default" }
        #expect(daily.first?.name == "messages_2024_01_01" && daily.last?.name == "messages_2024_02_19")
        #expect(daily.first?.bound == "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-01-02 00:00:00+00')")
        #expect(daily.last?.bound == "FOR VALUES FROM ('2024-02-19 00:00:00+00') TO ('2024-02-20 00:00:00+00')")
        for p in daily {
            // The name is the day its bounds hold.
            let day = p.name.dropFirst("messages_".count).replacingOccurrences(of: "_", with: "-")
            #expect(p.bound.hasPrefix("FOR VALUES FROM ('\(day) 00:00:00+00')"), "\(p.name): \(p.bound)")
            #expect(p.rows > 0, "\(p.name) is empty")
        }
        // Each row is in the partition of its UTC day; the rest in DEFAULT.
        #expect(try GeneratorTests.count(conn, """
            SELECT count(*) FROM messages
            WHERE tableoid::regclass::text <> CASE
                WHEN created_at >= '2024-01-01 00:00:00+00' AND created_at < '2024-02-20 00:00:00+00'
                THEN 'messages_' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY_MM_DD') ELSE 'messages_default' END
            """) == 0)
        #expect(try GeneratorTests.count(conn, "SELECT count(*) FROM messages_default") > 0)
        #expect(summary.rows("messages") == 5_000)
        // audit_logs keeps the migrations' monthly partitions.
        #expect(try GeneratorTests.count(conn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_logs'::regclass") == 37)
        // The foreign keys to and from messages hold on every partition.
        #expect(try conn.query("SELECT conname FROM pg_constraint WHERE NOT convalidated").rows.isEmpty)
        #expect(try GeneratorTests.count(conn, """
            SELECT count(*) FROM message_reactions r
            WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = r.message_id AND m.created_at = r.message_created_at)
            """) == 0)
        // Same seed, same rows in the same partitions.
        let fingerprint = """
            SELECT md5(string_agg(tableoid::regclass::text || ' ' || t::text, E'\\n' ORDER BY id)) FROM messages t
            """
        #expect(try conn.query(fingerprint).scalar == (try b.connect()).query(fingerprint).scalar)
    }

    @Test("many-partitions refuses fewer than 4 messages a day, unknown shapes and too many partitions")
    func refusals() throws {
        var config = try Self.manyPartitions()
        config.messages = 199
        #expect(throws: GeneratorError.self) { try config.validate() }
        config.messages = 1_000
        config.dailyPartitions = 1_000
        let few = #expect(throws: GeneratorError.self) { try config.validate() }
        #expect(few?.description.contains("at least 4000") == true)
        #expect(throws: GeneratorError.self) { try GeneratorConfig.shape("few-partitions", partitions: 10) }
        #expect(throws: GeneratorError.self) { try GeneratorConfig.shape("many-partitions", partitions: 20_001).validate() }
        #expect(try GeneratorConfig.shape("many-partitions", partitions: 10_000).messages == 100_000)
    }

    @Test("the large scale is the default one times 10/3")
    func largeScale() throws {
        let large = try GeneratorConfig.scale("large"), standard = try GeneratorConfig.scale("default")
        #expect(large.messages == 10_000_000 && large.users == 333_333)
        #expect(large.auditLogs == 200_000 && large.reactions == 5_000_000)
        #expect(Double(large.users) / Double(standard.users) > 3.33)
        try large.validate()
    }
}
