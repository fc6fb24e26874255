import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// `archive-partitions --attach-to TABLE`: the design's `messages_archive`
/// (schema document section 9.1). Months move from `messages` to the archive
/// table in one transaction, go on from there to cold files, and come back.
@Suite("archive table: archive-partitions --attach-to", .serialized)
struct ArchiveTableTests {
    static let months = ["messages_2024_01", "messages_2024_02"]

    static func options(_ db: TestDatabase) -> ColdArchiveOptions {
        var o = ColdArchiveOptions(conninfo: db.conninfo, repo: "", tables: ["messages"], cutoff: .before("2024-03-01"))
        o.attachTo = "messages_archive"
        return o
    }

    /// The parent of `relation` (nil when it is no partition).
    static func parent(_ conn: PGConnection, _ relation: String) throws -> String? {
        try conn.query("SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = to_regclass($1)", [relation]).rows.first?[0] ?? nil
    }

    static func bound(_ conn: PGConnection, _ relation: String) throws -> String? {
        try conn.query("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = $1::regclass", [relation]).scalar
    }

    @Test("hot → archive table → cold file → back: every row and bound kept, the archive table's indexes reused; referencing rows refused", arguments: TestServers.matrix)
    func wholePath(major: Int) async throws {
        let db = try ColdStorageTests.generated(major)
        let conn = try db.connect()
        let folder = try TestScratch.Folder("archive-table")
        defer { folder.remove() }
        let original = try ColdStorageTests.state(conn)
        let bounds = try Self.months.map { try Self.bound(conn, $0) }

        // Reactions and attachments reference those months: refused, named, nothing moves.
        var dry = Self.options(db)
        dry.dryRun = true
        let plan = try await PartitionArchiver.run(dry)
        #expect(plan.partitions.map(\.partition) == Self.months.map { "public.\($0)" })
        #expect(plan.partitions.allSatisfy { $0.action == "refused" && ($0.reason ?? "").contains("cannot satisfy those foreign keys") })
        let refused = await #expect(throws: PGVaultError.self) { _ = try await PartitionArchiver.run(Self.options(db)) }
        #expect(refused?.description.contains("public.message_reactions") == true)
        #expect(try ColdStorageTests.state(conn) == original)

        // The operator removes them; then the months move.
        try conn.execute("DELETE FROM message_reactions WHERE message_created_at >= '2024-01-01' AND message_created_at < '2024-03-01'")
        try conn.execute("DELETE FROM attachments WHERE message_created_at >= '2024-01-01' AND message_created_at < '2024-03-01'")
        let hot = try ColdStorageTests.state(conn)
        let dryAgain = try await PartitionArchiver.run(dry)
        #expect(dryAgain.partitions.map(\.action) == ["would-attach", "would-attach"])

        // A failure at the last moment leaves both months in messages.
        for point in ["before-detach", "before-commit"] {
            var failing = Self.options(db)
            failing.faultInjection = { if $0 == point { throw ColdStorageTests.Injected() } }
            await #expect(throws: ColdStorageTests.Injected.self) { _ = try await PartitionArchiver.run(failing) }
            for month in Self.months { #expect(try Self.parent(conn, month) == "messages", "after a fault at \(point)") }
            #expect(try ColdStorageTests.state(conn) == hot)
        }

        let moved = try await PartitionArchiver.run(Self.options(db))
        #expect(moved.status == "complete")
        #expect(moved.partitions.map(\.action) == ["attached", "attached"])
        #expect(moved.partitions.allSatisfy { $0.attachedTo == "public.messages_archive" && $0.archive == nil })
        #expect(moved.partitions.map { $0.rows ?? -1 } == Self.months.map { Int64(hot["public.\($0)"]!.split(separator: " ")[0])! })
        for (month, bound) in zip(Self.months, bounds) {
            #expect(try Self.parent(conn, month) == "messages_archive")
            #expect(try Self.bound(conn, month) == bound)
            // Every index of messages_archive has this partition's index attached (reused, not missing).
            let archiveIndexes = try ColdStorageTests.count(conn, "SELECT count(*) FROM pg_index WHERE indrelid = 'messages_archive'::regclass")
            let attached = try ColdStorageTests.count(conn, """
                SELECT count(*) FROM pg_index ix JOIN pg_inherits inh ON inh.inhrelid = ix.indexrelid
                WHERE ix.indrelid = '\(month)'::regclass
                  AND inh.inhparent IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'messages_archive'::regclass)
                """)
            #expect(archiveIndexes > 0 && attached == archiveIndexes)
        }
        // A move changes no row: every table and partition is as it was; only
        // the parents' totals shift from messages to messages_archive.
        let after = try ColdStorageTests.state(conn)
        let parents: Set = ["public.messages", "public.messages_archive"]
        #expect(after.filter { !parents.contains($0.key) } == hot.filter { !parents.contains($0.key) })
        #expect(try ColdStorageTests.count(conn, "SELECT count(*) FROM messages WHERE created_at >= '2024-01-01' AND created_at < '2024-03-01'") == 0)
        #expect(try ColdStorageTests.count(conn, "SELECT count(*) FROM messages_archive")
                == moved.partitions.reduce(0) { $0 + ($1.rows ?? 0) })
        let again = try await PartitionArchiver.run(Self.options(db))
        #expect(again.status == "nothing-to-do")

        // A month that overlaps one the archive table already holds is refused.
        try conn.execute("CREATE TABLE messages_2024_01_late PARTITION OF messages FOR VALUES FROM ('2024-01-15 00:00:00+00') TO ('2024-02-01 00:00:00+00')")
        var overlapping = Self.options(db)
        overlapping.cutoff = .before("2024-02-01")
        let overlap = await #expect(throws: PGVaultError.self) { _ = try await PartitionArchiver.run(overlapping) }
        #expect(overlap?.description.contains("overlaps public.messages_2024_01") == true, "\(String(describing: overlap))")
        #expect(try Self.parent(conn, "messages_2024_01_late") == "messages")
        try conn.execute("ALTER TABLE messages DETACH PARTITION messages_2024_01_late")
        try conn.execute("DROP TABLE messages_2024_01_late")

        // From the archive table on to cold files, as for any partitioned table, and back.
        let repo = folder.path + "/repo"
        let cold = try await PartitionArchiver.run(ColdArchiveOptions(conninfo: db.conninfo, repo: repo, tables: ["messages_archive"], cutoff: .before("2024-03-01")))
        #expect(cold.partitions.map(\.action) == ["archived", "archived"])
        for month in Self.months { #expect(try Self.parent(conn, month) == nil) }
        let back = try await PartitionRestorer.run(ColdRestoreOptions(conninfo: db.conninfo, repo: repo, tables: ["messages_archive"], since: "2024-01", until: "2024-02"))
        #expect(back.partitions.map(\.partition) == Self.months.map { "public.\($0)" })
        for (month, bound) in zip(Self.months, bounds) {
            #expect(try Self.parent(conn, month) == "messages_archive")
            #expect(try Self.bound(conn, month) == bound)
        }
        #expect(try ColdStorageTests.state(conn) == after)
    }

    @Test("the command line: --attach-to needs no --repo and refuses the options that cannot apply")
    func commandLine() throws {
        let pgvault = try Shell.pgvault()
        let base = [pgvault, "archive-partitions", "-d", "dbname=none", "--table", "messages", "--older-than", "12months"]
        let neither = try Shell.capture(base)
        #expect(neither.status == 64)
        #expect(neither.stderr.contains("--repo DIR") && neither.stderr.contains("--attach-to TABLE"))
        for extra in [["--repo", "/tmp/x"], ["--referencing-rows", "archive"], ["--keep-detached"]] {
            let result = try Shell.capture(base + ["--attach-to", "messages_archive"] + extra)
            #expect(result.status == 64, "\(extra)")
            #expect(result.stderr.contains(extra[0]), "\(extra): \(result.stderr)")
        }
    }
}
