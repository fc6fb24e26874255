import Foundation
import PGClient
import Support

/// A full restore's schema after the data: keys, indexes, foreign keys, the rest.
enum PostData {
    /// Applies the post-data schema in phases; returns the statements run.
    static func run(
        schema: Manifest.Schema, manifest: Manifest, options: RestoreOptions, monitor: Locked<LoadProgress>, notes: Locked<[String]>,
        log: @escaping @Sendable (String) -> Void
    ) async throws -> Int {
        let text = try await Blocking.run("pgvault-restore-post-data") {
            try RestoreEngine.Context.readMember(options.source, schema.postData)
        }
        let script = try SchemaScript.parse(text).filtered(noOwner: options.noOwner, noPrivileges: options.noPrivileges)
        let done = try await Blocking.run("pgvault-restore-steps") {
            try RestoreJournal.steps(try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore"))
        }
        // Sizes by table as pg_dump names them, to build the largest first.
        var sizes: [String: Int64] = [:]
        for u in manifest.units { sizes[SchemaScript.dumpName(u.schema, u.table), default: 0] += u.rawBytes }
        var count = 0
        for phase in SchemaScript.Phase.allCases {
            var objects = script.objects.filter { SchemaScript.Phase.of($0) == phase && !done.contains("post-data:\($0.index)") }
            guard !objects.isEmpty else { continue }
            if phase.parallel {
                objects.sort { (sizes[SchemaScript.tableOf($0) ?? ""] ?? 0) > (sizes[SchemaScript.tableOf($1) ?? ""] ?? 0) }
            }
            let phaseStart = Date()
            monitor.withLock { $0.beginPhase("post-data: \(phase.label)", total: objects.count) }
            _ = try await WorkerPool.overConnections(
                objects, jobs: phase.parallel ? options.jobs : 1, conninfo: options.conninfo, name: "pgvault restore post-data",
                setup: { conn in
                    try Session.prepare(conn, options)
                    try Session.runPreamble(conn, script.preamble)
                }
            ) { conn, object in
                do {
                    do {
                        try Session.retryingDeadlocks(conn) { conn in
                            try conn.execute(SchemaScript.sql(of: object))
                            try RestoreJournal.recordStep(conn, "post-data:\(object.index)")
                        }
                    } catch let error as PGError where error.sqlState == PGError.foreignKeyViolation && phase == .foreignKeys {
                        // Rows reference rows the selection left out: keep the
                        // constraint for new rows, unvalidated, and say so.
                        guard var notValid = object.sql.notValidForeignKey else { throw error }
                        notValid = SchemaScript.sql(of: SchemaScript.Object(
                            index: object.index, name: object.name, type: object.type, schema: object.schema, sql: notValid,
                            tablespace: object.tablespace, accessMethod: object.accessMethod))
                        try Session.retryingDeadlocks(conn) { conn in
                            try conn.execute(notValid)
                            try RestoreJournal.recordStep(conn, "post-data:\(object.index)")
                        }
                        let note = "foreign key \(object.name) (\(object.schema ?? "")) added NOT VALID: \(error.message); some rows reference rows that were not restored"
                        notes.withLock { $0.append(note) }
                        log(note)
                    }
                    monitor.withLock { $0.stepDone() }
                } catch let error as PGError {
                    throw PGVaultError.server("post-data \(object.type) \(object.schema.map { "\($0)." } ?? "")\(object.name) failed: \(error). The data is loaded; fix the cause and rerun with --resume to finish the schema.", error)
                }
            }
            count += objects.count
            log("post-data: \(objects.count) \(phase.label) in \(String(format: "%.1f", Date().timeIntervalSince(phaseStart))) s\(phase.parallel ? " over \(max(1, min(options.jobs, objects.count))) connections" : "")")
        }
        return count
    }
}
