import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Faults caused for real: the server stopped, a worker's connection
/// terminated, the output filesystem full, SIGKILL and SIGINT, DDL during a
/// backup. In each case pgvault ends with a clear error and a non-zero exit and
/// leaves nothing that looks like a complete archive.
@Suite("reliability: faults caused for real", .serialized)
struct ReliabilityTests {
    // MARK: - Output filesystem full

    @Test("a full output filesystem (2 MiB tmpfs): clear ENOSPC error, exit 2, nothing under the final name")
    func fullDisk() async throws {
        let fixture = try await Fault.bigDatabase()
        let binary = try Shell.pgvault()
        let mount = try TestScratch.directory("fault-tmpfs")
        defer { rmdir(mount) }
        let mounted = try Shell.capture(["/bin/mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mount])
        try #require(mounted.status == 0, "cannot mount a tmpfs here: \(mounted.stderr)")
        defer { _ = try? Shell.capture(["/bin/umount", "-l", mount]) }

        for format in ["directory", "file"] {
            let output = mount + "/backup-\(format)"
            let result = try Shell.capture([
                binary, "backup", "-d", fixture.conninfo, "--output", output, "--format", format,
                "--jobs", "2", "--compress-level", "1", "--table", "public.big", "--json", "--quiet",
            ])
            #expect(result.status == 2, "\(format): exit \(result.status)")
            #expect(result.stderr.contains("No space left on device"), "\(format): \(result.stderr)")
            // The internal staging name stays internal: the message names the archive being written.
            #expect(!result.stderr.contains(".partial-") && result.stderr.contains("(being written)"), "\(format): \(result.stderr)")
            #expect(result.stdout.contains("\"status\":\"failed\""), "\(format): \(result.stdout)")
            #expect(!Files.exists(output), "\(format): something exists under the final name")
            // The partial folder is removed: the filesystem is empty again.
            #expect(try FileManager.default.contentsOfDirectory(atPath: mount) == [], "\(format): left behind")
        }
    }

    // MARK: - Signals

    @Test("SIGKILL mid-backup leaves only a hidden .partial folder without manifest.json, listed as incomplete")
    func sigkillMidBackup() async throws {
        let fixture = try await Fault.bigDatabase()
        let binary = try Shell.pgvault()
        let repo = try TestScratch.path("repo-kill")
        let process = try Fault.spawn(binary, ["backup", "-d", fixture.conninfo, "--repo", repo, "--jobs", "2", "--compress-level", "19", "--quiet", "--json"])
        try await Fault.waitForActiveCopy(fixture.conninfo, process: process)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        let entries = try FileManager.default.contentsOfDirectory(atPath: repo)
        #expect(entries.count == 1 && entries[0].hasPrefix(".") && entries[0].contains(".partial-"), "\(entries)")
        #expect(!Files.exists(repo + "/" + entries[0] + "/manifest.json"))
        #expect(throws: PGVaultError.self) { _ = try Archive.manifest(of: Archive.open(repo + "/" + entries[0])) }
        let listed = try Repository(path: repo).entries()
        #expect(listed.map(\.status) == ["incomplete"], "\(listed)")
        // The server ends the dead client's sessions; a new backup can take the lock.
        try await Fault.waitNoPgvaultSessions(fixture.conninfo, active: false)
    }

    @Test("SIGINT mid-backup cancels the server-side COPY, removes the partial archive and exits 130")
    func sigintMidBackup() async throws {
        let fixture = try await Fault.bigDatabase()
        let binary = try Shell.pgvault()
        let output = try TestScratch.path("sigint")
        let errPath = output + ".stderr"
        let process = try Fault.spawn(
            binary, ["backup", "-d", fixture.conninfo, "--output", output, "--jobs", "2", "--compress-level", "19", "--quiet", "--json"],
            stderr: errPath)
        try await Fault.waitForActiveCopy(fixture.conninfo, process: process)
        let sent = Date()
        kill(process.processIdentifier, SIGINT)
        let exited = await Fault.waitExit(process, seconds: 15)
        #expect(exited, "pgvault did not exit within 15 s of SIGINT")
        if !exited { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        #expect(process.terminationStatus == 130)
        #expect(Date().timeIntervalSince(sent) < 15)
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect(stderr.contains("interrupted by SIGINT"), "\(stderr)")
        // No pgvault statement still runs on the server.
        try await Fault.waitNoPgvaultSessions(fixture.conninfo, active: true, seconds: 5)
        #expect(!Files.exists(output))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (output as NSString).deletingLastPathComponent).filter { $0.contains((output as NSString).lastPathComponent + ".partial") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    // MARK: - A worker's connection terminated

    @Test("pg_terminate_backend of a backup worker fails the backup clearly; nothing is published")
    func terminateWorker() async throws {
        let fixture = try await Fault.bigDatabase()
        let binary = try Shell.pgvault()
        let output = try TestScratch.path("terminated")
        let errPath = output + ".stderr"
        let process = try Fault.spawn(
            binary, ["backup", "-d", fixture.conninfo, "--output", output, "--jobs", "2", "--compress-level", "19", "--quiet", "--json"],
            stderr: errPath)
        try await Fault.waitForActiveCopy(fixture.conninfo, process: process)
        let admin = try PGConnection(conninfo: fixture.conninfo)
        let killed = try admin.query("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE application_name LIKE 'pgvault backup worker%' AND state = 'active' AND query LIKE 'COPY%'
            """).scalar
        #expect(killed != "0")
        let exited = await Fault.waitExit(process, seconds: 30)
        #expect(exited)
        if !exited { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        #expect(process.terminationStatus == 2)
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect(stderr.contains("error: COPY of public.") && (stderr.contains("terminat") || stderr.contains("closed the connection")), "\(stderr)")
        #expect(!Files.exists(output))
        try await Fault.waitNoPgvaultSessions(fixture.conninfo, active: true, seconds: 10)
    }

    @Test("a backup worker's failed COPY keeps the server's error underneath, not a string of it")
    func terminatedWorkerKeepsServerError() async throws {
        let fixture = try await Fault.bigDatabase()
        var options = BackupOptions(conninfo: fixture.conninfo, output: try TestScratch.path("terminated-engine"))
        options.jobs = 2
        options.compressionLevel = 19
        let backup = Task { try await BackupEngine.run(options) }
        try await Fault.waitForActiveCopy(fixture.conninfo, process: nil)
        let killed = try PGConnection(conninfo: fixture.conninfo).query("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE application_name LIKE 'pgvault backup worker%' AND state = 'active' AND query LIKE 'COPY%'
            """).scalar
        #expect(killed != "0")
        let error = await #expect(throws: PGVaultError.self) { _ = try await backup.value }
        #expect(error?.message.hasPrefix("COPY of public.") == true, "\(String(describing: error))")
        #expect(error?.kind == .connection, "\(String(describing: error))")
        #expect(error?.serverError?.isConnectionFailure == true, "\(String(describing: error))")
        #expect(!Files.exists(options.output))
        try await Fault.waitNoPgvaultSessions(fixture.conninfo, active: true, seconds: 10)
    }

    // MARK: - Concurrent DDL

    @Test("DDL during a backup: ADD COLUMN and DROP/DETACH PARTITION are blocked; a new partition never enters the archive")
    func concurrentDDL() async throws {
        let fixture = try await Fault.bigDatabase()
        let output = try TestScratch.path("ddl")
        var options = BackupOptions(conninfo: fixture.conninfo, output: output)
        options.jobs = 1
        options.compressionLevel = 14
        options.tables = ["public.mid", "public.ev"]
        let backup = Task { try await BackupEngine.run(options) }
        try await Fault.waitForActiveCopy(fixture.conninfo, process: nil)

        let ddl = try PGConnection(conninfo: fixture.conninfo)
        try ddl.execute("SET lock_timeout = '300ms'")
        for sql in [
            "ALTER TABLE public.mid ADD COLUMN extra int",
            "ALTER TABLE public.ev ADD COLUMN extra int",
            "DROP TABLE public.ev_p1",
            "ALTER TABLE public.ev DETACH PARTITION public.ev_p2",
            "TRUNCATE public.mid",
        ] {
            do {
                try ddl.execute(sql)
                Issue.record("\(sql) was not blocked by the running backup")
            } catch let error as PGError {
                #expect(error.sqlState == PGError.lockNotAvailable, "\(sql): \(error)")
            }
        }
        // A new partition may or may not wait; either way the archive stays the snapshot's.
        var created = false
        do {
            try ddl.execute("CREATE TABLE public.ev_p3 PARTITION OF public.ev FOR VALUES FROM (200) TO (300)")
            try ddl.execute("INSERT INTO public.ev SELECT i, 'late' FROM generate_series(200, 299) i")
            created = true
        } catch let error as PGError {
            #expect(error.sqlState == PGError.lockNotAvailable, "\(error)")
        }
        let stillRunning = try PGConnection(conninfo: fixture.conninfo).query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgvault backup worker%' AND state = 'active'").scalar
        #expect(stillRunning != "0", "the backup ended before the DDL was tried; make the fixture bigger")
        let summary = try await backup.value
        let manifest = try Archive.manifest(of: Archive.open(output))
        #expect(!manifest.tables.contains { $0.name == "ev_p3" })
        #expect(manifest.tables.filter { $0.name.hasPrefix("ev_p") }.map(\.name).sorted() == ["ev_p1", "ev_p2"])
        #expect(manifest.tables.first { $0.name == "mid" }?.columns.map(\.name) == ["id", "payload"])
        #expect(manifest.units.filter { $0.table.hasPrefix("ev_") }.reduce(0) { $0 + $1.rows } == 200)
        #expect(summary.status == "complete")
        let report = try await Verifier.checkArchive(path: output, jobs: 2, progress: nil)
        #expect(report.ok, "\(report.failures)")
        if created { try ddl.execute("DROP TABLE public.ev_p3") }
        Files.removeTree(output)
    }

    // MARK: - Server stopped

    @Test("the server stops (immediate) mid-backup and mid-restore: clear errors; the restore resumes to exact counts")
    func serverStops() async throws {
        let binary = try Shell.pgvault()
        // The harness's clusters commit asynchronously (synchronous_commit = off):
        // an immediate stop could then lose the committed test data itself.
        let cluster = try TestCluster(major: TestServers.newest, settings: ["synchronous_commit": "on"], name: "pgvault-fault")
        defer { cluster.destroy() }
        let admin = try PGConnection(conninfo: cluster.conninfo())
        try admin.execute("CREATE DATABASE src TEMPLATE template0")
        let source = cluster.conninfo(database: "src")
        try Fault.populate(try PGConnection(conninfo: source), rows: 1_000_000)

        // Mid-backup.
        let output = try TestScratch.path("stopped")
        let errPath = output + ".stderr"
        let process = try Fault.spawn(
            binary, ["backup", "-d", source, "--output", output, "--jobs", "2", "--compress-level", "19", "--table", "public.big", "--quiet", "--json"],
            stderr: errPath)
        try await Fault.waitForActiveCopy(source, process: process)
        try cluster.stop(mode: "immediate")
        let exited = await Fault.waitExit(process, seconds: 30)
        #expect(exited)
        if !exited { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        #expect(process.terminationStatus == 2)
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect(stderr.contains("error:") && (stderr.contains("terminat") || stderr.contains("closed") || stderr.contains("connection")), "\(stderr)")
        #expect(!Files.exists(output))
        #expect(try FileManager.default.contentsOfDirectory(atPath: (output as NSString).deletingLastPathComponent).filter { $0.hasPrefix("." + (output as NSString).lastPathComponent) }.isEmpty)
        try cluster.start()

        // An archive with many units, then a restore stopped mid-load.
        let archive = try TestScratch.path("stop-archive")
        var options = BackupOptions(conninfo: source, output: archive)
        options.compressionLevel = 1
        options.splitBytes = 4 << 20
        options.tables = ["public.big"]
        options.dataOnly = false
        let summary = try await BackupEngine.run(options)
        #expect(summary.units > 8)
        defer { Files.removeTree(archive) }
        try PGConnection(conninfo: cluster.conninfo()).execute("CREATE DATABASE dst TEMPLATE template0")
        let target = cluster.conninfo(database: "dst")
        let restore = try Fault.spawn(
            binary, ["restore", archive, "-d", target, "--jobs", "2", "--quiet", "--json"], stderr: errPath,
            environment: [UnitLoader.testDelayVariable: "300"])
        let deadline = Date().addingTimeInterval(60)
        var journaled = 0
        while journaled < 2 && Date() < deadline && restore.isRunning {
            try await Task.sleep(for: .milliseconds(50))
            journaled = Int((try? PGConnection(conninfo: target).query("SELECT count(*) FROM pgvault_restore.units").scalar ?? "0") ?? "0") ?? 0
        }
        #expect(journaled >= 2)
        try cluster.stop(mode: "immediate")
        let restoreExited = await Fault.waitExit(restore, seconds: 30)
        #expect(restoreExited)
        if !restoreExited { kill(restore.processIdentifier, SIGKILL); restore.waitUntilExit() }
        #expect(restore.terminationStatus == 2)
        let restoreErr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect(restoreErr.contains("error"), "\(restoreErr)")
        try cluster.start()

        let resumed = try Shell.capture([binary, "restore", archive, "-d", target, "--jobs", "2", "--resume", "--quiet", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)\(resumed.stdout)")
        let src = try PGConnection(conninfo: source), dst = try PGConnection(conninfo: target)
        let digest = "SELECT count(*)::text || ' ' || sum(id)::text || ' ' || md5(string_agg(payload, '' ORDER BY id)) FROM public.big"
        #expect(try dst.query(digest).scalar == (try src.query(digest).scalar))
        #expect(try dst.query("SELECT to_regnamespace('pgvault_restore') IS NULL").scalar == "t")
    }

    // MARK: - Permissions

    @Test("archives (directory and tar), repositories and partial folders are owner-only; metrics are 0644 on purpose")
    func permissions() async throws {
        let db = try TestServers.database(TestServers.newest, prefix: "perm")
        try db.connect().execute("CREATE TABLE t AS SELECT i AS id, md5(i::text) AS v FROM generate_series(1, 1000) i")
        let old = umask(0o022)
        defer { umask(old) }
        let repoPath = try TestScratch.path("perm-repo")
        let repo = try Repository(path: repoPath)
        #expect(Fault.mode(repoPath) & 0o077 == 0, "repository \(String(Fault.mode(repoPath), radix: 8))")

        let dir = repo.newBackupPath(database: "perm")
        let summary = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: dir))
        #expect(Fault.mode(dir) & 0o077 == 0)
        for sub in FileManager.default.subpaths(atPath: dir) ?? [] {
            #expect(Fault.mode(dir + "/" + sub) & 0o077 == 0, "\(sub): \(String(Fault.mode(dir + "/" + sub), radix: 8))")
        }
        let tar = repoPath + "/perm.tar"
        _ = try await BackupEngine.run(BackupOptions(conninfo: db.conninfo, output: tar, form: .file))
        #expect(Fault.mode(tar) & 0o077 == 0, "tar \(String(Fault.mode(tar), radix: 8))")

        let metrics = repoPath + "/pgvault.prom"
        try MetricsFile.write(metrics, job: "backup", database: "perm", success: true, summary: summary)
        #expect(Fault.mode(metrics) == 0o644)
        Files.removeTree(repoPath)
    }
}

// MARK: - Fixtures and helpers

enum Fault {
    struct BigDatabase: Sendable { var conninfo: String }
    private static let cache = BigCache()

    actor BigCache {
        var task: Task<BigDatabase, Error>?
        func get() async throws -> BigDatabase {
            if let task { return try await task.value }
            let made = Task { () throws -> BigDatabase in
                let db = try TestServers.database(TestServers.newest, prefix: "fault")
                try populate(try db.connect(), rows: 1_000_000)
                return BigDatabase(conninfo: db.conninfo)
            }
            task = made
            return try await made.value
        }
    }

    /// A database on the shared server with `big` (1M rows, ~70 MB of COPY
    /// text: seconds to back up at zstd level 19), `mid` and a partitioned `ev`.
    static func bigDatabase() async throws -> BigDatabase { try await cache.get() }

    static func populate(_ conn: PGConnection, rows: Int) throws {
        try conn.execute("""
            CREATE TABLE public.big (id bigint PRIMARY KEY, payload text NOT NULL);
            INSERT INTO public.big SELECT i, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, \(rows)) i;
            CREATE TABLE public.mid (id bigint PRIMARY KEY, payload text NOT NULL);
            INSERT INTO public.mid SELECT i, md5(i::text) || md5((i * 3)::text) FROM generate_series(1, \(rows / 4)) i;
            CREATE TABLE public.ev (id int NOT NULL, note text) PARTITION BY RANGE (id);
            CREATE TABLE public.ev_p1 PARTITION OF public.ev FOR VALUES FROM (0) TO (100);
            CREATE TABLE public.ev_p2 PARTITION OF public.ev FOR VALUES FROM (100) TO (200);
            INSERT INTO public.ev SELECT i, 'n' || i FROM generate_series(0, 199) i;
            ANALYZE;
            """)
    }

    static func spawn(_ binary: String, _ arguments: [String], stderr: String? = nil, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        if let stderr {
            _ = FileManager.default.createFile(atPath: stderr, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// Waits until a pgvault backup worker runs a COPY on the server.
    static func waitForActiveCopy(_ conninfo: String, process: Process?, seconds: Double = 60) async throws {
        let conn = try PGConnection(conninfo: conninfo)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let process, !process.isRunning { throw HarnessError("pgvault exited (\(process.terminationStatus)) before its COPY started") }
            let n = try conn.query("""
                SELECT count(*) FROM pg_stat_activity
                WHERE application_name LIKE 'pgvault backup worker%' AND state = 'active' AND query LIKE 'COPY%'
                """).scalar
            if n != "0" {
                try await Task.sleep(for: .milliseconds(300))
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("no pgvault COPY started within \(seconds) s")
    }

    /// Waits until no pgvault session (or no active one) is left on the server.
    static func waitNoPgvaultSessions(_ conninfo: String, active: Bool, seconds: Double = 10) async throws {
        let conn = try PGConnection(conninfo: conninfo)
        let deadline = Date().addingTimeInterval(seconds)
        var left = ""
        while Date() < deadline {
            left = try conn.query("""
                SELECT coalesce(string_agg(application_name || ': ' || state || ': ' || left(query, 60), '; '), '') FROM pg_stat_activity
                WHERE application_name LIKE 'pgvault%' AND pid <> pg_backend_pid() \(active ? "AND state = 'active'" : "")
                """).scalar ?? ""
            if left.isEmpty { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("pgvault sessions still on the server after \(seconds) s: \(left)")
    }

    static func waitExit(_ process: Process, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { return false }
        process.waitUntilExit()
        return true
    }

    static func mode(_ path: String) -> Int {
        var st = stat()
        guard lstat(path, &st) == 0 else { return -1 }
        return Int(st.st_mode & 0o777)
    }
}
