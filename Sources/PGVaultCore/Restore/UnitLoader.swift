import Foundation
import PGClient
import Support

/// The load: every unit in a transaction of its own, over --jobs connections.
enum UnitLoader {
    /// Test hook, for tests only: milliseconds to wait inside each unit's
    /// transaction after its COPY, so a test can kill a restore mid-way.
    static let testDelayVariable = "PGVAULT_TEST_UNIT_DELAY_MS"

    /// `encoding`: the archive's (its COPY text is in the source database's
    /// encoding; the server converts if the target's differs).
    static func load(
        _ loads: [LoadPlan.Load], options: RestoreOptions, encoding: String, monitor: Locked<LoadProgress>
    ) async throws {
        monitor.withLock { $0.progress.bytesTotal = loads.reduce(0) { $0 + $1.unit.rawBytes } }
        let delay = Int(ProcessInfo.processInfo.environment[testDelayVariable] ?? "") ?? 0
        let name = "pgvault restore load"
        _ = try await WorkerPool.run(
            loads, jobs: options.jobs, name: name,
            makeWorker: { context in
                let conn = try PGConnection(conninfo: options.conninfo, applicationName: "\(name) \(context.number)")
                context.cancels(conn)
                try Session.prepare(conn, options)
                try conn.execute("SET client_encoding = \(SQL.literal(encoding))")
                // An archive reader of its own: a source is not shared between threads.
                return (conn: conn, source: try options.source.open())
            }
        ) { worker, load in
            let rows = try loadUnit(load, conn: worker.conn, source: worker.source, delayMilliseconds: delay, monitor: monitor)
            monitor.withLock { $0.finishUnit(rows: rows) }
        }
    }

    /// BEGIN; [TRUNCATE]; COPY ... FROM STDIN [FREEZE] fed from the member
    /// (its SHA-256 checked as it streams); journal entry; COMMIT.
    static func loadUnit(
        _ load: LoadPlan.Load, conn: PGConnection, source: ArchiveSource, delayMilliseconds: Int, monitor: Locked<LoadProgress>
    ) throws -> Int64 {
        try loadUnits([load], conn: conn, source: source, delayMilliseconds: delayMilliseconds, monitor: monitor)[0].rows
    }

    /// What one unit of a transaction loaded, and when.
    struct Loaded: Sendable {
        var rows: Int64
        var start: Date
        var end: Date
    }

    /// Small units in one transaction: each unit's COPY and journal entry
    /// as in a transaction of its own, one COMMIT for all, so a thousand
    /// tiny partitions do not cost a thousand transactions. The journal
    /// stays exact: the units and their entries commit together, or none of
    /// them does. Units batched together load without TRUNCATE + FREEZE:
    /// a TRUNCATE makes new files for the table, its TOAST table and its
    /// index, which costs more than freezing a few pages saves later.
    static func loadUnits(
        _ loads: [LoadPlan.Load], conn: PGConnection, source: ArchiveSource, delayMilliseconds: Int, monitor: Locked<LoadProgress>
    ) throws -> [Loaded] {
        var current = loads[0]
        func what(_ load: LoadPlan.Load) -> String {
            "unit \(load.unit.id) (\(load.unit.member), \(load.archived.qualifiedName) → \(load.destination))"
        }
        let others = loads.count > 1 ? " (with the \(loads.count - 1) other small units of its transaction)" : ""
        do {
            return try conn.transaction { conn in
                try loads.map { given in
                    var load = given
                    if loads.count > 1 { load.freeze = false }
                    current = load
                    let start = Date()
                    let rows = try copy(load, what: what(load), conn: conn, source: source, delayMilliseconds: delayMilliseconds, monitor: monitor)
                    return Loaded(rows: rows, start: start, end: Date())
                }
            }
        } catch let error as PGVaultError where error.kind == .archive {
            throw PGVaultError.archive("\(error.description); \(what(current)) was rolled back\(others), nothing of it was loaded")
        } catch let error as PGError where error.kind == .query {
            var hint = ""
            if error.sqlState == PGError.checkViolation && current.routed {
                hint = " (a row fits no partition of \(current.destination): create the partition, or a DEFAULT partition)"
            }
            throw PGVaultError.server("\(what(current)) failed and was rolled back\(others): \(error)\(hint)", error)
        }
    }

    /// One unit inside the caller's transaction.
    private static func copy(
        _ load: LoadPlan.Load, what: String, conn: PGConnection, source: ArchiveSource, delayMilliseconds: Int, monitor: Locked<LoadProgress>
    ) throws -> Int64 {
        let table = SQL.qualified(load.schema, load.name)
        let columns = load.unit.columns.map(SQL.ident).joined(separator: ", ")
        if load.freeze { try conn.execute("TRUNCATE ONLY \(table)") }
        let rows = try conn.copyIn("COPY \(table) (\(columns)) FROM STDIN\(load.unit.format.options(load.freeze ? ["FREEZE"] : []))") { writer in
            try Archive.streamUnit(load.unit, from: source) { chunk in
                try writer.write(chunk)
                monitor.withLock { $0.progress.bytes += Int64(chunk.count) }
            }
        }
        guard rows == load.unit.rows else {
            throw PGVaultError.archive("\(what): COPY loaded \(rows) rows but the manifest says \(load.unit.rows); rolled back")
        }
        // Rows that fit no partition of the target: they are this
        // transaction's rows in a DEFAULT partition.
        for d in load.defaultPartitions {
            let n = try conn.query("SELECT count(*) FROM ONLY \(d.sql) WHERE xmin = pg_catalog.pg_current_xact_id()::xid").firstRow().int64(0)
            if n > 0 { try RestoreJournal.recordInDefault(conn, load.unit, partition: d.qualified, rows: n) }
        }
        if delayMilliseconds > 0 { usleep(useconds_t(delayMilliseconds * 1000)) }
        try RestoreJournal.recordUnit(conn, load.unit, destination: load.destination, rows: rows)
        return rows
    }
}
