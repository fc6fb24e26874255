import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM sent to the real binary at a known step: every command
/// exits 128 + signal, says it was interrupted (never the error the cancel
/// caused), publishes nothing and leaves no partial output; a second signal
/// quits at once and leaves none either.
@Suite("signals: interrupted commands publish nothing", .serialized)
struct SignalTests {
    @Test("backup: a signal during the COPYs → exit 128+signal, 'interrupted', status interrupted, the database named, nothing left",
          arguments: [SIGINT, SIGTERM])
    func backupDuringCopy(signal: Int32) async throws {
        let fixture = try await Fault.bigDatabase()
        let run = try Interrupting(["backup", "-d", fixture.conninfo, "--output", "{out}", "--jobs", "2", "--compress-level", "19", "--json"])
        try await Fault.waitForActiveCopy(fixture.conninfo, process: run.process)
        try await run.interrupt(signal)
        run.expectInterrupted(by: signal)
        #expect(!run.stderr.contains("canceling statement"), "\(run.stderr)")
        #expect(run.stdout.contains("\"status\":\"interrupted\""), "\(run.stdout)")
        let database = try #require(fixture.conninfo.split(separator: " ").first { $0.hasPrefix("dbname=") }).dropFirst(7)
        #expect(run.stdout.contains("\"database\":\"\(database)\""), "\(run.stdout)")
        run.expectNothingLeft()
        try await Fault.waitNoPgvaultSessions(fixture.conninfo, active: true, seconds: 5)
    }

    @Test("backup: a signal once the server's part is done (local work left) → interrupted, nothing published", arguments: [SIGINT, SIGTERM])
    func backupAfterServerWork(signal: Int32) async throws {
        let fixture = try await Fault.bigDatabase()
        let run = try Interrupting(
            ["backup", "-d", fixture.conninfo, "--output", "{out}", "--table", "public.ev", "--json"],
            environment: ["PGVAULT_TEST_BACKUP_PAUSE_AFTER_SERVER": "3"])
        try await run.waitForStderr("test pause")
        try await run.interrupt(signal)
        run.expectInterrupted(by: signal)
        #expect(!run.stdout.contains("\"status\":\"complete\""), "\(run.stdout)")
        run.expectNothingLeft()
    }

    @Test("backup: a second signal quits at once and still leaves no .partial folder")
    func backupSecondSignal() async throws {
        let fixture = try await Fault.bigDatabase()
        let run = try Interrupting(
            ["backup", "-d", fixture.conninfo, "--output", "{out}", "--table", "public.ev", "--json"],
            environment: ["PGVAULT_TEST_BACKUP_PAUSE_AFTER_SERVER": "30"])
        try await run.waitForStderr("test pause")
        try await run.interruptTwice()
        run.expectNothingLeft()
    }

    @Test("restore: a signal during the load → exit 143, 'interrupted' with --resume advice, no --timeline file; --resume then finishes")
    func restoreInterrupted() async throws {
        let fixture = try await Fault.bigDatabase()
        let binary = try Shell.pgvault()
        let archive = try Self.backup(fixture, binary: binary)
        let target = try TestServers.database(TestServers.newest, prefix: "sigrestore")
        let run = try Interrupting(["restore", archive, "-d", target.conninfo, "--jobs", "2", "--json", "--timeline", "{out}"])
        try await Self.waitForActive(target.conninfo, application: "pgvault restore%", query: "COPY%", process: run.process)
        try await run.interrupt(SIGTERM)
        run.expectInterrupted(by: SIGTERM)
        run.expectNothingLeft()
        #expect(run.stderr.contains("--resume"), "\(run.stderr)")
        #expect(run.stdout.contains("\"status\":\"interrupted\""), "\(run.stdout)")
        let resumed = try Shell.capture([binary, "restore", archive, "-d", target.conninfo, "--resume", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
    }

    @Test("verify: a signal while the restored tables are read → exit 130, 'interrupted', no report")
    func verifyInterrupted() async throws {
        let fixture = try await Fault.bigDatabase()
        let archive = try Self.backup(fixture, binary: try Shell.pgvault())
        let run = try Interrupting(["verify", archive, "-d", fixture.conninfo, "--jobs", "1", "--json"])
        try await Self.waitForActive(fixture.conninfo, application: "pgvault verify%", query: "COPY%", process: run.process)
        try await run.interrupt(SIGINT)
        run.expectInterrupted(by: SIGINT)
        // No report: with --json, only the object that says it was interrupted.
        #expect(!run.stdout.contains("findings") && run.stdout.contains(#""status":"interrupted""#), "\(run.stdout)")
    }

    @Test("export-user: a signal mid-package → exit 130, 'interrupted', no zip and no partial file")
    func exportUserInterrupted() async throws {
        let db = try ExportFixture.shared()
        let run = try Interrupting(
            ["export-user", "--dbname", db.conninfo, "--user", "alice@example.com", "--output", "{out}", "--json"],
            environment: ["PGVAULT_TEST_EXPORT_PAUSE_AFTER_FILES": "3", "PGVAULT_TEST_EXPORT_PAUSE_SECONDS": "2"])
        try await run.waitForStderr("test pause after 3 files")
        try await run.interrupt(SIGINT)
        run.expectInterrupted(by: SIGINT)
        #expect(run.stdout.contains("\"status\":\"interrupted\""), "\(run.stdout)")
        run.expectNothingLeft()
    }

    @Test("export-worker: one signal mid-export → exit 143, the request pending again (attempt not counted); two → quit at once, the request taken back after its lease; no zip, no partial either way",
          arguments: [1, 2])
    func exportWorkerInterrupted(signals: Int) async throws {
        let db = try ExportFixture.make()
        let conn = try db.connect()
        _ = try ExportQueue.enqueue(conn, userID: 1001)
        let folder = try TestScratch.path("worker")
        let run = try Interrupting(
            ["export-worker", "--dbname", db.conninfo, "--output-dir", folder, "--once", "--lease", "2", "--worker-id", "stopped"],
            environment: ["PGVAULT_TEST_EXPORT_PAUSE_AFTER_FILES": "3", "PGVAULT_TEST_EXPORT_PAUSE_SECONDS": signals == 1 ? "2" : "60"])
        try await run.waitForStderr("test pause after 3 files")
        if signals == 2 {
            try await run.interruptTwice()
            try await Task.sleep(for: .milliseconds(2500))
            #expect(try ExportQueue.reclaimExpired(conn).map(\.status) == ["pending"])
        } else {
            try await run.interrupt(SIGTERM)
            run.expectInterrupted(by: SIGTERM)
            #expect(try conn.query("SELECT status, attempts FROM data_export_requests").rows == [["pending", "0"]])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == [])
    }

    @Test("archive-partitions: a signal after a partition is dumped → exit 143, nothing detached, no cold archive, no staging",
          arguments: [1, 2])
    func archivePartitionsInterrupted(signals: Int) async throws {
        let db = try ColdStorageTests.generated(TestServers.newest)
        let conn = try db.connect()
        let before = try ColdStorageTests.state(conn)
        let repo = try TestScratch.path("cold")
        let run = try Interrupting(
            ["archive-partitions", "-d", db.conninfo, "--repo", repo, "--table", "messages", "--before", "2024-04-01",
             "--referencing-rows", "archive", "--json"],
            environment: ["PGVAULT_TEST_COLD_PAUSE_AFTER_DUMP": signals == 1 ? "2" : "60"])
        try await run.waitForStderr("test pause")
        if signals == 2 {
            try await run.interruptTwice()
        } else {
            try await run.interrupt(SIGTERM)
            run.expectInterrupted(by: SIGTERM)
        }
        // cold/<schema.table>/ may exist; nothing may be in it.
        let left = (FileManager.default.enumerator(atPath: repo)?.allObjects as? [String] ?? []).filter { $0.split(separator: "/").count > 2 }
        #expect(left.isEmpty, "left in the cold repository: \(left)")
        // The server has ended the command's sessions (and rolled back what they held).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline,
              try conn.query("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgvault archive-partitions%'").scalar != "0" {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try ColdStorageTests.state(conn) == before)
    }

    @Test("restore - and verify -: a signal while standard input is still being copied → exit 143, no copy left",
          arguments: ["restore", "verify"])
    func standardInputInterrupted(command: String) async throws {
        let tmp = try TestScratch.directory("stdin-tmp")
        let pipe = Pipe()
        let target = command == "restore" ? ["-d", "host=/nonexistent-pgvault-socket-dir dbname=never"] : []
        let run = try Interrupting([command, "-"] + target + ["--json"], environment: ["TMPDIR": tmp], input: pipe)
        defer { try? pipe.fileHandleForWriting.close() }
        // Some bytes, then a writer that stalls with the pipe still open.
        pipe.fileHandleForWriting.write(Data(repeating: 0x41, count: 100_000))
        let deadline = Date().addingTimeInterval(30)
        func copying() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).contains { $0.hasPrefix("pgvault-restore-stdin-") }
        }
        while !copying() && Date() < deadline && run.process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        try #require(copying(), "\(command) - made no copy of standard input: \(run.stderr)")
        try await run.interrupt(SIGTERM)
        run.expectInterrupted(by: SIGTERM)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "the copy of standard input was left behind")
    }

    /// A quick (zstd level 1) archive of the fault database.
    static func backup(_ fixture: Fault.BigDatabase, binary: String) throws -> String {
        let archive = try TestScratch.path("source")
        let made = try Shell.capture([binary, "backup", "-d", fixture.conninfo, "--output", archive, "--compress-level", "1", "--quiet"])
        try #require(made.status == 0, "\(made.stderr)")
        return archive
    }

    /// Waits until a session of `application` runs a statement like `query`.
    static func waitForActive(_ conninfo: String, application: String, query: String, process: Process, seconds: Double = 60) async throws {
        let conn = try PGConnection(conninfo: conninfo)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !process.isRunning { throw HarnessError("pgvault exited (\(process.terminationStatus)) before \(query) started") }
            let n = try conn.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 AND state = 'active' AND query LIKE $2",
                [application, query]).scalar
            if n != "0" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("no \(application) session ran \(query) within \(seconds) s")
    }
}

/// The pgvault binary run with `{out}` in its arguments replaced by a fresh
/// output path, its standard output and error in files, to be interrupted.
struct Interrupting {
    let process: Process
    let output: String
    private let outPath: String
    private let errPath: String

    init(_ arguments: [String], environment: [String: String] = [:], input: Pipe? = nil) throws {
        let binary = try Shell.pgvault()
        output = try TestScratch.path("sig")
        outPath = output + ".stdout"
        errPath = output + ".stderr"
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments.map { $0 == "{out}" ? output : $0 }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        for path in [outPath, errPath] { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        if let input { process.standardInput = input }
        try process.run()
    }

    var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// Polls standard error for `text` (not a fixed sleep: the machine may be slow).
    func waitForStderr(_ text: String, seconds: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if stderr.contains(text) { return }
            if !process.isRunning { throw HarnessError("pgvault exited (\(process.terminationStatus)) before printing '\(text)': \(stderr)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("pgvault did not print '\(text)' within \(seconds) s: \(stderr)")
    }

    /// Sends `signal` and waits (at most 30 s) for the process to end.
    func interrupt(_ signal: Int32) async throws {
        kill(process.processIdentifier, signal)
        let exited = await Fault.waitExit(process, seconds: 30)
        if !exited { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try #require(exited, "pgvault did not exit within 30 s of signal \(signal)")
    }

    /// SIGTERM, and once the first is acknowledged a second: the process must
    /// quit at once (well before the test pause it sits in ends), with 143.
    func interruptTwice(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        kill(process.processIdentifier, SIGTERM)
        try await waitForStderr("SIGTERM received")
        let sent = Date()
        try await interrupt(SIGTERM)
        #expect(Date().timeIntervalSince(sent) < 10, "the second signal did not quit at once", sourceLocation: sourceLocation)
        #expect(process.terminationStatus == 143, "\(stderr)", sourceLocation: sourceLocation)
    }

    func expectInterrupted(by signal: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(process.terminationReason == .exit && process.terminationStatus == 128 + signal,
                "exit \(process.terminationStatus): \(stderr)", sourceLocation: sourceLocation)
        #expect(stderr.contains("interrupted by \(name)"), "\(stderr)", sourceLocation: sourceLocation)
        #expect(!stderr.contains("error:"), "\(stderr)", sourceLocation: sourceLocation)
    }

    /// Nothing under the output's name and no `.partial` folder or file beside it.
    func expectNothingLeft(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!Files.exists(output), "something was published at \(output)", sourceLocation: sourceLocation)
        let name = (output as NSString).lastPathComponent
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: (output as NSString).deletingLastPathComponent)) ?? []).filter { $0.hasPrefix("." + name) }
        #expect(left.isEmpty, "left behind: \(left)", sourceLocation: sourceLocation)
    }
}
