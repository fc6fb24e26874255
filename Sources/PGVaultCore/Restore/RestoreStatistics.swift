import Foundation
import PGClient

/// The optimizer statistics of a backup taken with pg_dump 18 or later
/// (``Manifest/Schema/statistics``), applied after post-data: every table's
/// and index's `pg_restore_relation_stats` and `pg_restore_attribute_stats`
/// call, in one transaction. The restored database then plans with the
/// source's statistics before autovacuum's first ANALYZE.
///
/// They are an optimization, not data: a target older than 18 (which lacks
/// the functions) or a call that fails leaves a note, and the restore goes
/// on (ANALYZE, or autovacuum, makes them anew).
enum RestoreStatistics {
    /// Returns how many objects' statistics were applied, and a note when
    /// they were not.
    /// On a connection of its own: the script's preamble (search_path '')
    /// stays out of the restore's other sessions.
    static func apply(_ member: Manifest.Member, options: RestoreOptions) throws -> (applied: Int, note: String?) {
        let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore statistics")
        guard conn.serverVersionNumber >= 180000 else {
            return (0, "the backup's optimizer statistics were not restored: PostgreSQL \(conn.serverVersionNumber / 10000) has no pg_restore_relation_stats(); run ANALYZE (or restore with --analyze)")
        }
        // The script is read, parsed and run one object at a time (pg_dump
        // 18 writes one per table and index; the whole can be tens of MB).
        // Its preamble comes before the first object, so it runs first.
        let source = try options.source.open()
        var applied = 0
        do {
            try conn.transaction { conn in
                var preambleRun = false
                try SchemaScript.stream(member, from: source) { object, preamble in
                    if !preambleRun {
                        try Session.runPreamble(conn, preamble)
                        preambleRun = true
                    }
                    try conn.execute(object.sql)
                    applied += 1
                }
            }
        } catch let error as PGError {
            return (0, "the backup's optimizer statistics were not restored (\(error)); run ANALYZE (or restore with --analyze)")
        }
        return (applied, nil)
    }
}
