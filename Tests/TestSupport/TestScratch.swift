import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Scratch folders for tests, all under one folder per test process that is
/// removed when the process exits (scripts/reap-test-clusters.sh removes the
/// folder of a process that was killed).
public enum TestScratch {
    /// A new, empty folder whose name starts with `name`.
    public static func directory(_ name: String) throws -> String {
        let dir = root + "/\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static let root: String = {
        let path = "/tmp/pgvault-scratch-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try? "\(getpid())\n".write(toFile: path + "/owner.pid", atomically: true, encoding: .utf8)
        atexit { try? FileManager.default.removeItem(atPath: TestScratch.root) }
        return path
    }()
}
