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
        let script = try SchemaScript.parse(try RestoreEngine.Context.readMember(options.source, member))
        do {
            try Session.runPreamble(conn, script.preamble)
            try conn.transaction { conn in
                for object in script.objects { try conn.execute(object.sql) }
            }
        } catch let error as PGError {
            return (0, "the backup's optimizer statistics were not restored (\(error)); run ANALYZE (or restore with --analyze)")
        }
        return (script.objects.count, nil)
    }
}
