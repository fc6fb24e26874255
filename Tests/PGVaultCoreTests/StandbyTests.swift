import Foundation
import PGClient
@testable import PGVaultCore
import Support
import Testing
import TestSupport

/// Backups read from a real hot standby (`pg_basebackup -R`, streaming)
/// while its primary keeps writing, as a nightly backup that spares the
/// primary does; and what a conflict with recovery does to one.
@Suite("backups from a hot standby", .serialized)
struct StandbyTests {
    /// A primary of its own (the shared servers have no replica), with
    /// orders of three lines each, written one order per transaction.
    static func primary(_ major: Int, rows: Int) throws -> TestCluster {
        let primary = try TestCluster(major: major, name: "pgvault-test-primary")
        try PGConnection(conninfo: primary.conninfo()).execute("""
            CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL);
            CREATE TABLE lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders, n int NOT NULL);
            INSERT INTO orders SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, \(rows)) g;
            INSERT INTO lines (order_id, n) SELECT o, k FROM generate_series(1, \(rows)) o, generate_series(1, 3) k;
            """)
        return primary
    }

    /// Writes one order and its three lines per transaction, on its own
    /// thread, until stopped; returns how many it wrote.
    final class Writer: @unchecked Sendable {
        private let stopFlag = Locked(false)
        private let done = DispatchSemaphore(value: 0)
        private let written = Locked(0)
        private let failure = Locked<String?>(nil)

        init(conninfo: String, from first: Int) {
            Thread.detachNewThread { [self] in
                defer { done.signal() }
                do {
                    let conn = try PGConnection(conninfo: conninfo)
                    var id = first
                    while !stopFlag.value {
                        try conn.execute("""
                            BEGIN;
                            INSERT INTO orders VALUES (\(id), 'new');
                            INSERT INTO lines (order_id, n) VALUES (\(id), 1), (\(id), 2), (\(id), 3);
                            COMMIT;
                            """)
                        id += 1
                        written.withLock { $0 += 1 }
                    }
                } catch {
                    failure.withLock { $0 = "\(error)" }
                }
            }
        }

        func stop() throws -> Int {
            stopFlag.withLock { $0 = true }
            done.wait()
            if let failure = failure.value { throw HarnessError("the writer failed: \(failure)") }
            return written.value
        }
    }

    @Test("backup -d STANDBY while the primary writes: one consistent snapshot across jobs, the manifest says standby and its replay position; it restores with its keys whole", arguments: TestServers.versions)
    func consistentWhilePrimaryWrites(major: Int) async throws {
        let primary = try Self.primary(major, rows: 100_000)
        defer { primary.destroy() }
        let standby = try TestStandby(of: primary)
        defer { standby.destroy() }
        try standby.catchUp()

        let writer = Writer(conninfo: primary.conninfo(), from: 1_000_000)
        try await Task.sleep(for: .milliseconds(300))
        let archive = try TestScratch.path("standby-backup-\(major)")
        let out = try Shell.capture([try Shell.pgvault(), "backup", "-d", standby.conninfo(), "--output", archive, "--jobs", "2", "--split-size", "1", "--json"])
        let written = try writer.stop()
        try #require(out.status == 0, "\(out.stderr)")
        #expect(written > 0, "the primary wrote while the backup ran")

        let summary = try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        let recorded = try #require(summary["standby"] as? [String: Any], "\(summary)")
        #expect((recorded["replayLSN"] as? String ?? "").contains("/") && recorded["replayLSN"] as? String == summary["walLSN"] as? String)
        let manifest = try Manifest.decode(Array(try Data(contentsOf: URL(fileURLWithPath: archive + "/manifest.json"))), source: archive)
        #expect(manifest.snapshot.standby?.replayLSN == recorded["replayLSN"] as? String)
        #expect(manifest.snapshot.standby?.lastReplayedCommit != nil)
        #expect(manifest.snapshot.walSegment == nil, "a standby's position is no WAL file of its own")
        #expect(manifest.units.filter { $0.table == "lines" }.count > 1, "lines is read by more than one job")

        // Restored: every order has its three lines, and the keys hold.
        let target = try TestServers.database(major, prefix: "fromstandby")
        let restored = try Shell.capture([try Shell.pgvault(), "restore", archive, "-d", target.conninfo, "--quiet"])
        #expect(restored.status == 0, "\(restored.stderr)")
        let counts = try target.connect().query("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM lines)").rows[0]
        let orders = try #require(counts[0].flatMap { Int($0) }), lines = try #require(counts[1].flatMap { Int($0) })
        #expect(lines == 3 * orders && orders >= 100_000, "\(orders) orders, \(lines) lines")
    }

    @Test("a conflict with recovery cancels the backup's COPY: exit 2, the error names max_standby_streaming_delay and hot_standby_feedback, no archive is left")
    func recoveryConflict() async throws {
        let major = TestServers.newest
        let primary = try Self.primary(major, rows: 400_000)
        defer { primary.destroy() }
        let standby = try TestStandby(of: primary, settings: ["max_standby_streaming_delay": "0"])
        defer { standby.destroy() }
        try standby.catchUp()

        let archive = try TestScratch.path("standby-conflict")
        let stderr = try TestScratch.path("standby-conflict.stderr")
        let process = try Fault.spawn(try Shell.pgvault(), [
            "backup", "-d", standby.conninfo(), "--output", archive, "--table", "public.orders", "--compress-level", "19", "--quiet",
        ], stderr: stderr)
        // Once the COPY runs on the standby, a DDL statement on the primary
        // replays there as a lock the backup's session holds.
        let watch = try PGConnection(conninfo: standby.conninfo())
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline,
              try watch.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%' AND pid <> pg_backend_pid()").scalar == "0" {
            try await Task.sleep(for: .milliseconds(20))
        }
        try PGConnection(conninfo: primary.conninfo()).execute("ALTER TABLE orders ADD COLUMN extra int")
        process.waitUntilExit()
        let message = (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 2, "\(message)")
        #expect(message.contains("conflict with recovery") && message.contains("max_standby_streaming_delay") && message.contains("hot_standby_feedback"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: archive))
    }

    static func walStatus(_ arguments: [String]) throws -> (status: Int32, json: [String: Any]) {
        let out = try Shell.capture([try Shell.pgvault(), "wal-status", "--json"] + arguments)
        let json = try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out.stdout)\(out.stderr)")
        return (out.status, json)
    }

    static func check(_ json: [String: Any], _ name: String) -> [String: Any]? {
        (json["checks"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    @Test("wal-status on a standby: streaming and replay lag; archive_mode = always archives there and the archive folder is checked; paused replay past --max-replay-lag; no WAL at all once the primary is gone", arguments: TestServers.versions)
    func walStatusOnStandby(major: Int) async throws {
        let primary = try Self.primary(major, rows: 1000)
        defer { primary.destroy() }
        let archive = try TestScratch.directory("standby-archive-\(major)")
        try Shell.run(["/bin/chown", "postgres", archive])
        let standby = try TestStandby(of: primary, settings: [
            "archive_mode": "always", "archive_command": "'test ! -f \(archive)/%f && cp %p \(archive)/%f'",
        ])
        defer { standby.destroy() }
        let primaryConn = try PGConnection(conninfo: primary.conninfo())
        try primaryConn.execute("INSERT INTO orders VALUES (5000000, 'x')")
        _ = try primaryConn.query("SELECT pg_switch_wal()")
        try standby.catchUp()
        // The standby archives what it received (archive_mode = always).
        let deadline = Date().addingTimeInterval(30)
        while try FileManager.default.contentsOfDirectory(atPath: archive).filter({ $0.count == 24 }).isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }

        let streaming = try Self.walStatus(["-d", standby.conninfo(), "--archive-dir", archive])
        let replication = try #require(Self.check(streaming.json, "replication"), "\(streaming.json)")
        #expect(replication["status"] as? String == "OK", "\(replication)")
        #expect((replication["detail"] as? String ?? "").contains("streaming from"), "\(replication)")
        #expect(Self.check(streaming.json, "archiver")?["status"] as? String == "OK", "archive_mode = always: the standby's archiver is judged")
        #expect(Self.check(streaming.json, "archive-dir")?["status"] as? String != "CRITICAL", "\(streaming.json)")
        let metrics = try #require(streaming.json["metrics"] as? [String: Any])
        #expect(metrics["standbyStreaming"] as? Int == 1 && metrics["replayLagBytes"] as? Int == 0, "\(metrics)")

        // Replay paused while the primary commits: behind, past the limit.
        let standbyConn = try PGConnection(conninfo: standby.conninfo())
        _ = try standbyConn.query("SELECT pg_wal_replay_pause()")
        try primaryConn.execute("INSERT INTO orders VALUES (5000001, 'y')")
        try await Task.sleep(for: .seconds(2.5))
        try primaryConn.execute("INSERT INTO orders VALUES (5000002, 'z')")
        try await Task.sleep(for: .milliseconds(500))
        let paused = try Self.walStatus(["-d", standby.conninfo(), "--max-replay-lag", "1s"])
        let lagging = try #require(Self.check(paused.json, "replication"))
        #expect(lagging["status"] as? String == "CRITICAL" && (lagging["detail"] as? String ?? "").contains("paused"), "\(lagging)")
        #expect(paused.status == 2)
        _ = try standbyConn.query("SELECT pg_wal_replay_resume()")

        // The primary gone, no restore_command: no WAL arrives.
        try primary.stop(mode: "immediate")
        try await Task.sleep(for: .seconds(1))
        let orphaned = try Self.walStatus(["-d", standby.conninfo()])
        let none = try #require(Self.check(orphaned.json, "replication"))
        #expect(none["status"] as? String == "CRITICAL" && (none["detail"] as? String ?? "").contains("primary_conninfo"), "\(none)")
        #expect(orphaned.status == 2)
        try primary.start()
    }
}
