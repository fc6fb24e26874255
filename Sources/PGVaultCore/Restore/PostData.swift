import Foundation
import PGClient
import Support

/// A full restore's schema after the data: keys, indexes, foreign keys, the
/// rest, one object at a time (``StepScheduler`` decides when).
enum PostData {
    /// Test hook, for tests only: milliseconds to wait inside each post-data
    /// object's transaction, so a test can kill a restore mid-way through it.
    static let testDelayVariable = "PGVAULT_TEST_STEP_DELAY_MS"

    /// Runs one object in a transaction with its journal entry. A foreign
    /// key that rows of a partial restore violate is added NOT VALID, with a note.
    static func apply(
        _ object: SchemaScript.Object, conn: PGConnection, delayMilliseconds: Int, notes: Locked<[String]>,
        log: @escaping @Sendable (String) -> Void
    ) throws {
        let step = "post-data:\(object.index)"
        func run(_ sql: String) throws {
            guard delayMilliseconds == 0 else {
                try Session.retryingDeadlocks(conn) { conn in
                    try conn.execute(sql)
                    usleep(useconds_t(delayMilliseconds * 1000))
                    try RestoreJournal.recordStep(conn, step)
                }
                return
            }
            // The object, its journal row and the COMMIT in one round trip:
            // thousands of partitions make thousands of index attachments,
            // each a quick catalog change.
            try Session.retryingDeadlocks(conn, script: "BEGIN;\n\(sql)\n;\n\(RestoreJournal.recordStepStatement(step));\nCOMMIT")
        }
        do {
            do {
                try run(SchemaScript.sql(of: object))
            } catch let error as PGError where error.sqlState == PGError.foreignKeyViolation && SchemaScript.Phase.of(object) == .foreignKeys {
                // Rows reference rows the selection left out: keep the
                // constraint for new rows, unvalidated, and say so.
                guard var notValid = object.sql.notValidForeignKey else { throw error }
                notValid = SchemaScript.sql(of: SchemaScript.Object(
                    index: object.index, name: object.name, type: object.type, schema: object.schema, sql: notValid,
                    tablespace: object.tablespace, accessMethod: object.accessMethod))
                try run(notValid)
                let note = "foreign key \(object.name) (\(object.schema ?? "")) added NOT VALID: \(error.message); some rows reference rows that were not restored"
                notes.withLock { $0.append(note) }
                log(note)
            }
        } catch let error as PGError {
            throw PGVaultError.server("post-data \(object.type) \(object.schema.map { "\($0)." } ?? "")\(object.name) failed: \(error). The data is loaded; fix the cause and rerun with --resume to finish the schema.", error)
        }
    }
}
