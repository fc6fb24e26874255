import Foundation
import PGClient
@testable import PGVaultCore
import PGVaultGenerator
import TestSupport
import Testing

/// archive-partitions / restore-partitions / list --cold on generated data
/// (months 2024-01..2026-12), on every server version under test.
@Suite("cold storage", .serialized)
struct ColdStorageTests {
    /// A migrated database filled by the generator (scale tiny).
    static func generated(_ major: Int) throws -> TestDatabase {
        let db = try TestServers.database(major, prefix: "cold")
        try Migrator(directory: RepoPaths.migrations).run(try db.connect())
        _ = try DataGenerator(config: try GeneratorConfig.scale("tiny")).run(conninfo: db.conninfo)
        return db
    }

    /// Every table and partition of the public schema: row count and an md5 of its ordered rows.
    static func state(_ conn: PGConnection) throws -> [String: String] {
        let tables = try conn.query("""
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' ORDER BY 1
            """).rows.compactMap { $0[0] }
        var out: [String: String] = [:]
        for t in tables {
            let r = try conn.query("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \(t) t").rows[0]
            out[t] = "\(r[0] ?? "?") \(r[1] ?? "?")"
        }
        return out
    }

    static func options(_ db: TestDatabase, repo: String, before: String = "2024-04-01") -> ColdArchiveOptions {
        var o = ColdArchiveOptions(conninfo: db.conninfo, repo: repo, tables: ["messages"], cutoff: .before(before))
        o.referencingRows = .archive
        return o
    }

    static func count(_ conn: PGConnection, _ sql: String) throws -> Int64 {
        Int64(try conn.query(sql).scalar ?? "-1") ?? -1
    }

    struct Injected: Error {}

    // MARK: - Archive and bring back

    @Test("archiving the 3 oldest months removes exactly them with their reactions and attachments; bringing them back restores the database", arguments: TestServers.matrix)
    func roundTrip(major: Int) async throws {
        let db = try Self.generated(major)
        let conn = try db.connect()
        let folder = try TestScratch.Folder("cold")
        defer { folder.remove() }
        let repo = folder.path + "/repo"
        let before = try Self.state(conn)
        let old = ["messages_2024_01", "messages_2024_02", "messages_2024_03"]
        let oldRows = try old.map { try Self.count(conn, "SELECT count(*) FROM \($0)") }
        #expect(oldRows.allSatisfy { $0 > 0 })
        let oldReactions = try Self.count(conn, "SELECT count(*) FROM message_reactions WHERE message_created_at >= '2024-01-01' AND message_created_at < '2024-04-01'")
        let oldAttachments = try Self.count(conn, "SELECT count(*) FROM attachments WHERE message_created_at >= '2024-01-01' AND message_created_at < '2024-04-01'")
        #expect(oldReactions > 0 && oldAttachments > 0)

        let summary = try await PartitionArchiver.run(Self.options(db, repo: repo))
        #expect(summary.status == "complete")
        #expect(summary.partitions.map(\.partition) == old.map { "public.\($0)" })
        #expect(summary.partitions.map { $0.rows ?? -1 } == oldRows)
        #expect(summary.partitions.reduce(0) { $0 + ($1.referencingRows["public.message_reactions"] ?? 0) } == oldReactions)
        #expect(summary.partitions.reduce(0) { $0 + ($1.referencingRows["public.attachments"] ?? 0) } == oldAttachments)

        // No dangling references anywhere (the foreign keys would not allow it; check anyway).
        #expect(try Self.count(conn, "SELECT count(*) FROM message_reactions r WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = r.message_id AND m.created_at = r.message_created_at)") == 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM attachments r WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = r.message_id AND m.created_at = r.message_created_at)") == 0)
        // Exactly those partitions are gone; every other table and partition is untouched.
        let after = try Self.state(conn)
        for p in old { #expect(after["public.\(p)"] == nil) }
        #expect(after["public.messages_2024_04"] == before["public.messages_2024_04"])
        #expect(after["public.messages_default"] == before["public.messages_default"])
        #expect(after["public.audit_logs"] == before["public.audit_logs"])
        #expect(after["public.users"] == before["public.users"])
        #expect(Set(after.keys) == Set(before.keys).subtracting(old.map { "public.\($0)" }))
        #expect(try Self.count(conn, "SELECT count(*) FROM message_reactions WHERE message_created_at >= '2024-01-01' AND message_created_at < '2024-04-01'") == 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM attachments WHERE message_created_at >= '2024-01-01' AND message_created_at < '2024-04-01'") == 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM message_reactions") == Int64(before["public.message_reactions"]!.split(separator: " ")[0])! - oldReactions)
        #expect(try Self.count(conn, "SELECT count(*) FROM messages WHERE created_at >= '2024-01-01' AND created_at < '2024-04-01'") == 0)
        // Messages before 2024 live in the DEFAULT partition, which is never archived.
        #expect(try Self.count(conn, "SELECT count(*) FROM ONLY messages_default") > 0)

        // The cold archives verify and are listed.
        let entries = try ColdStore(repo: repo).entries()
        #expect(entries.map(\.partition) == old.map { "public.\($0)" })
        #expect(entries.allSatisfy { $0.status == "cold" && $0.table == "public.messages" })
        #expect(entries.map(\.from) == ["2024-01-01 00:00:00+00", "2024-02-01 00:00:00+00", "2024-03-01 00:00:00+00"])
        #expect(entries.map(\.rows) == oldRows)
        for e in entries {
            let report = try await Verifier.checkArchive(path: e.path, jobs: 2, progress: nil)
            #expect(report.ok, "\(e.path): \(report.failures)")
        }
        // A second run finds nothing more to do.
        let again = try await PartitionArchiver.run(Self.options(db, repo: repo))
        #expect(again.status == "nothing-to-do" && again.partitions.isEmpty)

        // Bring the months back: the database equals the one before, table by table.
        let restored = try await PartitionRestorer.run(ColdRestoreOptions(conninfo: db.conninfo, repo: repo, tables: ["messages"], since: "2024-01", until: "2024-03"))
        #expect(restored.partitions.map(\.partition) == old.map { "public.\($0)" })
        let back = try Self.state(conn)
        #expect(back == before)
        for key in before.keys.sorted() where back[key] != before[key] {
            Issue.record("\(key): before \(before[key] ?? "-"), after restore \(back[key] ?? "-")")
        }
        #expect(try ColdStore(repo: repo).entries().isEmpty)
        #expect(try ColdStore(repo: repo).entries(includeRestored: true).filter { $0.status == "restored" }.count == 3)
    }

    @Test("a failure between the dump and the detach leaves every partition attached and every row present", arguments: TestServers.matrix)
    func failureInjection(major: Int) async throws {
        let db = try Self.generated(major)
        let conn = try db.connect()
        let folder = try TestScratch.Folder("cold")
        defer { folder.remove() }
        let repo = folder.path + "/repo"
        let before = try Self.state(conn)
        for point in ["after-dump", "before-detach", "before-commit"] {
            var options = Self.options(db, repo: repo)
            options.faultInjection = { if $0 == point { throw Injected() } }
            await #expect(throws: Injected.self, "fault at \(point)") { _ = try await PartitionArchiver.run(options) }
            #expect(try Self.state(conn) == before, "after a fault at \(point)")
            #expect(try Self.count(conn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'messages'::regclass") == Int64(36 + 1))
            // No cold archive for a partition that is still attached, and no leftovers.
            #expect(try ColdStore(repo: repo).entries(includeRestored: true).isEmpty, "after a fault at \(point)")
            #expect(Files.exists(repo + "/cold/public.messages"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: repo + "/cold/public.messages").isEmpty)
        }
        // Without the fault the same run succeeds.
        let summary = try await PartitionArchiver.run(Self.options(db, repo: repo, before: "2024-02-01"))
        #expect(summary.partitions.map(\.partition) == ["public.messages_2024_01"])
    }

    // MARK: - Refusals, dry run, other tables

    @Test("referencing rows are refused by default and listed; dry run changes nothing; DEFAULT never selected; audit_logs works the same")
    func refusalsAndDryRun() async throws {
        let db = try Self.generated(TestServers.newest)
        let conn = try db.connect()
        let folder = try TestScratch.Folder("cold")
        defer { folder.remove() }
        let repo = folder.path + "/repo"
        let before = try Self.state(conn)

        var refuse = Self.options(db, repo: repo)
        refuse.referencingRows = .refuse
        do {
            _ = try await PartitionArchiver.run(refuse)
            Issue.record("archiving with referencing rows and --referencing-rows refuse succeeded")
        } catch let error as PGVaultError {
            #expect(error.description.contains("public.messages_2024_01"))
            #expect(error.description.contains("public.message_reactions"))
            #expect(error.description.contains("public.attachments"))
            #expect(error.kind == .server)
        }
        #expect(try Self.state(conn) == before)

        var dry = Self.options(db, repo: repo, before: "2100-01-01")
        dry.dryRun = true
        let plan = try await PartitionArchiver.run(dry)
        #expect(plan.status == "dry-run")
        #expect(plan.partitions.count == 36)
        #expect(!plan.partitions.contains { $0.partition.hasSuffix("_default") })
        #expect(plan.partitions.allSatisfy { $0.action == "would-archive" })
        #expect(plan.partitions.first?.rows ?? 0 > 0)
        #expect(try Self.state(conn) == before)
        #expect(try ColdStore(repo: repo).entries().isEmpty)

        // audit_logs: nothing references it; --keep-detached keeps the table.
        var audit = ColdArchiveOptions(conninfo: db.conninfo, repo: repo, tables: ["public.audit_logs"], cutoff: .before("2024-03-01"))
        audit.keepDetached = true
        let a = try await PartitionArchiver.run(audit)
        #expect(a.partitions.map(\.action) == ["archived-kept-detached", "archived-kept-detached"])
        #expect(try Self.count(conn, "SELECT count(*) FROM pg_inherits WHERE inhrelid = 'audit_logs_2024_01'::regclass") == 0)
        #expect(try Self.count(conn, "SELECT count(*) FROM audit_logs_2024_01") == a.partitions[0].rows)
        // Its name is taken: bringing it back is refused until it is dropped.
        let restore = ColdRestoreOptions(conninfo: db.conninfo, repo: repo, tables: ["audit_logs"], since: "2024-01", until: "2024-01")
        let taken = await #expect(throws: PGVaultError.self) { _ = try await PartitionRestorer.run(restore) }
        #expect(taken?.kind == .server, "\(String(describing: taken))")
        try conn.execute("DROP TABLE audit_logs_2024_01")
        let r = try await PartitionRestorer.run(restore)
        #expect(r.partitions.map(\.partition) == ["public.audit_logs_2024_01"])

        // An attached partition overlapping a cold range makes the restore refuse.
        try conn.execute("CREATE TABLE audit_logs_feb_part PARTITION OF audit_logs FOR VALUES FROM ('2024-02-10 00:00:00+00') TO ('2024-02-20 00:00:00+00')")
        do {
            _ = try await PartitionRestorer.run(ColdRestoreOptions(conninfo: db.conninfo, repo: repo, tables: ["audit_logs"], since: "2024-02", until: "2024-02"))
            Issue.record("restoring over an attached partition succeeded")
        } catch let error as PGVaultError {
            #expect(error.description.contains("overlaps public.audit_logs_feb_part"))
            #expect(error.kind == .server)
        }
        #expect(try ColdStore(repo: repo).entries().map(\.partition) == ["public.audit_logs_2024_02"])
    }

    @Test("restore-partitions --table messages --table audit_logs brings back the months of both tables, or of neither")
    func restoreSeveralTables() async throws {
        let db = try Self.generated(TestServers.newest)
        let conn = try db.connect()
        let folder = try TestScratch.Folder("cold")
        defer { folder.remove() }
        let repo = folder.path + "/repo"
        let binary = try Shell.pgvault()
        let before = try Self.state(conn)
        var both = ColdArchiveOptions(conninfo: db.conninfo, repo: repo, tables: ["messages", "audit_logs"], cutoff: .before("2024-03-01"))
        both.referencingRows = .archive
        let archived = try await PartitionArchiver.run(both)
        #expect(Set(archived.partitions.map(\.partition)) == [
            "public.messages_2024_01", "public.messages_2024_02", "public.audit_logs_2024_01", "public.audit_logs_2024_02",
        ])

        let run = try Shell.capture([
            binary, "restore-partitions", "--repo", repo, "--table", "messages", "--table", "audit_logs",
            "--since", "2024-01", "--until", "2024-02", "-d", db.conninfo, "--json",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = try JSONDecoder().decode(ColdRestoreSummary.self, from: Data(run.stdout.utf8))
        #expect(summary.tables == ["public.messages", "public.audit_logs"])
        #expect(summary.partitions.map(\.partition) == [
            "public.messages_2024_01", "public.messages_2024_02", "public.audit_logs_2024_01", "public.audit_logs_2024_02",
        ])
        #expect(try Self.state(conn) == before)
        #expect(try ColdStore(repo: repo).entries().isEmpty)

        // A table with nothing in the window: refused as a whole, the other one stays cold.
        var messages = Self.options(db, repo: repo, before: "2024-02-01")
        messages.tables = ["messages"]
        _ = try await PartitionArchiver.run(messages)
        let refused = try Shell.capture([
            binary, "restore-partitions", "--repo", repo, "--table", "messages", "--table", "audit_logs",
            "--since", "2024-01", "--until", "2024-01", "-d", db.conninfo,
        ])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("no cold range of public.audit_logs"), "\(refused.stderr)")
        #expect(try Self.count(conn, "SELECT count(*) FROM pg_class WHERE relname = 'messages_2024_01'") == 0)
        #expect(try ColdStore(repo: repo).entries().map(\.partition) == ["public.messages_2024_01"])
    }

    @Test("a second run waits for nobody: the advisory lock refuses it")
    func advisoryLock() async throws {
        let db = try TestServers.database(TestServers.newest, prefix: "cold")
        try Migrator(directory: RepoPaths.migrations).run(try db.connect())
        let holder = try db.connect()
        let database = try holder.query("SELECT current_database()").scalar!
        try holder.execute("SELECT pg_advisory_lock(hashtext('pgvault-cold:' || current_database()))")
        let folder = try TestScratch.Folder("cold")
        defer { folder.remove() }
        do {
            _ = try await PartitionArchiver.run(Self.options(db, repo: folder.path))
            Issue.record("ran while the lock was held")
        } catch let error as PGVaultError {
            #expect(error.description.contains("another pgvault archive-partitions or restore-partitions is running on database '\(database)'"))
            #expect(error.kind == .server)
        }
    }

    // MARK: - Pure logic

    @Test("--older-than forms and --since/--until months")
    func parsing() throws {
        #expect(try ColdCatalog.interval("12months") == "12 months")
        #expect(try ColdCatalog.interval("90days") == "90 days")
        #expect(try ColdCatalog.interval("1year") == "1 years")
        #expect(try ColdCatalog.interval("8 weeks") == "8 weeks")
        #expect(throws: PGVaultError.self) { try ColdCatalog.interval("soon") }
        #expect(try #require(throws: PGVaultError.self) { try ColdCatalog.interval("0days") }.kind == .usage)
        let w = try PartitionRestorer.window(ColdRestoreOptions(conninfo: "", repo: "", tables: ["t"], since: "2024-01", until: "2024-03"))
        #expect(w.overlaps(from: ["2024-03-01 00:00:00+00"], to: ["2024-04-01 00:00:00+00"]) == true)
        #expect(w.overlaps(from: ["2024-04-01 00:00:00+00"], to: ["2024-05-01 00:00:00+00"]) == false)
        #expect(w.overlaps(from: ["2023-12-01 00:00:00+00"], to: ["2024-01-01 00:00:00+00"]) == false)
        let d = try PartitionRestorer.window(ColdRestoreOptions(conninfo: "", repo: "", tables: ["t"], since: nil, until: "2024-12"))
        #expect(d.until == TimePoint.parse("2025-01-01"))
        #expect(ColdStore.safe(".x/y") == "_x_y")
    }
}
