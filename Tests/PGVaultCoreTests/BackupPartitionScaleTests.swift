import Foundation
import PGClient
@testable import PGVaultCore
import TestSupport
import Testing

/// The backup's costs per partition (issue 22): nothing the leader does for a
/// table may look at every other table.
@Suite("backup at many partitions")
struct BackupPartitionScaleTests {
    static func table(_ i: Int) -> Manifest.Table {
        Manifest.Table(schema: "public", name: "messages_\(i)", kind: "partition", columns: [], rows: 0)
    }

    static func unit(_ i: Int, table: Int, rows: Int64) -> Manifest.Unit {
        Manifest.Unit(id: "u\(i)", schema: "public", table: "messages_\(table)", member: "data/u\(i).copy.zst", columns: [],
                      rows: rows, rawBytes: 0, compressedBytes: 0, sha256: "", rowDigest: "")
    }

    @Test("each table's rows are the sum of its units', counted in one pass (40,000 partitions in a few seconds at most)")
    func rowsPerTable() {
        let n = 40_000
        let tables = (0..<n).map(Self.table) + [Manifest.Table(schema: "other", name: "messages_1", kind: "table", columns: [], rows: 7)]
        // Two units for every tenth table (a split one), none for the last.
        var units = (0..<(n - 1)).map { Self.unit($0, table: $0, rows: Int64($0 % 5)) }
        units += stride(from: 0, to: n - 1, by: 10).map { Self.unit(n + $0, table: $0, rows: 100) }
        let started = ContinuousClock.now
        let counted = BackupEngine.countingRows(tables, units)
        // A filter of every unit for every table took seconds here.
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(counted.count == tables.count)
        #expect(counted[0].rows == 100 && counted[1].rows == 1 && counted[10].rows == 100 && counted[14].rows == 4)
        #expect(counted[n - 1].rows == 0)
        // Same name in another schema: its own units (none), not messages_1's.
        #expect(counted[n].rows == 0)
        #expect(counted.map(\.name) == tables.map(\.name))
    }

    @Test("a decoded manifest keeps one array for equal column lists (every partition's, every unit's), and reads back equal")
    func decodedListsShared() throws {
        let manifest = RestoreFixtures.syntheticManifest()
        let decoded = try Manifest.decode(try manifest.encoded(), source: "test")
        #expect(decoded == manifest)
        func base<T>(_ list: [T]) -> UnsafeRawPointer? { list.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
        // events and its four partitions: one array of columns.
        let events = decoded.tables.filter { $0.name == "events" || $0.parentName == "events" }
        #expect(events.count == 5)
        #expect(Set(events.map { base($0.columns) }).count == 1)
        #expect(base(decoded.tables[0].columns) != base(events[0].columns))
        // The units' COPY column names: one array per distinct list.
        #expect(Set(decoded.units.map { base($0.columns) }).count == Set(decoded.units.map(\.columns)).count)
    }

    @Test("tables are locked many per statement; a table another session holds is still named")
    func locking() throws {
        let db = try TestServers.database()
        let setup = try db.connect()
        try setup.execute("""
            CREATE TABLE plain (id int);
            CREATE TABLE parted (id int, d date) PARTITION BY RANGE (d);
            CREATE TABLE "parted 2024" PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE TABLE parted_2025 PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
            """)
        let conn = try db.connect()
        let relations = try Catalog.relations(conn)
        #expect(relations.count == 4)
        try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL lock_timeout = '300ms'")
        try BackupEngine.lockTables(conn, relations, timeout: "300ms")
        let held = try conn.query("""
            SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'
              AND mode = 'AccessShareLock' AND relation IN (SELECT oid FROM pg_class WHERE relname IN ('plain', 'parted', 'parted 2024', 'parted_2025'))
            """).scalar
        #expect(held == "4")
        try conn.execute("COMMIT")

        try setup.execute("BEGIN; LOCK TABLE \"parted 2024\" IN ACCESS EXCLUSIVE MODE")
        try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL lock_timeout = '300ms'")
        let error = #expect(throws: PGVaultError.self) { try BackupEngine.lockTables(conn, relations, timeout: "300ms") }
        #expect(error?.description.contains("could not lock table public.parted") == true, "\(String(describing: error))")
        #expect(error?.serverError?.sqlState == PGError.lockNotAvailable)
        try conn.execute("ROLLBACK")
        try setup.execute("ROLLBACK")
    }
}
