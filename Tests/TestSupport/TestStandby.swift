import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#endif

/// A real streaming replica of a ``TestCluster``: `pg_basebackup -R` from the
/// primary into a fresh folder under /tmp, then started as a hot standby on
/// a socket of its own. Laid out like a cluster (`<base>/data`,
/// `<base>/owner.pid`), so ``TestCluster/reapOrphans(name:)`` removes one
/// a killed test process left.
public final class TestStandby: @unchecked Sendable {
    public let primary: TestCluster
    public let baseDir: String
    public let dataDir: String
    public let port: Int

    /// `settings` go to the standby's postgresql.auto.conf (for example
    /// `["max_standby_streaming_delay": "0"]`).
    public init(of primary: TestCluster, settings: [String: String] = [:]) throws {
        self.primary = primary
        var chars = Array("/tmp/pgvault-test-standby-\(primary.major)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&chars) else { throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))") }
        baseDir = String(cString: made)
        dataDir = baseDir + "/data"
        port = primary.port
        chmod(baseDir, 0o755)
        try "\(getpid())\n".write(toFile: baseDir + "/owner.pid", atomically: true, encoding: .utf8)
        if getuid() == 0, let pw = getpwnam("postgres") { chown(baseDir, pw.pointee.pw_uid, pw.pointee.pw_gid) }

        try primary.runAsServerUser([
            "\(primary.binDir)/pg_basebackup", "-h", primary.socketDir, "-p", "\(primary.port)", "-U", "postgres",
            "-D", dataDir, "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
        ])
        var conf = ["unix_socket_directories": "'\(baseDir)'", "hot_standby": "on"]
        for (k, v) in settings { conf[k] = v }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDir + "/postgresql.auto.conf"))
        handle.seekToEndOfFile()
        handle.write(Data(("\n" + conf.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "\n") + "\n").utf8))
        try handle.close()
        try serverCommand(["start", "-l", baseDir + "/server.log", "-w", "-t", "60"])
    }

    public func conninfo(database: String = "postgres") -> String {
        "host=\(baseDir) port=\(port) user=postgres dbname=\(database)"
    }

    /// Waits until the standby has replayed everything the primary had
    /// written when this was called.
    public func catchUp(database: String = "postgres", timeout: TimeInterval = 60) throws {
        let target = try PGConnection(conninfo: primary.conninfo(database: database))
            .query("SELECT pg_current_wal_lsn()::text").scalar ?? "0/0"
        let conn = try PGConnection(conninfo: conninfo(database: database))
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try conn.query("SELECT pg_last_wal_replay_lsn() >= '\(target)'::pg_lsn").scalar == "t" { return }
            usleep(50_000)
        }
        throw HarnessError("the standby did not replay up to \(target) in \(Int(timeout)) s; see \(baseDir)/server.log")
    }

    public func stop() throws { try serverCommand(["stop", "-m", "fast", "-w", "-t", "60"]) }

    public func destroy() {
        try? serverCommand(["stop", "-m", "immediate", "-w", "-t", "60"])
        try? FileManager.default.removeItem(atPath: baseDir)
    }

    public var serverLog: String { (try? String(contentsOfFile: baseDir + "/server.log", encoding: .utf8)) ?? "" }

    /// pg_ctl on the standby. A wheel's server gets the wheel's `lib/` first
    /// on the library path: its WAL receiver would otherwise load Debian's
    /// older libpq, which rejects the `primary_conninfo` that the wheel's
    /// pg_basebackup wrote.
    private func serverCommand(_ arguments: [String]) throws {
        let lib = (primary.binDir as NSString).deletingLastPathComponent + "/lib"
        let env = FileManager.default.fileExists(atPath: lib) ? ["/usr/bin/env", "LD_LIBRARY_PATH=\(lib)"] : []
        try primary.runAsServerUser(env + ["\(primary.binDir)/pg_ctl", "-D", dataDir] + arguments)
    }
}
