import Foundation
import PGClient
@testable import PGVaultCore
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `pgvault drill` through the real binary, on real servers: both places
/// (a scratch cluster, a --target server), the record in the repository,
/// list and prune, the metrics file, a damaged backup, a drill killed with
/// SIGKILL, and scratch clusters side by side.
@Suite("restore drills", .serialized)
struct DrillTests {
    typealias Repo = RepositoryFormatTests

    struct Fixture {
        var db: TestDatabase
        var keys: Repo.Keys
        var repo: String
    }

    /// A chat database with one backup in an encrypted repository.
    static func fixture(_ name: String, _ major: Int, chat: Bool = true) async throws -> Fixture {
        let db = chat ? try await BackupTests.chatDatabase(major) : try TestServers.database(major)
        if !chat { try db.connect().execute("CREATE TABLE t AS SELECT g, md5(g::text) AS m FROM generate_series(1, 20000) g") }
        let keys = try Repo.keys("drill-\(name)\(major)")
        let repo = try Repo.encryptedRepository("drill-\(name)\(major)", keys)
        _ = try Repo.backup(db, repo, keys)
        return Fixture(db: db, keys: keys, repo: repo)
    }

    static func drill(_ f: Fixture, _ extra: [String]) throws -> (status: Int32, json: [String: Any], stderr: String) {
        let out = try Repo.pgvault(["drill", "--repo", f.repo, "--identity", f.keys.identity, "--json", "--quiet"] + extra)
        let json = ((try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [String: Any]) ?? [:]
        return (out.status, json, out.stderr + out.stdout)
    }

    static func drillDatabases(_ db: TestDatabase) throws -> [String] {
        try PGConnection(conninfo: db.server.conninfo(database: "postgres"))
            .query("SELECT datname FROM pg_database WHERE starts_with(datname, 'pgvault_drill_') ORDER BY 1").rows.map { try $0.string(0) }
    }

    static func scratchFolders() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []).filter { $0.hasPrefix(ScratchCluster.folderPrefix) }.map { "/tmp/" + $0 }
    }

    static func listed(_ f: Fixture) throws -> [[String: Any]] {
        let out = try Repo.pgvault(["list", "--repo", f.repo, "--key-file", f.keys.keyFile, "--json"])
        try #require(out.status == 0, "\(out.stderr)")
        let json = try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        return try #require(json["backups"] as? [[String: Any]])
    }

    // MARK: - Both places

    @Test("a drill on a scratch cluster of the backup's major version passes: verified, three smoke queries through indexes, each phase timed, recorded, list shows it, metrics written", arguments: TestServers.versions)
    func scratch(major: Int) async throws {
        let f = try await Self.fixture("scratch", major)
        let before = Set(Self.scratchFolders())
        let metrics = try TestScratch.directory("drill-metrics") + "/drill.prom"
        let r = try Self.drill(f, ["--scratch-cluster", "--metrics-file", metrics])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json["status"] as? String == "passed")
        #expect((r.json["place"] as? String ?? "").contains("scratch cluster, PostgreSQL \(major)."), "\(r.json["place"] ?? "")")
        #expect(r.json["verify"] as? String == "ok")
        let smoke = try #require(r.json["smoke"] as? [[String: Any]])
        #expect(smoke.count == 3 && smoke.allSatisfy { $0["status"] as? String == "passed" }, "\(smoke)")
        #expect(smoke.allSatisfy { ($0["scan"] as? String ?? "").contains("Scan") }, "\(smoke)")
        let phases = try #require(r.json["phases"] as? [String: Double])
        for phase in ["fetch", "schema", "load", "postData", "verify", "setup"] {
            #expect((phases[phase] ?? 0) > 0, "phase \(phase): \(phases)")
        }
        let recovery = try #require(r.json["recoverySeconds"] as? Double)
        #expect(abs(recovery - ["fetch", "schema", "load", "postData"].reduce(0) { $0 + phases[$1]! }) < 0.001)
        // Nothing of it is left.
        #expect(Set(Self.scratchFolders()).subtracting(before).isEmpty)

        let record = try #require(r.json["record"] as? String)
        #expect(FileManager.default.fileExists(atPath: f.repo + "/" + record))
        let last = try #require(try Self.listed(f).first?["lastDrill"] as? [String: Any])
        #expect(last["outcome"] as? String == "passed" && (last["recoverySeconds"] as? Double) == recovery)
        let text = try Repo.pgvault(["list", "--repo", f.repo, "--key-file", f.keys.keyFile])
        #expect(text.stdout.contains("LAST DRILL") && text.stdout.contains("passed "), "\(text.stdout)")

        let prom = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(prom.contains("pgvault_last_drill_success{job=\"drill\",repository=\"\(f.repo)\"} 1"), "\(prom)")
        #expect(prom.contains("pgvault_last_drill_timestamp_seconds{") && prom.contains("pgvault_drill_recovery_seconds{"), "\(prom)")
    }

    @Test("a drill with --target restores into a database of its own on that server, checks the free space, and drops it; the server's other databases are untouched", arguments: TestServers.versions)
    func target(major: Int) async throws {
        let f = try await Self.fixture("target", major)
        let admin = f.db.server.conninfo(database: "postgres")
        let databasesBefore = try PGConnection(conninfo: admin).query("SELECT datname FROM pg_database ORDER BY 1").rows
        let r = try Self.drill(f, ["--target", f.db.conninfo, "--jobs", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json["status"] as? String == "passed")
        let drilled = try #require(r.json["drillDatabase"] as? String)
        #expect(drilled.hasPrefix("pgvault_drill_"))
        #expect((r.json["spaceCheck"] as? String ?? "").contains("free under"), "\(r.json["spaceCheck"] ?? "")")
        #expect(try PGConnection(conninfo: admin).query("SELECT datname FROM pg_database ORDER BY 1").rows == databasesBefore)
        let smoke = try #require(r.json["smoke"] as? [[String: Any]])
        #expect(smoke.allSatisfy { $0["status"] as? String == "passed" }, "\(smoke)")
    }

    @Test("--target and --scratch-cluster together, or --pg-bin with --target, are usage errors")
    func usage() throws {
        let both = try Repo.pgvault(["drill", "--repo", "/nonexistent", "--target", "dbname=x", "--scratch-cluster"])
        #expect(both.status == 64 && both.stderr.contains("not both"), "\(both.stderr)")
        let pgBin = try Repo.pgvault(["drill", "--repo", "/nonexistent", "--target", "dbname=x", "--pg-bin", "/usr/bin"])
        #expect(pgBin.status == 64 && pgBin.stderr.contains("--pg-bin"), "\(pgBin.stderr)")
    }

    // MARK: - Failures

    @Test("a drill of a backup with a flipped pack byte fails with exit 2 naming the member and the pack; it is recorded as an error, and the metrics say 0", arguments: TestServers.versions)
    func damaged(major: Int) async throws {
        let f = try await Self.fixture("damaged", major, chat: false)
        let pack = try #require(try Repo.objects(f.repo, under: "packs/").first)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: f.repo + "/" + pack)))
        bytes[bytes.count - 100] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: f.repo + "/" + pack))
        let metrics = try TestScratch.directory("drill-damaged") + "/drill.prom"
        let before = Set(Self.scratchFolders())

        let r = try Self.drill(f, ["--metrics-file", metrics])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(pack) && r.stderr.contains("of member "), "\(r.stderr)")
        #expect(Set(Self.scratchFolders()).subtracting(before).isEmpty)
        let last = try #require(try Self.listed(f).first?["lastDrill"] as? [String: Any])
        #expect(last["outcome"] as? String == "error")
        #expect(((last["problems"] as? [String]) ?? []).contains { $0.contains(pack) }, "\(last)")
        let prom = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(prom.contains("pgvault_last_drill_success{job=\"drill\",repository=\"\(f.repo)\"} 0"), "\(prom)")
        #expect(!prom.contains("pgvault_drill_recovery_seconds{"))

        let onTarget = try Self.drill(f, ["--target", f.db.conninfo])
        #expect(onTarget.status == 2, "\(onTarget.stderr)")
        #expect(try Self.drillDatabases(f.db).isEmpty)
    }

    @Test("a restored database that lost an index fails the smoke query with exit 1, naming the query and the plan")
    func missingIndex() async throws {
        let f = try await Self.fixture("noindex", TestServers.newest)
        // The backup's own schema without the index that serves a channel's
        // newest messages (on every partition).
        try f.db.connect().execute("DROP INDEX idx_messages_channel_created")
        _ = try Repo.backup(f.db, f.repo, f.keys)
        let r = try Self.drill(f, ["--target", f.db.conninfo])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.json["status"] as? String == "failed")
        let smoke = try #require(r.json["smoke"] as? [[String: Any]])
        let failed = smoke.filter { $0["status"] as? String == "failed" }
        #expect(failed.count == 1 && failed.first?["name"] as? String == "newest messages of the busiest channel", "\(smoke)")
        let detail = failed.first?["detail"] as? String ?? ""
        #expect(detail.contains("messages without an index"), "\(failed)")
        #expect(try Self.drillDatabases(f.db).isEmpty)
    }

    // MARK: - SIGKILL

    @Test("a drill killed with SIGKILL leaves its scratch cluster running; the next drill stops and removes it")
    func sigkillScratch() async throws {
        let f = try await Self.fixture("killscratch", TestServers.newest)
        let process = try Child(["drill", "--repo", f.repo, "--identity", f.keys.identity, "--quiet"])
        let left = try await Self.scratchCluster(of: process)
        process.kill()
        let postmaster = try #require(try String(contentsOfFile: left + "/data/postmaster.pid", encoding: .utf8).split(separator: "\n").first.flatMap { pid_t($0) })
        #expect(DrillOwner.running(postmaster), "the killed drill's postmaster should still run")

        let next = try Self.drill(f, [])
        #expect(next.status == 0, "\(next.stderr)")
        #expect((next.json["cleanedUp"] as? [String] ?? []).contains(left), "\(next.json)")
        #expect(!FileManager.default.fileExists(atPath: left))
        #expect(!DrillOwner.running(postmaster))
    }

    @Test("a --target drill killed with SIGKILL leaves its database; the next drill drops it, and never a pgvault_drill_ database it did not create")
    func sigkillTarget() async throws {
        let f = try await Self.fixture("killtarget", TestServers.newest)
        let admin = try PGConnection(conninfo: f.db.server.conninfo(database: "postgres"))
        // Named like a drill's, but no drill made it: it must survive.
        let foreign = "pgvault_drill_not_ours_\(UInt32.random(in: 0...UInt32.max))"
        try admin.execute("CREATE DATABASE \(SQL.ident(foreign))")
        defer { try? admin.execute("DROP DATABASE IF EXISTS \(SQL.ident(foreign))") }

        let process = try Child(["drill", "--repo", f.repo, "--identity", f.keys.identity, "--target", f.db.conninfo, "--quiet"])
        var made: String?
        let deadline = Date().addingTimeInterval(60)
        while made == nil && process.isRunning && Date() < deadline {
            made = try admin.query(
                "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') = $1",
                [DrillDatabase.commentPrefix + "\(process.pid) \(DrillOwner.host)"]).scalar
            try await Task.sleep(for: .milliseconds(20))
        }
        process.kill()
        let left = try #require(made, "the drill ended before its database was made")
        #expect(try Self.drillDatabases(f.db).contains(left))

        let next = try Self.drill(f, ["--target", f.db.conninfo])
        #expect(next.status == 0, "\(next.stderr)")
        #expect((next.json["cleanedUp"] as? [String] ?? []) == [left], "\(next.json)")
        #expect(try Self.drillDatabases(f.db) == [foreign])
    }

    /// The folder of the scratch cluster `process` started, once its server listens.
    static func scratchCluster(of process: Child) async throws -> String {
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline {
            let folder = scratchFolders().first { dir in
                (try? String(contentsOfFile: dir + "/owner", encoding: .utf8))?.hasPrefix("\(process.pid) ") == true
                    && Files.exists(dir + "/.s.PGSQL.5432")
            }
            if let folder { return folder }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HarnessError("the drill ended, or 60 s passed, before its scratch cluster was up")
    }

    @Test("SIGINT mid-drill: exit 130, the scratch cluster stopped and removed, the drill recorded as broken off")
    func sigint() async throws {
        let f = try await Self.fixture("int", TestServers.newest)
        let process = try Child(["drill", "--repo", f.repo, "--identity", f.keys.identity, "--quiet"])
        let running = try await Self.scratchCluster(of: process)
        let postmaster = try #require(try String(contentsOfFile: running + "/data/postmaster.pid", encoding: .utf8).split(separator: "\n").first.flatMap { pid_t($0) })
        kill(process.pid, SIGINT)
        #expect(process.wait() == 130)
        #expect(!Files.exists(running))
        #expect(!DrillOwner.running(postmaster))
        let last = try #require(try Self.listed(f).first?["lastDrill"] as? [String: Any])
        #expect(last["outcome"] as? String == "error", "\(last)")
    }

    /// A pgvault run started and reaped with waitpid (Subprocess), so that
    /// the test knows at once when it ended and can SIGKILL it.
    final class Child {
        let pid: pid_t
        private var exited = false

        init(_ arguments: [String]) throws {
            pid = try Subprocess.spawn([try Shell.pgvault()] + arguments)
        }

        var isRunning: Bool {
            var status: Int32 = 0
            if !exited && waitpid(pid, &status, WNOHANG) == pid { exited = true }
            return !exited
        }

        /// Its exit status, once it ends.
        func wait() -> Int32 {
            exited = true
            return Subprocess.wait(pid)
        }

        func kill() {
            guard isRunning else { return }
            Glibc.kill(pid, SIGKILL)
            _ = Subprocess.wait(pid)
            exited = true
        }
    }

    // MARK: - Collisions

    @Test("two scratch drills at once, beside the test servers, both pass; a kept scratch cluster listens on no TCP port, only on a socket in its own folder")
    func scratchClustersSideBySide() async throws {
        let f = try await Self.fixture("side", TestServers.newest)
        let argv = [try Shell.pgvault(), "drill", "--repo", f.repo, "--identity", f.keys.identity, "--scratch-cluster", "--quiet"]
        async let a = Task.detached { try Shell.capture(argv) }.value
        async let b = Task.detached { try Shell.capture(argv) }.value
        let (ra, rb) = try await (a, b)
        #expect(ra.status == 0, "\(ra.stderr)\(ra.stdout)")
        #expect(rb.status == 0, "\(rb.stderr)\(rb.stdout)")

        let kept = try Self.drill(f, ["--keep"])
        #expect(kept.status == 0, "\(kept.stderr)")
        let folder = try #require(Self.scratchFolders().first { (try? String(contentsOfFile: $0 + "/owner", encoding: .utf8)) == "keep\n" })
        defer {
            _ = try? Shell.capture(["/usr/sbin/runuser", "-u", "postgres", "--", TestCluster.binDir(major: TestServers.newest) + "/pg_ctl", "-D", folder + "/data", "-m", "immediate", "stop"])
            try? FileManager.default.removeItem(atPath: folder)
        }
        let database = try #require(kept.json["drillDatabase"] as? String)
        let conn = try PGConnection(conninfo: "host=\(folder) port=5432 user=postgres dbname=\(database)")
        #expect(try conn.query("SHOW listen_addresses").scalar == "")
        #expect(try conn.query("SHOW unix_socket_directories").scalar == folder)
        #expect(try conn.query("SELECT count(*) > 0 FROM users").scalar == "t")
        // A kept cluster is no orphan: the next drill leaves it alone.
        let next = try Self.drill(f, [])
        #expect(next.status == 0 && FileManager.default.fileExists(atPath: folder + "/data/postmaster.pid"), "\(next.stderr)")
    }

    // MARK: - Prune

    @Test("prune deletes the drill records of the backups it drops and keeps the others'")
    func prune() async throws {
        let f = try await Self.fixture("prune", TestServers.newest, chat: false)
        let older = try #require(try Self.listed(f).first?["name"] as? String)
        _ = try Repo.backup(f.db, f.repo, f.keys)
        #expect(try Self.drill(f, ["--backup", older]).status == 0)
        #expect(try Self.drill(f, []).status == 0)
        let newest = try #require(try Self.listed(f).first?["name"] as? String)
        #expect(try Repo.objects(f.repo, under: "drills/").count == 2)

        let pruned = try Repo.pgvault(["prune", "--repo", f.repo, "--key-file", f.keys.keyFile, "--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"])
        #expect(pruned.status == 0, "\(pruned.stderr)")
        let left = try Repo.objects(f.repo, under: "drills/")
        #expect(left.count == 1 && left.allSatisfy { $0.hasPrefix("drills/\(newest)/") }, "\(left)")
        #expect(try Repo.pgvault(["check", "--repo", f.repo, "--key-file", f.keys.keyFile]).status == 0)
    }

    // MARK: - Pure rules

    @Test("the space rule refuses a need above the free space, naming both and the way out; unknown free space is said plainly")
    func spaceRule() {
        guard case .tooLittle(let text) = SpaceCheck.judge(need: 10 << 30, free: 1 << 30, where: "/var/lib/postgresql/17/main", reason: nil) else {
            Issue.record("10 GiB needed, 1 GiB free was not refused")
            return
        }
        #expect(text.contains("1024.0 MiB free under /var/lib/postgresql/17/main") && text.contains("10240.0 MiB") && text.contains("--scratch-cluster"), "\(text)")
        #expect(SpaceCheck.judge(need: 1 << 20, free: 1 << 30, where: "/d", reason: nil) == .enough("1024.0 MiB free under /d, about 1.0 MiB needed"))
        guard case .unknown(let why) = SpaceCheck.judge(need: 1, free: nil, where: nil, reason: "the server is on host db2, not this one") else {
            Issue.record("no free space was judged known")
            return
        }
        #expect(why.contains("could not be checked (the server is on host db2"), "\(why)")
    }

    @Test("the plan rule finds an index, index-only or bitmap scan of the table or a partition whose condition holds the index's leading column, and nothing in a sequential or whole-index scan")
    func planRule() {
        func plan(_ node: String) -> String { "[{\"Plan\": \(node)}]" }
        let leading = ["i1": "channel_id", "idx_server_members_user": "user_id", "server_members_pkey": "server_id", "servers_pkey": "id", "by_author": "author_id"]
        func scan(_ plan: String, _ relations: Set<String>) -> String? { SmokeQuery.indexScan(plan: plan, on: relations) { leading[$0] } }
        let partitioned = plan(#"{"Node Type": "Limit", "Plans": [{"Node Type": "Merge Append", "Plans": [{"Node Type": "Index Scan", "Relation Name": "messages_2024_01", "Index Name": "i1", "Index Cond": "(channel_id = '7'::bigint)"}]}]}"#)
        #expect(scan(partitioned, ["messages", "messages_2024_01"]) == "Index Scan using i1 on messages_2024_01")
        let bitmap = plan(#"{"Node Type": "Bitmap Heap Scan", "Relation Name": "server_members", "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "idx_server_members_user", "Index Cond": "(user_id = '7'::bigint)"}]}"#)
        #expect(scan(bitmap, ["server_members"]) == "Bitmap Heap Scan using idx_server_members_user on server_members")
        let seq = plan(#"{"Node Type": "Hash Join", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "server_members"}, {"Node Type": "Index Scan", "Relation Name": "servers", "Index Name": "servers_pkey", "Index Cond": "(id = m.server_id)"}]}"#)
        #expect(scan(seq, ["server_members"]) == nil)
        #expect(SmokeQuery.nodes(plan: seq) == ["Hash Join", "Seq Scan on server_members", "Index Scan on servers"])
        // The whole primary key read with a filter, or with a condition on its second column only.
        let filtered = plan(#"{"Node Type": "Index Only Scan", "Relation Name": "server_members", "Index Name": "server_members_pkey", "Filter": "(user_id = '7'::bigint)"}"#)
        #expect(scan(filtered, ["server_members"]) == nil)
        let later = plan(#"{"Node Type": "Index Scan", "Relation Name": "messages_2024_01", "Index Name": "by_author", "Index Cond": "(channel_id = '7'::bigint)"}"#)
        #expect(scan(later, ["messages_2024_01"]) == nil)
        #expect(scan("not json", ["t"]) == nil)
    }

    @Test("an owner marker names a pid and a host; a kept one, or anything else, is no owner; a dead pid of this host is no longer alive")
    func owners() {
        #expect(DrillOwner("123 hostA\n") == DrillOwner("123 hostA"))
        #expect(DrillOwner("keep\n") == nil && DrillOwner("x y") == nil && DrillOwner("") == nil)
        #expect(DrillOwner("1 some-other-host")?.isAlive == true)
        // pid_max is at most 2^22: this pid does not exist.
        #expect(DrillOwner("\(1 << 23) \(DrillOwner.host)")?.isAlive == false)
        // A live process that is not pgvault (the test runner's own pid would be; pid 1 is init).
        #expect(DrillOwner("1 \(DrillOwner.host)")?.isAlive == false)
    }
}
