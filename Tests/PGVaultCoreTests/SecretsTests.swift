import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing
import ZstdStream

#if canImport(Glibc)
import Glibc
#endif

/// Passwords given through a URI, PGPASSWORD or a .pgpass file, against a
/// server that demands them (scram-sha-256): they never appear in standard
/// output or error, JSON, the manifest, the metrics file, the process titles of
/// pgvault and of its pg_dump child, error messages or the server log.
@Suite("secrets: passwords never leak", .serialized)
struct SecretsTests {
    static let password = "Pw-9qZ7xK2-leak-canary"

    @Test("URI, PGPASSWORD and .pgpass: the password is nowhere in outputs, files, process titles or logs")
    func passwordsNeverLeak() async throws {
        let binary = try Shell.pgvault()
        let cluster = try TestCluster(major: TestServers.newest, name: "pgvault-fault")
        defer { cluster.destroy() }
        let admin = try PGConnection(conninfo: cluster.conninfo())
        try admin.execute("SET password_encryption = 'scram-sha-256'")
        try admin.execute("CREATE ROLE vaulter LOGIN SUPERUSER PASSWORD '\(Self.password)'")
        try admin.execute("CREATE DATABASE secdb OWNER vaulter TEMPLATE template0")
        try PGConnection(conninfo: cluster.conninfo(database: "secdb")).execute(
            "CREATE TABLE public.t AS SELECT i AS id, md5(i::text) AS v FROM generate_series(1, 200000) i")
        // From here on the server logs every statement and connection, and asks vaulter for its password.
        try admin.execute("ALTER SYSTEM SET log_statement = 'all'")
        try admin.execute("ALTER SYSTEM SET log_connections = 'on'")
        try admin.execute("ALTER SYSTEM SET log_min_messages = 'info'")
        let hba = cluster.dataDir + "/pg_hba.conf"
        try "local all postgres trust\nlocal all all scram-sha-256\n".write(toFile: hba, atomically: false, encoding: .utf8)
        try cluster.runAsServerUser(["\(cluster.binDir)/pg_ctl", "-D", cluster.dataDir, "reload"])
        try await Task.sleep(for: .milliseconds(500))

        let work = try TestScratch.directory("secrets")
        try FileManager.default.createDirectory(atPath: work + "/bin", withIntermediateDirectories: true)
        defer { Files.removeTree(work) }
        // A pg_dump wrapper records the command line pgvault gives it.
        let argsLog = work + "/pg_dump.args"
        try """
            #!/bin/sh
            printf '%s\\n' "$@" >> \(argsLog)
            exec \(cluster.binDir)/pg_dump "$@"
            """.write(toFile: work + "/bin/pg_dump", atomically: false, encoding: .utf8)
        chmod(work + "/bin/pg_dump", 0o755)
        // pg_restore (which writes the schema scripts from pg_dump's file, with no database) as it is.
        try FileManager.default.createSymbolicLink(atPath: work + "/bin/pg_restore", withDestinationPath: cluster.binDir + "/pg_restore")

        let plain = "host=\(cluster.socketDir) port=\(cluster.port) user=vaulter dbname=secdb"
        let uri = "postgresql://vaulter:\(Self.password)@/secdb?host=\(cluster.socketDir)&port=\(cluster.port)"
        let pgpass = work + "/pgpass"
        try "*:*:*:vaulter:\(Self.password)\n".write(toFile: pgpass, atomically: false, encoding: .utf8)
        chmod(pgpass, 0o600)
        var baseEnv = ProcessInfo.processInfo.environment
        for key in ["PGPASSWORD", "PGPASSFILE", "PGUSER", "PGHOST", "PGDATABASE"] { baseEnv.removeValue(forKey: key) }
        baseEnv["PGPASSFILE"] = work + "/no-such-pgpass"

        let ways: [(String, String, [String: String])] = [
            ("uri", uri, [:]),
            ("pgpassword", plain, ["PGPASSWORD": Self.password]),
            ("pgpass", plain, ["PGPASSFILE": pgpass]),
        ]
        var haystack: [(String, String)] = []
        for (label, conninfo, extra) in ways {
            var env = baseEnv
            for (k, v) in extra { env[k] = v }
            let output = work + "/archive-\(label)"
            let metrics = work + "/\(label).prom"
            // A backup, with the title of pgvault (and of any child) sampled while it runs.
            let titles = TitleSampler()
            let runEnv = env
            let backup = try await titles.sampling {
                try Shell.capture([
                    binary, "backup", "-d", conninfo, "--output", output, "--json", "--quiet", "--jobs", "2",
                    "--compress-level", "12", "--metrics-file", metrics, "--pg-bin", work + "/bin",
                ], environment: runEnv)
            }
            #expect(backup.status == 0, "\(label): \(backup.stderr)")
            #expect(titles.samples.contains { $0.contains(" backup ") }, "\(label): pgvault's title was never seen")
            haystack += [("\(label) backup stdout", backup.stdout), ("\(label) backup stderr", backup.stderr),
                         ("\(label) process titles", (label == "uri" ? titles.settledSamples : titles.samples).joined(separator: "\n"))]
            if label == "uri" {
                // Once parsed, the URI in pgvault's own command line is replaced by its redacted form.
                #expect(titles.settledSamples.contains { $0.contains(" backup -d user=vaulter dbname=secdb") }, "\(titles.settledSamples)")
            }
            haystack.append(("\(label) manifest", (try? String(contentsOfFile: output + "/manifest.json", encoding: .utf8)) ?? ""))
            haystack.append(("\(label) metrics", (try? String(contentsOfFile: metrics, encoding: .utf8)) ?? ""))
            for member in (FileManager.default.subpaths(atPath: output) ?? []) where member.hasSuffix(".zst") {
                let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output + "/" + member)))
                if member.hasPrefix("schema/"), let text = try? ZstdText.decode(raw) { haystack.append(("\(label) \(member)", text)) }
            }
            // A failing backup (no such table), and a failing one to a used name.
            let failing = try Shell.capture([
                binary, "backup", "-d", conninfo, "--output", output + "-bad", "--table", "no_such_table", "--json",
                "--metrics-file", metrics, "--pg-bin", work + "/bin",
            ], environment: env)
            #expect(failing.status == 2, "\(label)")
            haystack += [("\(label) failing stdout", failing.stdout), ("\(label) failing stderr", failing.stderr),
                         ("\(label) failing metrics", (try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "")]
            // verify --json (offline and against the database).
            let verify = try Shell.capture([binary, "verify", output, "--json"], environment: env)
            #expect(verify.status == 0, "\(label): \(verify.stderr)")
            haystack += [("\(label) verify stdout", verify.stdout), ("\(label) verify stderr", verify.stderr)]
            // list-backups of a repository, and an error from an unreachable database.
            let wrongDB = conninfo.replacingOccurrences(of: "secdb", with: "nodb")
            let unreachable = try Shell.capture([binary, "backup", "-d", wrongDB, "--output", output + "-x", "--json"], environment: env)
            #expect(unreachable.status != 0)
            haystack += [("\(label) unreachable", unreachable.stdout + unreachable.stderr)]
        }

        // A wrong password: a clear authentication error, without the password given.
        let wrong = "Wrong-\(Self.password)-guess"
        let denied = try Shell.capture([
            binary, "backup", "-d", "postgresql://vaulter:\(wrong)@/secdb?host=\(cluster.socketDir)&port=\(cluster.port)",
            "--output", work + "/denied", "--json",
        ], environment: baseEnv)
        #expect(denied.status == 2)
        #expect(denied.stderr.contains("password authentication failed"), "\(denied.stderr)")
        #expect(!(denied.stdout + denied.stderr).contains(wrong))
        #expect(!Files.exists(work + "/denied"))

        // pg_dump got its connection without the password.
        let pgDumpArgs = (try? String(contentsOfFile: argsLog, encoding: .utf8)) ?? ""
        #expect(pgDumpArgs.contains("--dbname="), "the pg_dump wrapper was not used: \(pgDumpArgs)")
        haystack.append(("pg_dump command lines", pgDumpArgs))
        let log = cluster.serverLog
        #expect(log.contains("vaulter"), "the server log holds no sign of the runs")
        haystack.append(("server log", log))

        for (place, text) in haystack {
            #expect(!text.contains(Self.password), "the password appears in \(place)")
            #expect(!text.contains(wrong), "the wrong password appears in \(place)")
        }
    }
}

/// Reads /proc/<pid>/cmdline of every pgvault process (backup, verify,
/// export-worker, list, repo) and of its children,
/// every few milliseconds, while `body` runs.
final class TitleSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var seen = Set<String>()
    private var late = Set<String>()
    /// Every title seen.
    var samples: [String] { lock.withLock { Array(seen) } }
    /// Titles seen from 0.5 s after the start: a password typed on the command
    /// line is overwritten once the arguments are parsed, but is visible until then.
    var settledSamples: [String] { lock.withLock { Array(late) } }

    func sampling<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let done = Flag()
        let started = Date()
        let sampler = Thread { [self] in
            while !done.isSet {
                let settled = Date().timeIntervalSince(started) > 0.5
                for title in Self.titles() {
                    lock.withLock {
                        seen.insert(title)
                        if settled { late.insert(title) }
                    }
                }
                usleep(2000)
            }
        }
        sampler.start()
        defer { done.set() }
        return try await Blocking.run("body") { try body() }
    }

    /// Command lines of pgvault processes and their descendants (pg_dump).
    static func titles() -> [String] {
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var parents: [String: String] = [:], lines: [String: String] = [:]
        for pid in pids where pid.first?.isNumber == true {
            guard let raw = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")), !raw.isEmpty else { continue }
            lines[pid] = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
               let close = stat.lastIndex(of: ")") {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 1 { parents[pid] = String(fields[1]) }
            }
        }
        let commands = ["pgvault backup", "pgvault verify", "pgvault export-worker", "pgvault list", "pgvault repo"]
        let roots = Set(lines.filter { line in commands.contains { line.value.contains($0) } }.keys)
        return lines.filter { roots.contains($0.key) || roots.contains(parents[$0.key] ?? "") }.map(\.value)
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }
}

enum ZstdText {
    static func decode(_ bytes: [UInt8]) throws -> String {
        String(decoding: try ZstdDecompressor.decompress(bytes: bytes, maxOutputBytes: 64 << 20), as: UTF8.self)
    }
}
