import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// A backup with --repo is named in PGVaultCore, from the database the
/// leader connection reports: the CLI opens no connection of its own for it.
@Suite("repository naming by the backup engine")
struct RepositoryNamingTests {
    @Test("a backup into a repository is named <database>-<start time to the millisecond>, claimed like any other")
    func namedByTheEngine() async throws {
        let db = try TestServers.database(prefix: "naming")
        let conn = try db.connect()
        try conn.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)")
        let database = try #require(try conn.query("SELECT current_database()").scalar)
        let repo = try TestScratch.directory("naming") + "/repo"
        var options = BackupOptions(conninfo: db.conninfo, output: "", form: .file)
        options.repository = repo
        let before = Date()
        let first = try await BackupEngine.run(options)
        let second = try await BackupEngine.run(options)
        let after = Date()
        for summary in [first, second] {
            let name = (summary.archive as NSString).lastPathComponent
            #expect((summary.archive as NSString).deletingLastPathComponent == repo)
            #expect(name.hasPrefix(database + "-") && name.hasSuffix(".tar"), "\(name)")
            let stamp = String(name.dropFirst(database.count + 1).prefix("yyyyMMddTHHmmss.SSSZ".count))
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
            let at = try #require(f.date(from: stamp), "\(name)")
            #expect(at >= before.addingTimeInterval(-0.001) && at <= after, "\(name)")
        }
        #expect(first.archive != second.archive)
        // Only the two archives: no staging folder left, nothing else made.
        let names = try FileManager.default.contentsOfDirectory(atPath: repo).sorted()
        #expect(names == [first.archive, second.archive].map { ($0 as NSString).lastPathComponent }.sorted())
    }

    @Test("a repository that cannot be made fails before connecting, and leaves nothing")
    func badRepository() async throws {
        let scratch = try TestScratch.directory("naming-bad")
        try Data().write(to: URL(fileURLWithPath: scratch + "/file"))
        var options = BackupOptions(conninfo: "host=/nonexistent-pgvault-socket-dir dbname=chat connect_timeout=2", output: "")
        options.repository = scratch + "/file/repo"
        // A repository error, not the connection's: the folder is checked first.
        let error = await #expect(throws: PGVaultError.self) { _ = try await BackupEngine.run(options) }
        #expect(error?.kind == .io && error?.message.contains("cannot create repository") == true, "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch) == ["file"])
    }
}
