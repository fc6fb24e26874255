import Foundation
import PGClient
@testable import PGVaultCore
import Testing
import TestSupport

/// PostgreSQL 18's optimizer statistics carried in the archive (pg_dump 18)
/// and applied by restore: the restored database has the source's
/// statistics before any ANALYZE.
@Suite("optimizer statistics (PostgreSQL 18)")
struct StatisticsTests {
    /// Per table and index of the public schema: reltuples; per column: the
    /// planner's view of it. Not relpages or correlation: autovacuum may
    /// vacuum either database at any moment and set them from the pages as
    /// they lie.
    static func statistics(_ conn: PGConnection) throws -> [String] {
        let relations = try conn.query("""
            SELECT c.relname || ' ' || c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 1
            """).rows.compactMap { $0[0] }
        let columns = try conn.query("""
            SELECT format('%s.%s %s %s %s', tablename, attname, null_frac, n_distinct, coalesce(most_common_vals::text, '-'))
            FROM pg_stats WHERE schemaname = 'public' ORDER BY 1
            """).rows.compactMap { $0[0] }
        return relations + columns
    }

    @Test("a backup of 18 carries the statistics in schema/statistics.sql; restored on 18 the tables, indexes and columns have the source's statistics before any ANALYZE (none with --no-statistics); verify passes", .enabled(if: TestServers.testing(18)))
    func carriedAndRestored() async throws {
        let db = try await BackupTests.chatDatabase(18)
        try db.connect().execute("ANALYZE")
        let archive = try TestScratch.path("stats18")
        let backup = try Shell.capture([try Shell.pgvault(), "backup", "-d", db.conninfo, "--output", archive, "--quiet"])
        try #require(backup.status == 0, "\(backup.stderr)")
        let manifest = try Manifest.decode(Array(try Data(contentsOf: URL(fileURLWithPath: archive + "/manifest.json"))), source: archive)
        #expect(manifest.schema?.statistics?.member == "schema/statistics.sql.zst")

        let target = try db.sibling(prefix: "stats")
        let restored = try Shell.capture([try Shell.pgvault(), "restore", archive, "-d", target.conninfo, "--quiet"])
        #expect(restored.status == 0, "\(restored.stderr)")
        let source = try Self.statistics(try db.connect()), copy = try Self.statistics(try target.connect())
        #expect(source.count > 50 && copy == source, "\(Set(source).symmetricDifference(copy).sorted().prefix(10))")
        // --no-statistics leaves them to ANALYZE: the tables are not analyzed yet.
        let bare = try db.sibling(prefix: "nostats")
        let without = try Shell.capture([try Shell.pgvault(), "restore", archive, "-d", bare.conninfo, "--quiet", "--no-statistics"])
        #expect(without.status == 0, "\(without.stderr)")
        #expect(try bare.connect().query("SELECT count(*) FROM pg_stats WHERE schemaname = 'public'").scalar == "0")
        let verified = try Shell.capture([try Shell.pgvault(), "verify", archive])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
    }
}
