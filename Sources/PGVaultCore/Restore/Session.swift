import Foundation
import PGClient

/// The restore's connections: their settings, pg_dump's preamble, deadlock retries.
enum Session {
    /// Settings for restore connections: the backup's COPY settings, no
    /// timeouts, asynchronous commit (a unit's data and its journal entry
    /// commit together, so a lost commit loses both), memory and parallel
    /// workers for index builds.
    static func prepare(_ conn: PGConnection, _ options: RestoreOptions) throws {
        try CopySession.apply(conn)
        try conn.execute("""
            SET synchronous_commit = off; SET statement_timeout = 0; SET lock_timeout = 0; \
            SET idle_in_transaction_session_timeout = 0; \
            SET maintenance_work_mem = \(SQL.literal(options.maintenanceWorkMem)); \
            SET max_parallel_maintenance_workers = \(max(0, options.maintenanceWorkers))
            """)
    }

    /// pg_dump's preamble, one statement at a time; a setting this server
    /// does not know (an older server given a newer pg_dump's
    /// `SET transaction_timeout = 0`) is skipped.
    static func runPreamble(_ conn: PGConnection, _ statements: [String]) throws {
        for statement in statements {
            do {
                try conn.execute(statement)
            } catch let error as PGError where error.sqlState == PGError.undefinedObject && statement.hasPrefix("SET ") {
                continue
            }
        }
    }

    /// Runs `body` in a transaction, again (up to 5 times) if the server broke
    /// a deadlock by cancelling it; parallel DDL on related tables can deadlock.
    static func retryingDeadlocks(_ conn: PGConnection, _ body: (PGConnection) throws -> Void) throws {
        try retryingDeadlocks { try conn.transaction { try body($0) } }
    }

    /// The same for `script`, `BEGIN; ...; COMMIT` sent as one query (one
    /// round trip): a statement that fails stops it, and the transaction
    /// is rolled back.
    static func retryingDeadlocks(_ conn: PGConnection, script: String) throws {
        try retryingDeadlocks {
            do {
                try conn.execute(script)
            } catch {
                if conn.isHealthy { try? conn.execute("ROLLBACK") }
                throw error
            }
        }
    }

    private static func retryingDeadlocks(_ attempt: () throws -> Void) throws {
        var attempts = 0
        while true {
            do {
                try attempt()
                return
            } catch let error as PGError where error.sqlState == PGError.deadlockDetected && attempts < 5 {
                attempts += 1
                usleep(useconds_t(100_000 * attempts))
            }
        }
    }
}
