import Foundation
import PGClient

/// A session-level advisory lock that keeps two runs of one job on one database
/// apart, across machines (backup, restore, archive-/restore-partitions). The lock is
/// held by the connection and freed by the server when it closes. The server
/// frees it as it notices the disconnect, a moment after a previous run ended,
/// so acquiring retries for a short while (2 s) before calling the lock busy;
/// the message says so, since a second run then fails after that wait, not
/// at once.
public struct AdvisoryLock: Sendable {
    public let key: String

    public init(job: String, database: String) {
        key = "pgvault-\(job):\(database)"
    }

    /// Takes the lock, or throws `busy(holder)` where holder describes the
    /// session that has it (backend pid, application, since when) and how long
    /// this run waited for it.
    public func acquire(_ conn: PGConnection, patience: Duration = .seconds(2), busy: (String) -> Error) throws {
        let deadline = ContinuousClock.now + patience
        while true {
            if try conn.query("SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1))", [key]).firstRow().bool(0) { return }
            if ContinuousClock.now >= deadline { break }
            usleep(100_000)
        }
        let holder = try? conn.query("""
            SELECT a.pid, a.application_name, a.backend_start FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.objid = (pg_catalog.hashtext($1)::bigint & 4294967295)::oid AND l.granted LIMIT 1
            """, [key]).rows.first
        let waited = "waited \(patience.components.seconds) s for it"
        throw busy(holder.map { " (backend pid \($0[0] ?? "?"), \($0[1] ?? ""), since \($0[2] ?? "?"); \(waited))" } ?? " (\(waited))")
    }
}
