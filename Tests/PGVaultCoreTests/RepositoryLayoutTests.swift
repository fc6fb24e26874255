import Foundation
@testable import PGVaultCore
import Testing
import TestSupport

/// Repositories through the real binary: names, both archive forms, what list
/// and prune make of things that are not backups, and the metrics file.
@Suite("repository layout")
struct RepositoryLayoutTests {
    static func pgvault(_ arguments: [String]) throws -> Shell.Output {
        let binary = try Shell.pgvault()
        return try Shell.capture([binary] + arguments)
    }

    static func listed(_ repo: String) throws -> [[String: Any]] {
        let out = try pgvault(["list", "--repo", repo, "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out.stdout)")
        return try #require(object["backups"] as? [[String: Any]], "\(out.stdout)")
    }

    @Test("two claims of one wanted name, the same millisecond, get two names; either form's name counts as taken")
    func claimsAreUnique() throws {
        let repo = try Repository(path: try TestScratch.directory("claim"))
        let at = Date(timeIntervalSince1970: 1_767_225_600.123)
        let wanted = repo.newBackupPath(database: "chat", at: at)
        #expect((wanted as NSString).lastPathComponent == "chat-20260101T000000.123Z")
        var outputs: [String] = []
        var stagings: [String] = []
        for _ in 0..<3 {
            var options = BackupOptions(conninfo: "", output: wanted)
            options.uniqueName = true
            let (staging, output) = try BackupEngine.stagingFolder(for: options)
            outputs.append(output)
            stagings.append(staging)
        }
        #expect(Set(outputs).count == 3, "\(outputs)")
        #expect(outputs.map { ($0 as NSString).lastPathComponent } == ["chat-20260101T000000.123Z", "chat-20260101T000000.123Z-1", "chat-20260101T000000.123Z-2"])
        // A published tar of the same stem keeps a directory backup from taking it.
        try Data().write(to: URL(fileURLWithPath: repo.path + "/chat-20260101T000000.124Z.tar"))
        var options = BackupOptions(conninfo: "", output: repo.newBackupPath(database: "chat", at: at.addingTimeInterval(0.001)))
        options.uniqueName = true
        #expect(try BackupEngine.stagingFolder(for: options).output.hasSuffix("chat-20260101T000000.124Z-1"))
        for s in stagings { Files.removeTree(s) }
    }

    @Test("backup --repo in both forms, back to back: distinct names, both listed and pruned; an old-style name still reads")
    func bothFormsListedAndPruned() throws {
        let db = try TestServers.database()
        try db.connect().execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
        let repo = try TestScratch.directory("forms") + "/chat"
        for args in [["--format", "file"], [], ["--format", "file"], []] {
            let out = try Self.pgvault(["backup", "-d", db.conninfo, "--repo", repo, "--quiet", "--json"] + args)
            #expect(out.status == 0, "\(out.stderr)")
        }
        // A backup from an older pgvault, named to the second.
        let old = try Self.pgvault(["backup", "-d", db.conninfo, "--output", repo + "/db-20250101T000000Z", "--quiet", "--json"])
        #expect(old.status == 0, "\(old.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: repo).sorted()
        #expect(names.count == 5 && names.filter { $0.hasSuffix(".tar") }.count == 2, "\(names)")
        let entries = try Self.listed(repo)
        #expect(entries.count == 5 && entries.allSatisfy { $0["status"] as? String == "complete" }, "\(entries)")

        // All taken now: a policy of one daily keeps the newest only, whatever its form.
        let pruned = try Self.pgvault(["prune", "--repo", repo, "--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"])
        #expect(pruned.status == 0, "\(pruned.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: repo).count == 1)
        #expect(try Self.listed(repo).count == 1)
    }

    @Test("list names a nested repository, cold/ and a stranger for what they are; prune deletes none of them")
    func nestedLayout() throws {
        let db = try TestServers.database()
        try db.connect().execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
        let root = try TestScratch.directory("nested")
        for repo in [root, root + "/chat"] {
            let out = try Self.pgvault(["backup", "-d", db.conninfo, "--repo", repo, "--quiet", "--json"])
            #expect(out.status == 0, "\(out.stderr)")
        }
        try FileManager.default.createDirectory(atPath: root + "/cold/public.messages", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/notes", withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: root + "/notes/README"))

        let entries = try Self.listed(root)
        #expect(entries.count == 1 && entries[0]["status"] as? String == "complete", "\(entries)")
        let text = try Self.pgvault(["list", "--repo", root])
        #expect(text.status == 0)
        #expect(text.stdout.contains("chat/  another repository: pgvault list --repo \(root)/chat"), "\(text.stdout)")
        #expect(text.stdout.contains("cold/  cold storage"), "\(text.stdout)")
        #expect(text.stdout.contains("notes  not written by pgvault"), "\(text.stdout)")
        #expect(!text.stdout.contains("incomplete"), "\(text.stdout)")

        let pruned = try Self.pgvault(["prune", "--repo", root, "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0"])
        #expect(pruned.status == 0, "\(pruned.stderr)")
        for kept in ["chat", "cold/public.messages", "notes/README"] { #expect(Files.exists(root + "/" + kept), "\(kept)") }
        #expect(try Self.listed(root + "/chat").count == 1)
    }

    @Test("a metrics file in a missing folder fails before any work: no archive, exit 2")
    func metricsCheckedFirst() throws {
        let db = try TestServers.database()
        try db.connect().execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
        let dir = try TestScratch.directory("metrics")
        let out = try Self.pgvault(["backup", "-d", db.conninfo, "--repo", dir + "/repo", "--metrics-file", dir + "/nosuch/pgvault.prom", "--quiet", "--json"])
        #expect(out.status == 2)
        #expect(out.stderr.contains("'--metrics-file \(dir)/nosuch/pgvault.prom': its folder \(dir)/nosuch does not exist"), "\(out.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: dir + "/repo")) ?? []).isEmpty)
    }

    @Test("a metrics file that cannot be written at the end: the backup is complete, exit 0, JSON and list agree")
    func metricsFailAtTheEnd() async throws {
        let db = try TestServers.database()
        let holder = try db.connect()
        try holder.execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
        let binary = try Shell.pgvault()
        let dir = try TestScratch.directory("metrics-end")
        try FileManager.default.createDirectory(atPath: dir + "/prom", withIntermediateDirectories: true)
        let repo = dir + "/repo"
        // The backup waits for its table lock while the metrics folder goes away.
        try holder.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        let run = Task.detached {
            try Shell.capture([binary, "backup", "-d", db.conninfo, "--repo", repo, "--metrics-file", dir + "/prom/pgvault.prom", "--quiet", "--json"])
        }
        let deadline = Date().addingTimeInterval(20)
        while try holder.query("""
            SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 't'::regclass
            """).scalar == "0" && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try FileManager.default.removeItem(atPath: dir + "/prom")
        try holder.execute("COMMIT")
        let out = try await run.value
        #expect(out.status == 0, "\(out.stderr)")
        let json = try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out.stdout)")
        #expect(json["status"] as? String == "complete")
        let archive = try #require(json["archive"] as? String)
        #expect(Files.exists(archive))
        let warnings = json["warnings"] as? [String] ?? []
        #expect(warnings.count == 1 && warnings[0].contains("metrics file was not written"), "\(json)")
        #expect(out.stderr.contains("warning: backup complete, but the metrics file was not written"), "\(out.stderr)")
        let entries = try Self.listed(repo)
        #expect(entries.map { $0["status"] as? String } == ["complete"] && entries.first?["path"] as? String == archive)
    }
}
