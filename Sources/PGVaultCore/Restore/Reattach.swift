import Foundation
import PGClient
import Support

enum Reattach {
    /// Data-only: adds back the foreign keys (validating them, in parallel)
    /// and re-enables the triggers the load detached.
    static func run(
        options: RestoreOptions, leader: PGConnection, monitor: Locked<LoadProgress>, notes: Locked<[String]>, log: @escaping @Sendable (String) -> Void
    ) async throws {
        let detached = try await Blocking.run("pgvault-restore-detached", on: leader) { try RestoreJournal.detached($0) }
        let fks = detached.filter { $0.kind == .foreignKey }
        let triggers = detached.filter { $0.kind == .trigger }.sorted { ($0.inherited ? 1 : 0, $0.position) < ($1.inherited ? 1 : 0, $1.position) }
        if !fks.isEmpty { log("adding back and validating \(fks.count) foreign keys") }
        monitor.withLock { $0.beginPhase("foreign keys", total: fks.count) }
        _ = try await WorkerPool.overConnections(
            fks, jobs: options.jobs, conninfo: options.conninfo, name: "pgvault restore foreign-keys",
            setup: { try Session.prepare($0, options) }
        ) { conn, d in
            let table = SQL.qualified(d.schema, d.table)
            do {
                do {
                    try Session.retryingDeadlocks(conn) { conn in
                        try conn.execute(d.restoreSQL)
                        try RestoreJournal.removeDetached(conn, d)
                    }
                } catch let error as PGError where error.sqlState == PGError.foreignKeyViolation {
                    // Rows reference rows the selection left out: keep the
                    // constraint for new rows, unvalidated, and say so.
                    try Session.retryingDeadlocks(conn) { conn in
                        try conn.execute(d.restoreSQL + " NOT VALID")
                        try RestoreJournal.removeDetached(conn, d)
                    }
                    let note = "foreign key \(d.name) on \(d.schema).\(d.table) added back NOT VALID: \(error.message); some rows reference rows that were not restored (restore them, then ALTER TABLE \(table) VALIDATE CONSTRAINT \(SQL.ident(d.name)))"
                    notes.withLock { $0.append(note) }
                    log(note)
                    monitor.withLock { $0.stepDone() }
                    return
                }
                if d.wasNotValid {
                    notes.withLock { $0.append("foreign key \(d.name) on \(d.schema).\(d.table), NOT VALID before, is now validated") }
                }
                monitor.withLock { $0.stepDone() }
            } catch let error as PGError {
                throw PGVaultError.server("adding back foreign key \(d.name) on \(d.schema).\(d.table) failed: \(error). The data is loaded; the constraint is recorded in \(RestoreJournal.schema).detached. Fix the rows and rerun with --resume.", error)
            }
        }
        try await Blocking.run("pgvault-restore-triggers", on: leader) { conn in
            for d in triggers {
                try conn.transaction { conn in
                    try conn.execute(d.restoreSQL)
                    try RestoreJournal.removeDetached(conn, d)
                }
            }
        }
    }
}
