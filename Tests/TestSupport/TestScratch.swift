import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Scratch folders for tests, all under one folder per test process that is
/// removed when the process exits (scripts/reap-test-clusters.sh removes the
/// folder of a process that was killed). Every folder is 0755 on a 0755 root, so
/// the unprivileged `postgres` user a server runs as can reach what is in it.
public enum TestScratch {
    /// A new, empty folder whose name starts with `name`.
    public static func directory(_ name: String) throws -> String {
        let dir = root + "/\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        return dir
    }

    /// A path named `name` that does not exist yet, in a new folder of its own:
    /// where a test has pgvault create an archive, a repository or a file.
    public static func path(_ name: String) throws -> String {
        try directory(name) + "/" + name
    }

    /// A scratch folder a test removes itself when it is done (`defer { folder.remove() }`).
    public struct Folder: Sendable {
        public let path: String

        public init(_ name: String) throws {
            path = try TestScratch.directory(name)
        }

        public func remove() { try? FileManager.default.removeItem(atPath: path) }

        public subscript(_ name: String) -> String { path + "/" + name }

        /// The names in the folder, sorted.
        public var names: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
    }

    /// Created on first use. Test support that runs at exit (stopping the
    /// clusters runs pg_ctl through `Shell`, which uses a scratch folder) must
    /// touch this first, so that its exit handler runs before this one.
    static let root: String = {
        let path = "/tmp/pgvault-scratch-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
        try? "\(getpid())\n".write(toFile: path + "/owner.pid", atomically: true, encoding: .utf8)
        atexit { try? FileManager.default.removeItem(atPath: TestScratch.root) }
        return path
    }()
}
