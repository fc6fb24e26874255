import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// The catalog is read under the backup's snapshot and the tables locked
/// after it: a change in between is found by a fresh look at the catalog,
/// and nothing is published.
@Suite("backup: a catalog that changes while the backup starts", .serialized)
struct BackupDriftTests {
    @Test("a partition created between the catalog read and the locks: the backup fails naming it, and leaves no archive")
    func partitionAdded() async throws {
        let db = try TestServers.database()
        let conn = try db.connect()
        try conn.execute("""
            CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
            CREATE TABLE events_2025_01 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
            INSERT INTO events SELECT g, '2025-01-15' FROM generate_series(1, 1000) g;
            """)
        let dir = try TestScratch.directory("drift")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Shell.pgvault())
        process.arguments = ["backup", "--dbname", db.conninfo, "--output", dir + "/b", "--quiet"]
        var environment = ProcessInfo.processInfo.environment
        environment["PGVAULT_TEST_BACKUP_PAUSE_BEFORE_LOCK"] = "3"
        process.environment = environment
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Wait for the pause (the leader has read the catalog), then add a
        // partition: SHARE UPDATE EXCLUSIVE on the parent, no wait on the
        // leader's ACCESS SHARE.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let waiting = try conn.query("""
                SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgvault backup' AND state = 'idle in transaction'
                """).scalar
            if waiting == "1" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try conn.execute("CREATE TABLE events_2025_02 PARTITION OF events FOR VALUES FROM ('2025-02-01') TO ('2025-03-01')")
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(text.contains("partitions changed while the backup was starting") && text.contains("events_2025_02"), "\(text)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}
