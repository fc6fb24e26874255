import Foundation
import PGClient
import Support

extension BackupEngine {
    // MARK: - Workers

    /// Streams every unit over at most `--jobs` connections, largest first.
    /// Each worker's state is its connection, opened on the worker's own
    /// thread, inside a transaction that imports the leader's snapshot; the
    /// transaction commits once the queue is empty. The units come back in
    /// plan order.
    static func runWorkers(
        _ options: BackupOptions, units: [PlannedUnit], snapshot: String, destination: ArchiveDestination, progress: Locked<BackupProgress>,
        unchanged: UnchangedUnits? = nil
    ) async throws -> [Manifest.Unit] {
        let level = options.compressionLevel
        return try await WorkerPool.overConnections(
            units, jobs: options.jobs, conninfo: options.conninfo, name: "pgvault backup worker",
            size: { $0.estimatedBytes },
            setup: { conn in
                try CopySession.apply(conn)
                // A synchronized scan starts a big table where another scan
                // is, so its COPY stream would come out rotated from one
                // backup to the next, and its chunks would not deduplicate.
                try conn.execute("SET synchronize_seqscans = off")
                try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try conn.execute("SET TRANSACTION SNAPSHOT \(SQL.literal(snapshot))")
            },
            finish: { conn in try conn.execute("COMMIT") },
            body: { conn, unit in try dumpUnit(unit, conn: conn, into: destination, level: level, progress: progress, unchanged: unchanged) })
    }

    /// COPY one planned unit into its member, counting its progress; or,
    /// into a repository, take it from the previous backup when its
    /// fingerprint says it has not changed (``UnchangedUnits``).
    static func dumpUnit(
        _ unit: PlannedUnit, conn: PGConnection, into destination: ArchiveDestination, level: Int32, progress: Locked<BackupProgress>,
        unchanged: UnchangedUnits? = nil
    ) throws -> Manifest.Unit {
        let columns = unit.relation.table.columns.filter { !$0.generated }.map(\.name)
        do {
            let fingerprint = try unchanged?.fingerprint(of: unit, columns: columns, conn: conn)
            if let fingerprint, let taken = unchanged?.take(fingerprint, for: unit, columns: columns) {
                progress.withLock {
                    $0.add(rows: taken.rows, rawBytes: taken.rawBytes)
                    $0.finishUnit(compressedBytes: taken.compressedBytes)
                }
                return taken
            }
            let written = try UnitWriter.write(
                id: unit.id, schema: unit.relation.table.schema, table: unit.relation.table.name, columns: columns,
                sql: copyStatement(unit, columns: columns), format: unit.format, conn: conn, into: destination, level: level,
                onFlush: { rows, raw in progress.withLock { $0.add(rows: rows, rawBytes: raw) } })
            progress.withLock { $0.finishUnit(compressedBytes: written.compressedBytes) }
            var result = written
            result.fromPage = unit.fromPage
            result.toPage = unit.toPage
            result.fingerprint = fingerprint
            return result
        } catch let error as PGError {
            // Our own cancel request (a signal, a failed sibling) is not a failure of this COPY.
            if error.sqlState == PGError.queryCanceled, Cancellation.isCancelled { throw CancellationError() }
            // The server's error stays whole underneath: its SQLSTATE tells a
            // terminated connection from a refused statement.
            if error.isRecoveryConflict {
                throw PGVaultError.server("COPY of \(unit.relation.table.qualifiedName) failed: \(PGError.recoveryConflictAdvice)", error)
            }
            throw PGVaultError.server("COPY of \(unit.relation.table.qualifiedName) failed", error)
        }
    }
}
