import Foundation
import PGClient

extension BackupEngine {
    // MARK: - Workers

    static func runWorkers(
        _ options: BackupOptions, units: [PlannedUnit], snapshot: String, staging: String, monitor: ProgressMonitor
    ) async throws -> [Manifest.Unit] {
        guard !units.isEmpty else { return [] }
        let queue = UnitQueue(units)
        let jobs = max(1, min(options.jobs, units.count))
        return try await withThrowingTaskGroup(of: [Manifest.Unit].self) { group in
            for w in 0..<jobs {
                let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault backup worker \(w + 1)")
                group.addTask {
                    try await Blocking.run("pgvault-backup-\(w + 1)", on: conn) { conn in
                        try CopySession.apply(conn)
                        try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        try conn.execute("SET TRANSACTION SNAPSHOT \(SQL.literal(snapshot))")
                        var finished: [Manifest.Unit] = []
                        while let unit = queue.next() {
                            try Cancellation.check()
                            finished.append(try dumpUnit(unit, conn: conn, staging: staging, level: options.compressionLevel, monitor: monitor))
                        }
                        try conn.execute("COMMIT")
                        return finished
                    }
                }
            }
            var all: [Manifest.Unit] = []
            do {
                for try await part in group { all += part }
            } catch {
                queue.stop()
                group.cancelAll()
                throw error
            }
            return all
        }
    }

    /// COPY one planned unit into its member, reporting progress to the monitor.
    static func dumpUnit(_ unit: PlannedUnit, conn: PGConnection, staging: String, level: Int32, monitor: ProgressMonitor) throws -> Manifest.Unit {
        let columns = unit.relation.table.columns.filter { !$0.generated }.map(\.name)
        do {
            let written = try UnitWriter.write(
                id: unit.id, schema: unit.relation.table.schema, table: unit.relation.table.name, columns: columns,
                sql: copyStatement(unit, columns: columns), format: unit.format, conn: conn, staging: staging, level: level,
                onFlush: { rows, raw in monitor.add(rows: rows, raw: raw) })
            monitor.finishUnit(compressed: written.compressedBytes)
            var result = written
            result.fromPage = unit.fromPage
            result.toPage = unit.toPage
            return result
        } catch let error as PGError {
            // Our own cancel request (a signal, a failed sibling) is not a failure of this COPY.
            if error.sqlState == PGError.queryCanceled, Cancellation.isCancelled { throw CancellationError() }
            throw BackupError("COPY of \(unit.relation.table.qualifiedName) failed: \(error)")
        }
    }
}

/// Hands out units to workers, largest first; stops handing out after a failure.
final class UnitQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var units: [BackupEngine.PlannedUnit]
    private var index = 0
    private var stopped = false

    init(_ units: [BackupEngine.PlannedUnit]) { self.units = units }

    func next() -> BackupEngine.PlannedUnit? {
        lock.withLock {
            guard !stopped, index < units.count else { return nil }
            defer { index += 1 }
            return units[index]
        }
    }

    func stop() { lock.withLock { stopped = true } }
}
