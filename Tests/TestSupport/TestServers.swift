import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL servers the tests run against: one throwaway cluster per major
/// version, started the first time a test needs it and stopped when the test
/// process exits (also when tests failed). Each test gets a fresh database.
///
/// The version matrix: every suite runs on the main major (17); the
/// version-sensitive tests (migrations up and down, backup → restore round trips,
/// verify, wal-status, the export, cold storage) run on every major under test,
/// with `arguments: TestServers.matrix`; the other parameterised tests run on
/// `TestServers.versions` (15 and the main one), as before 16 and 18 joined.
///
/// Environment:
/// - `PGVAULT_TEST_VERSIONS`: majors to test, comma-separated (default `15,16,17,18`).
///   `PGVAULT_TEST_VERSIONS=18` runs every test once, on 18.
/// - `PGVAULT_TEST_PG<major>_URL`: a connection string to an existing server of
///   that major; tests then create their databases there instead of starting one.
public enum TestServers {
    /// Every major under test (`PGVAULT_TEST_VERSIONS`), ascending.
    public static var matrix: [Int] {
        let text = ProcessInfo.processInfo.environment["PGVAULT_TEST_VERSIONS"] ?? "15,16,17,18"
        return Set(text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }).sorted()
    }

    /// The majors a parameterised test that is not about versions runs on:
    /// 15 (the oldest the tool supports) and the main one, when under test.
    public static var versions: [Int] {
        let main = newest
        return matrix.filter { $0 == 15 || $0 == main }
    }

    /// Whether all of `majors` are under test: for `.enabled(if:)`, so a test
    /// that needs a version left out of `PGVAULT_TEST_VERSIONS` shows as skipped.
    public static func testing(_ majors: Int...) -> Bool { majors.allSatisfy(matrix.contains) }

    /// The (source, target) pairs of `pairs` whose majors are both under test:
    /// the arguments of a cross-version test.
    public static func pairs(_ pairs: [(Int, Int)]) -> [(Int, Int)] {
        pairs.filter { matrix.contains($0.0) && matrix.contains($0.1) }
    }

    /// The main major, the one tests not about versions run on: 17 when under
    /// test, else the newest under test.
    public static var newest: Int {
        let majors = matrix
        return majors.contains(17) ? 17 : majors.max() ?? 17
    }

    /// A server of `major`, started on first use.
    public static func server(_ major: Int) throws -> TestServer {
        try registry.server(major)
    }

    /// A fresh, empty database on a server of `major`.
    public static func database(_ major: Int? = nil, prefix: String = "t") throws -> TestDatabase {
        let server = try server(major ?? newest)
        return TestDatabase(server: server, conninfo: try server.createDatabase(prefix: prefix))
    }
}

public struct TestDatabase: Sendable {
    public let server: TestServer
    public let conninfo: String
    public var major: Int { server.major }

    public func connect() throws -> PGConnection { try PGConnection(conninfo: conninfo) }

    /// Another fresh database on the same server (a restore target, say).
    public func sibling(prefix: String = "t") throws -> TestDatabase {
        TestDatabase(server: server, conninfo: try server.createDatabase(prefix: prefix))
    }
}

/// A server under test: our own cluster, or an external one named by URL.
public struct TestServer: Sendable {
    public let major: Int
    public let cluster: TestCluster?
    let adminConninfo: String

    public var binDir: String { cluster?.binDir ?? TestCluster.binDir(major: major) }

    public func createDatabase(prefix: String) throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try PGConnection(conninfo: adminConninfo)
        try admin.execute("CREATE DATABASE \(SQL.ident(name)) TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
        return conninfo(database: name)
    }

    /// Conninfo for one of this server's databases.
    public func conninfo(database: String) -> String {
        if let cluster { return cluster.conninfo(database: database) }
        if adminConninfo.contains("://"), var parts = URLComponents(string: adminConninfo) {
            parts.path = "/" + database
            return parts.string ?? adminConninfo
        }
        // In key=value form a later keyword overrides an earlier one.
        return adminConninfo + " dbname=\(database)"
    }
}

private let registry = Registry()

private final class Registry: @unchecked Sendable {
    private let lock = NSLock()
    private var servers: [Int: Result<TestServer, Error>] = [:]
    private var clusters: [TestCluster] = []

    func server(_ major: Int) throws -> TestServer {
        lock.lock()
        defer { lock.unlock() }
        if let existing = servers[major] { return try existing.get() }
        let result = Result<TestServer, Error> {
            if let url = ProcessInfo.processInfo.environment["PGVAULT_TEST_PG\(major)_URL"] {
                return TestServer(major: major, cluster: nil, adminConninfo: url)
            }
            if clusters.isEmpty {
                TestCluster.reapOrphans()
                _ = TestScratch.root  // its exit handler first, so it runs after ours (stopping uses Shell)
                atexit { registry.stopAll() }
            }
            let cluster = try TestCluster(major: major)
            clusters.append(cluster)
            return TestServer(major: major, cluster: cluster, adminConninfo: cluster.conninfo())
        }
        servers[major] = result
        return try result.get()
    }

    func stopAll() {
        lock.lock()
        let all = clusters
        clusters.removeAll()
        lock.unlock()
        for cluster in all { cluster.destroy() }
    }
}
