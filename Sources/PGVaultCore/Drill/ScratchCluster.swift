import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#endif

/// The throwaway PostgreSQL of `drill --scratch-cluster`: `initdb` in a
/// fresh folder `/tmp/pgvault-drill-XXXXXX`, listening only on a unix socket
/// in that folder, so neither its port nor its socket can collide with a
/// running server (the socket's path is the folder's, made by mkdtemp; no
/// TCP port is opened). Stopped and removed by ``destroy()``.
///
/// initdb and postgres refuse to run as root: pgvault running as root runs
/// them as `user` (Debian's `postgres`) through runuser, in a folder given
/// to that user. Trust authentication is safe here because only the
/// folder's owner (and root) can reach the socket.
///
/// The folder holds `owner`: the drill's pid and host. A drill killed with
/// SIGKILL leaves its cluster running; the next drill stops and removes
/// every cluster whose owner is no longer a running pgvault
/// (``reapOrphans()``).
public struct ScratchCluster: Sendable {
    public let folder: String
    public let binDir: String
    public let version: String
    let user: String?
    static let folderPrefix = "pgvault-drill-"
    static let port = 5432

    var dataDir: String { folder + "/data" }

    /// Connection string of one of its databases.
    public func conninfo(database: String) -> String {
        "host=\(folder) port=\(Self.port) user=postgres dbname=\(ConnInfo.quoteValue(database))"
    }

    /// Finds the server programs of `major` (or the lowest newer one),
    /// initdb's a cluster with `encoding` and starts it.
    public static func start(major: Int, encoding: String, pgBin: String?, user: String?, keep: Bool) throws -> ScratchCluster {
        let (binDir, version) = try locate(major: major, pgBin: pgBin)
        var template = Array("/tmp/\(folderPrefix)XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw PGVaultError.io("cannot create the scratch cluster's folder under /tmp: \(String(cString: strerror(errno))); free space in /tmp", underlying: SystemCallError(code: errno))
        }
        let cluster = ScratchCluster(folder: String(cString: made), binDir: binDir, version: version, user: getuid() == 0 ? (user ?? "postgres") : nil)
        do {
            try cluster.markOwner(keep: keep)
            try cluster.giveToUser()
            try cluster.run("initdb", ["-D", cluster.dataDir, "-U", "postgres", "-A", "trust", "-E", encoding, "--locale=C", "--no-sync", "--no-instructions"])
            let settings = [
                "listen_addresses = ''", "unix_socket_directories = '\(cluster.folder)'", "port = \(port)",
                "max_wal_size = '2GB'", "timezone = 'UTC'", "log_min_messages = warning",
            ]
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster.dataDir + "/postgresql.auto.conf"))
            handle.seekToEndOfFile()
            handle.write(Data(("\n" + settings.joined(separator: "\n") + "\n").utf8))
            try handle.close()
            try cluster.run("pg_ctl", ["-D", cluster.dataDir, "-l", cluster.folder + "/server.log", "-w", "-t", "120", "start"])
        } catch {
            cluster.destroy()
            throw error
        }
        return cluster
    }

    /// Stops the server and removes the folder.
    public func destroy() {
        Self.remove(folder)
    }

    /// Stops the postmaster of the cluster in `folder`, if one runs, by a
    /// signal (no pg_ctl: this also runs after a cancellation, which would
    /// stop a pg_ctl at once): SIGINT, a fast shutdown; SIGQUIT, an
    /// immediate one, after 30 s; SIGKILL after 10 more. Then removes the
    /// folder. Its data is thrown away anyway.
    static func remove(_ folder: String) {
        if let pid = (try? String(contentsOfFile: folder + "/data/postmaster.pid", encoding: .utf8))?
            .split(separator: "\n").first.flatMap({ pid_t($0) }), pid > 0 {
            for (sig, tenths) in [(SIGINT, 300), (SIGQUIT, 100), (SIGKILL, 50)] where DrillOwner.running(pid) {
                kill(pid, sig)
                for _ in 0..<tenths where DrillOwner.running(pid) { usleep(100_000) }
            }
        }
        Files.removeTree(folder)
    }

    /// The server's programs: the folders pg_dump is looked for in
    /// (``PGTools/candidateFolders(major:pgBin:)``), one holding initdb,
    /// pg_ctl and postgres of exactly `major`, else the lowest newer one (a
    /// newer server restores an older backup; an older one may not).
    static func locate(major: Int, pgBin: String?) throws -> (binDir: String, version: String) {
        var found: [(dir: String, major: Int, version: String)] = []
        var seen = Set<String>()
        for dir in PGTools.candidateFolders(major: major, pgBin: pgBin) where seen.insert(PGTools.realPath(dir + "/postgres")).inserted {
            guard ["initdb", "pg_ctl", "postgres"].allSatisfy({ FileManager.default.isExecutableFile(atPath: dir + "/" + $0) }),
                  let (m, text) = PGTools.version(of: dir + "/postgres") else { continue }
            if m == major { return (dir, text) }
            found.append((dir, m, text))
        }
        if let best = found.filter({ $0.major > major }).min(by: { $0.major < $1.major }) { return (best.dir, best.version) }
        let have = found.map { "\($0.version) (\($0.dir))" }.joined(separator: ", ")
        throw PGVaultError.io("the backup was taken from PostgreSQL \(major), and no PostgreSQL server of version \(major) or newer (initdb, pg_ctl and postgres in one folder) was found\(pgBin.map { " in \($0)" } ?? "")\(have.isEmpty ? "" : "; found \(have)"). Install PostgreSQL \(major)'s server programs, or pass --pg-bin DIR (or use --target CONN).")
    }

    /// Runs one of the server's programs, as `user` when we are root.
    @discardableResult
    func run(_ program: String, _ arguments: [String]) throws -> Subprocess.Result {
        let argv = [binDir + "/" + program] + arguments
        let result = try Subprocess.run(user.map { ["/usr/sbin/runuser", "-u", $0, "--"] + argv } ?? argv)
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)).map { "; server log: " + $0.suffix(600) } ?? ""
            throw PGVaultError.io("the scratch cluster's \(program) failed (exit \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))\(log)")
        }
        return result
    }

    private func giveToUser() throws {
        guard let user else { return }
        guard let pw = getpwnam(user) else {
            throw PGVaultError.usage("pgvault runs as root, and PostgreSQL's server refuses to: it runs the scratch cluster as '\(user)', which does not exist. Create that user, pass --scratch-user USER, or run pgvault as another user")
        }
        guard chown(folder, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
            throw PGVaultError.io("cannot give \(folder) to '\(user)': \(String(cString: strerror(errno)))", underlying: SystemCallError(code: errno))
        }
    }

    // MARK: - Orphans

    /// `<pid> <host>` of the drill that owns the folder (`keep` for a cluster
    /// kept with --keep, which no drill removes).
    private func markOwner(keep: Bool) throws {
        let text = keep ? "keep\n" : "\(getpid()) \(DrillOwner.host)\n"
        guard FileManager.default.createFile(atPath: folder + "/owner", contents: Data(text.utf8)) else {
            throw PGVaultError.io("cannot write \(folder)/owner; check /tmp")
        }
    }

    /// Stops and removes the scratch clusters of drills that died (SIGKILL,
    /// a reboot): owned by this host, by a process that is no longer a
    /// running pgvault. Returns the folders removed.
    public static func reapOrphans() -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") else { return [] }
        var removed: [String] = []
        for entry in entries where entry.hasPrefix(folderPrefix) {
            let folder = "/tmp/" + entry
            guard let text = try? String(contentsOfFile: folder + "/owner", encoding: .utf8),
                  let owner = DrillOwner(text), !owner.isAlive else { continue }
            remove(folder)
            if !Files.exists(folder) { removed.append(folder) }
        }
        return removed
    }
}

/// Who made a scratch cluster or a drill database: a pid on a host.
struct DrillOwner: Equatable {
    var pid: pid_t
    var host: String

    static var host: String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return "unknown" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Parses `<pid> <host>`; nil for anything else (a kept cluster, `keep`).
    init?(_ text: String) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count == 2, let pid = pid_t(words[0]) else { return nil }
        self.pid = pid
        host = String(words[1])
    }

    /// The process exists and is not a zombie (a container's init may never
    /// reap the orphaned postmaster of a killed drill).
    static func running(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.range(of: ") ", options: .backwards) else { return true }
        return !stat[close.upperBound...].hasPrefix("Z")
    }

    /// A drill on another host may be running: only this host's are judged.
    /// The pid must be a running pgvault, not a process that took its number.
    var isAlive: Bool {
        guard host == Self.host else { return true }
        guard Self.running(pid) else { return false }
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        return String(decoding: cmdline, as: UTF8.self).contains("pgvault")
    }
}
