import Foundation
import PGClient
@testable import PGVaultCore
import PGVaultGenerator
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The runbooks of docs/runbooks/ run as written: every `sh run` and `sql run`
/// block runs, in order, against a throwaway server, with the placeholders of
/// docs/runbooks/README.md replaced by the test's values. A runbook edit that
/// breaks a command fails here, naming the runbook, the block and the line.
@Suite("runbooks run as written", .serialized)
struct RunbookTests {
    /// Every runbook, with how many blocks it runs and how many it only shows.
    /// A block that loses or changes its mark changes a count: update it here
    /// on purpose, never to make the test pass.
    struct Expectation: Sendable {
        var run: Int
        var illustrative: Int
        /// The server archives WAL (archive_mode = on, archive_command empty
        /// until the runbook sets it); else a plain server with the chat database.
        var archiving = false
        /// Each cron line's command is one the runbook runs (`Runbook.cronProblems`).
        var cronIsRun = true
    }

    static let expected: [String: Expectation] = [
        "nightly-backup.md": Expectation(run: 5, illustrative: 3),
        "disaster-recovery.md": Expectation(run: 7, illustrative: 0),
        "cold-storage.md": Expectation(run: 6, illustrative: 1),
        "repository.md": Expectation(run: 8, illustrative: 1),
        "restore-drill.md": Expectation(run: 5, illustrative: 1),
        "s3.md": Expectation(run: 6, illustrative: 3),
        // Its cron lines monitor a server it has not set up yet where they stand.
        "wal-archiving.md": Expectation(run: 4, illustrative: 4, archiving: true, cronIsRun: false),
    ]

    static let folder = RepoPaths.root + "/docs/runbooks"

    static func load(_ name: String) throws -> Runbook {
        Runbook(name: name, text: try String(contentsOfFile: folder + "/" + name, encoding: .utf8))
    }

    // MARK: - The convention (no server)

    @Test("every fenced block of every runbook is marked, and each runbook has the expected run and illustrative blocks")
    func marked() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder)
            .filter { $0.hasSuffix(".md") && $0 != "README.md" }.sorted()
        #expect(names == Self.expected.keys.sorted(), "a runbook was added or removed: list it in RunbookTests.expected")
        for name in names {
            let book = try Self.load(name)
            #expect(book.problems.isEmpty, "\(book.problems.joined(separator: "\n"))")
            let want = try #require(Self.expected[name])
            #expect(book.count(.run) == want.run, "\(name): \(book.count(.run)) run blocks, expected \(want.run)")
            #expect(book.count(.illustrative) == want.illustrative, "\(name): \(book.count(.illustrative)) illustrative blocks, expected \(want.illustrative)")
            if want.cronIsRun {
                #expect(book.cronProblems.isEmpty, "\(book.cronProblems.joined(separator: "\n"))")
            }
        }
    }

    @Test("the harness finds unmarked blocks and indented commands, and stops at the failing line with the block named")
    func harness() throws {
        let text = """
            # A runbook

            ```sh
            pgvault list --repo /backups/chat
            ```

            ```sh runs
            true
            ```

            ```
            no info string
            ```

                pgvault verify /backups/chat/x

            ```sh run
            x=1
            test "$x" = 1
            sh -c 'exit 2'   # exits 2: on purpose
            ```

            ```sql run
            SELECT 1;
            ```

            ```sh run
            echo "$x" \\
                /backups/chat host=db1
            false
            echo never
            ```
            """
        let book = Runbook(name: "t.md", text: text)
        #expect(book.problems.count == 5, "\(book.problems)")
        #expect(book.problems.contains { $0.hasPrefix("t.md:3: a `sh` block is neither") })
        #expect(book.problems.contains { $0.hasPrefix("t.md:7: 'runs'") })
        #expect(book.problems.contains { $0.hasPrefix("t.md:7: a `sh` block is neither") })
        #expect(book.problems.contains { $0.hasPrefix("t.md:11: a fenced block without an info string") })
        #expect(book.problems.contains { $0.hasPrefix("t.md:15: an indented command") })
        #expect(book.count(.run) == 3 && book.count(.illustrative) == 0)

        let script = book.script(substitute: { $0.replacingOccurrences(of: "host=db1", with: "host=H") }, sqlConninfo: "dbname=x")
        #expect(script.components(separatedBy: "\n").count == book.lines.count + 2)
        #expect(script.contains("psql -X -q -v ON_ERROR_STOP=1 -d 'dbname=x' <<'PGVAULT_SQL_END'\nSELECT 1;\nPGVAULT_SQL_END"))
        // Without the sql block (no server here), the script stops at `false`, line 30.
        let shOnly = Runbook(name: "t.md", text: text.replacingOccurrences(of: "```sql run", with: "```text"))
        let out = try Self.bash(shOnly.script(substitute: { $0 }, sqlConninfo: ""))
        let failure = try #require(shOnly.failure(output: out.stdout, status: out.status))
        #expect(failure.hasPrefix("t.md:30 (block 6 line=27): PGVAULT-RUNBOOK-FAILED line=30 status=1"), "\(failure)")
        #expect(failure.contains("the runbook says: false"))
        #expect(failure.contains("1 /backups/chat host=db1"))
        #expect(!failure.contains("never"))

        // A cron line runs a command of a run block, or is reported.
        let cron = Runbook(name: "c.md", text: """
            # c

            ```sh run
            pgvault backup -d "host=db1" \\
                --repo /backups/chat
            ```

            ```cron illustrative
            MAILTO=ops
            30 2 * * *  pgvault backup -d "host=db1"   --repo /backups/chat
            30 2 * * * postgres pgvault backup -d "host=db1" --repo /backups/chat
            @daily pgvault backup -d "host=db1" --repo /backups/chat --jobs 4
            ```
            """)
        #expect(cron.cronProblems == ["c.md:12: the command of this cron line is not one of a `sh run` block: run the same command, word for word, in one"])

        // A command that should fail and does not is a failure too.
        let wrong = Runbook(name: "w.md", text: "# w\n\n```sh run\ntrue   # exits 2\n```\n")
        let wrongOut = try Self.bash(wrong.script(substitute: { $0 }, sqlConninfo: ""))
        #expect(wrong.failure(output: wrongOut.stdout, status: wrongOut.status)?.contains("UNEXPECTED-STATUS line=4 expected=2 status=0") == true)
        let right = Runbook(name: "r.md", text: "# r\n\n```sh run\nsh -c 'exit 3' \\\n  ignored   # exits 3\n```\n")
        let rightOut = try Self.bash(right.script(substitute: { $0 }, sqlConninfo: ""))
        #expect(right.failure(output: rightOut.stdout, status: rightOut.status) == nil, "\(rightOut.stdout)")
    }

    static func bash(_ script: String) throws -> Shell.Output {
        let dir = try TestScratch.directory("runbook-harness")
        try script.write(toFile: dir + "/script.sh", atomically: true, encoding: .utf8)
        return try Shell.capture(["/bin/bash", dir + "/script.sh"], workingDirectory: dir)
    }

    // MARK: - Each runbook against a throwaway server

    @Test("the runbook runs as written", arguments: expected.keys.sorted())
    func runs(name: String) async throws {
        let book = try Self.load(name)
        try #require(book.problems.isEmpty, "\(book.problems)")
        let want = try #require(Self.expected[name])
        let pgvault = try Shell.pgvault()
        let world = try await Blocking.run("runbook-world", { try RunbookWorld(runbook: name, archiving: want.archiving, pgvault: pgvault) })
        defer { world.destroy() }
        let script = book.script(substitute: world.substitute, sqlConninfo: world.superuser(database: "postgres"))
        let out = try await Blocking.run("runbook-\(name)", { try world.run(script) })
        if let failure = book.failure(output: out.stdout, status: out.status) {
            Issue.record(Comment(rawValue: failure))
        } else {
            // Every run block ran (none was skipped by the script's construction).
            let ran = out.stdout.split(separator: "\n").filter { $0.hasPrefix(Runbook.Marker.block + " ") }.count
            #expect(ran == want.run, "\(name): \(ran) of \(want.run) run blocks ran")
        }
    }
}

/// What a runbook runs against: a throwaway server standing for both `db1` and
/// `db2`, a scratch folder standing for /backups, /srv and /var, and (unless the
/// runbook is about archiving) the database `chat` with the migrations and the
/// generator's tiny data, and one backup of it in /backups/chat. The script runs
/// as the server's OS user when the tests run as root (initdb and pg_ctl refuse root).
final class RunbookWorld: Sendable {
    let cluster: TestCluster
    let scratch: String
    let pgvault: String
    /// s3.md: a bucket of the test S3 server standing for `s3://chat-backups`,
    /// and the environment that points pgvault at it.
    let s3: (bucket: String, environment: [String: String])?

    init(runbook: String, archiving: Bool, pgvault: String) throws {
        self.pgvault = pgvault
        if runbook == "s3.md" {
            let server = try TestS3Server.shared()
            s3 = (try server.makeBucket("chat-backups"), server.environment)
        } else {
            s3 = nil
        }
        let settings = archiving ? ["wal_level": "replica", "archive_mode": "on", "archive_command": "''"] : [:]
        cluster = try TestCluster(major: TestServers.newest, settings: settings, name: "pgvault-runbook")
        do {
            scratch = try TestScratch.directory("runbook-" + runbook.replacingOccurrences(of: ".md", with: ""))
            for dir in ["home", "tmp"] { try FileManager.default.createDirectory(atPath: scratch + "/" + dir, withIntermediateDirectories: true) }
            try giveToScriptUser(scratch)
            if !archiving {
                let admin = try PGConnection(conninfo: superuser(database: "postgres"))
                try admin.execute("CREATE DATABASE chat TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
                try Migrator(directory: RepoPaths.migrations).run(try PGConnection(conninfo: superuser(database: "chat")))
                _ = try DataGenerator(config: try GeneratorConfig.scale("tiny")).run(conninfo: superuser(database: "chat"))
                let backup = try run("""
                    mkdir -p \(scratch)/backups/chat
                    pgvault backup -d '\(superuser(database: "chat"))' --repo \(scratch)/backups/chat --json
                    """)
                guard backup.status == 0 else { throw HarnessError("the fixture's backup failed: \(backup.stdout)") }
            }
        } catch {
            cluster.destroy()
            throw error
        }
    }

    func superuser(database: String) -> String { cluster.conninfo(database: database) }

    /// The placeholders of docs/runbooks/README.md, replaced in `run` blocks.
    func substitute(_ line: String) -> String {
        var text = line
        if let s3 { text = text.replacingOccurrences(of: "s3://chat-backups/", with: "s3://\(s3.bucket)/") }
        for host in ["db1", "db2"] {
            text = text.replacingOccurrences(of: "host=\(host)", with: "host=\(cluster.socketDir) port=\(cluster.port)")
            text = text.replacingOccurrences(of: "-h \(host) ", with: "-h \(cluster.socketDir) -p \(cluster.port) ")
        }
        // An absolute path under /backups, /srv or /var, where a word starts.
        let paths = try! NSRegularExpression(pattern: #"(^|[\s"'=>(])(/backups|/srv|/var)(?=[/\s"';)]|$)"#)
        let whole = NSRange(text.startIndex..., in: text)
        return paths.stringByReplacingMatches(in: text, range: whole, withTemplate: "$1" + NSRegularExpression.escapedTemplate(for: scratch) + "$2")
    }

    /// Runs `script` with bash as the script user, in the repository's root
    /// (so `--source migrations` is the repository's), with a PATH of pgvault
    /// and the server's programs, and PGHOST pointing nowhere: a command that
    /// does not say which server it talks to fails instead of finding one.
    func run(_ script: String) throws -> Shell.Output {
        let file = scratch + "/script-\(UUID().uuidString.prefix(8)).sh"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        try giveToScriptUser(file)
        let environment = [
            "PATH": "\((pgvault as NSString).deletingLastPathComponent):\(cluster.binDir):/usr/local/bin:/usr/bin:/bin",
            "HOME": scratch + "/home", "TMPDIR": scratch + "/tmp", "LANG": "C.UTF-8",
            "PGHOST": "/nonexistent-runbook-server-say-host", "PGPORT": "1",
        ].merging(s3?.environment ?? [:]) { a, _ in a }
        let command = ["/usr/bin/env", "-i"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            + ["/usr/bin/timeout", "600", "/bin/bash", file]
        defer { stopServersStartedByScript() }
        return try Shell.capture(asScriptUser(command), workingDirectory: RepoPaths.root)
    }

    /// A server a runbook started itself (wal-archiving's demonstration) and
    /// left running because a command failed: stopped, wherever it is.
    func stopServersStartedByScript() {
        guard let walker = FileManager.default.enumerator(atPath: scratch) else { return }
        while let rel = walker.nextObject() as? String {
            guard rel.hasSuffix("/postmaster.pid") else { continue }
            let data = scratch + "/" + (rel as NSString).deletingLastPathComponent
            _ = try? Shell.capture(asScriptUser(["\(cluster.binDir)/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]))
        }
    }

    func asScriptUser(_ argv: [String]) -> [String] {
        getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + argv : argv
    }

    func giveToScriptUser(_ path: String) throws {
        guard getuid() == 0 else { return }
        try Shell.run(["/bin/chown", "-R", "postgres:", path])
    }

    func destroy() {
        cluster.destroy()
        try? FileManager.default.removeItem(atPath: scratch)
    }
}
