import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#endif

/// Before a drill restores into a server the operator named (`--target`),
/// perhaps production's: is there room for it? The need is the larger of the
/// backup's logical size and the source database's size on that server
/// (`pg_database_size`, when it is there and the role may see it: it counts
/// the indexes too). The free space is the filesystem's under the data
/// directory, which only a server on this host (a unix socket, localhost)
/// lets us see, and only when the role may read `data_directory`.
enum SpaceCheck {
    enum Verdict: Equatable {
        case enough(String)
        case tooLittle(String)
        case unknown(String)
    }

    /// The pure rule: refuse when the free space is below the need.
    static func judge(need: Int64, free: Int64?, where path: String?, reason: String?) -> Verdict {
        guard let free, let path else {
            return .unknown("free disk space on the target server could not be checked (\(reason ?? "unknown")); the drill needs about \(Self.size(need))")
        }
        if free < need {
            return .tooLittle("the target server has \(Self.size(free)) free under \(path), and the drill needs about \(Self.size(need)) (the backup's logical size, or the source database's size if larger); nothing was created. Free space, or drill on a scratch cluster elsewhere (--scratch-cluster)")
        }
        return .enough("\(Self.size(free)) free under \(path), about \(Self.size(need)) needed")
    }

    static func size(_ bytes: Int64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

    static func run(admin: PGConnection, conninfo: String, logicalBytes: Int64, sourceDatabase: String) -> Verdict {
        var need = logicalBytes
        if let size = try? admin.query("SELECT pg_catalog.pg_database_size(oid)::text FROM pg_catalog.pg_database WHERE datname = $1", [sourceDatabase]).scalar.flatMap({ Int64($0) }) {
            need = max(need, size)
        }
        let hosts = (ConnInfo.parse(conninfo) ?? []).filter { $0.key == "host" || $0.key == "hostaddr" }.map(\.value)
        let host = hosts.last ?? ProcessInfo.processInfo.environment["PGHOST"] ?? ""
        guard host.isEmpty || host.hasPrefix("/") || ["localhost", "127.0.0.1", "::1"].contains(host) else {
            return judge(need: need, free: nil, where: nil, reason: "the server is on host \(host), not this one")
        }
        guard let dataDirectory = try? admin.query("SELECT pg_catalog.current_setting('data_directory')").scalar else {
            return judge(need: need, free: nil, where: nil, reason: "the role may not read data_directory: it needs pg_read_all_settings")
        }
        var fs = statvfs()
        guard statvfs(dataDirectory, &fs) == 0 else {
            return judge(need: need, free: nil, where: nil, reason: "\(dataDirectory) is not reachable from here: \(String(cString: strerror(errno)))")
        }
        return judge(need: need, free: Int64(fs.f_bavail) * Int64(fs.f_frsize), where: dataDirectory, reason: nil)
    }
}
