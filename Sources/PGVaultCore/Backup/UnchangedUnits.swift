import CryptoDigest
import Foundation
import PGClient
import Support

/// A backup into a format-2 repository does not read again what has not
/// changed since the previous backup of the same database.
///
/// Each unit gets a fingerprint, computed in the backup's snapshot: the
/// SHA-256 of
/// - where the rows come from: the cluster (`system_identifier`, the
///   timeline, the server version), the database's and the table's OIDs, the
///   table's file node, the unit's page range, its COPY format, its columns
///   with their types, pgvault's COPY settings, and every enum's labels (a
///   renamed label changes COPY's output without touching a row);
/// - which row versions the snapshot sees: their count and the sum of a
///   64-bit hash of each one's `(xmin, ctid)`.
///
/// PostgreSQL never changes a visible row in place: an UPDATE writes a new
/// version with the updating transaction's id as its xmin, an INSERT a new
/// row, and a DELETE removes one from the set; TRUNCATE, CLUSTER, VACUUM
/// FULL and a rewriting ALTER TABLE give the table a new file node. So
/// equal fingerprints mean the same row versions, hence the same COPY
/// stream; the previous backup's chunks for that unit are taken as they are
/// (their ids checked in the index), with its row count and digests. A
/// different cluster (another system identifier), a promoted copy (another
/// timeline) or an upgrade (another version) never matches. When the server
/// does not say what cluster it is, no fingerprint is taken and every unit
/// is read. `backup --read-unchanged` reads every unit anyway (and still
/// records fingerprints). docs/repository-format.md, "Unchanged units",
/// gives the argument and what it assumes.
struct UnchangedUnits: Sendable {
    /// The cluster's part of every fingerprint; nil when it is unknown.
    let cluster: String?
    /// The previous backup's fingerprinted units, by fingerprint.
    let previous: [String: Manifest.Unit]
    let session: ChunkWriteSession
    /// false with `--read-unchanged`: fingerprints are taken, nothing is reused.
    let reuse: Bool
    let taken = Locked(0)

    init(writer: RepositoryBackupWriter, server: Manifest.Server, database: String, reuse: Bool) {
        if server.systemIdentifier != "unknown", let timeline = server.timeline {
            cluster = "\(server.systemIdentifier)/\(timeline)/\(server.versionNumber)"
        } else {
            cluster = nil
        }
        previous = cluster == nil ? [:] : writer.fingerprinted(database: database)
        session = writer.session
        self.reuse = reuse
    }

    /// The unit's fingerprint, read on `conn` inside the backup's snapshot.
    func fingerprint(of unit: BackupEngine.PlannedUnit, columns: [String], conn: PGConnection) throws -> String? {
        guard let cluster else { return nil }
        let table = unit.relation.table
        let t = SQL.qualified(table.schema, table.name)
        let range = BackupEngine.pageConditions(unit)
        let r = try conn.query("""
            SELECT c.oid::text, pg_relation_filenode(c.oid)::text, d.oid::text,
                   (SELECT md5(coalesce(string_agg(e.enumtypid::text || ':' || e.enumlabel, ',' ORDER BY e.enumtypid, e.enumsortorder), ''))
                    FROM pg_enum e),
                   v.n::text, v.s::text
            FROM pg_class c, pg_database d,
                 (SELECT count(*) AS n, coalesce(sum(hashtextextended(r.xmin::text || ',' || r.ctid::text, 0)), 0) AS s
                  FROM ONLY \(t) r\(range.isEmpty ? "" : " WHERE " + range.map { "r." + $0 }.joined(separator: " AND "))) v
            WHERE c.oid = $1::regclass AND d.datname = current_database()
            """, [t]).firstRow()
        let types = Dictionary(table.columns.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        var material = [
            "pgvault unit fingerprint 1", cluster, try r.string(2), try r.string(0), try r.string(1),
            "\(unit.fromPage.map(String.init) ?? "-")..\(unit.toPage.map(String.init) ?? "-")", unit.format.rawValue,
            columns.map { "\($0) \(types[$0] ?? "?")" }.joined(separator: ","),
            CopySession.asDictionary.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
            try r.string(3), try r.string(4), try r.string(5),
        ]
        material = material.map { $0.replacingOccurrences(of: "\n", with: " ") }
        return try SHA2.hex(.sha256, of: Array(material.joined(separator: "\n").utf8))
    }

    /// The previous backup's unit with this fingerprint, renamed as `unit`
    /// and pointing at its chunks in this backup's pack numbering; nil when
    /// there is none (or a chunk of it is gone): then the unit is read.
    func take(_ fingerprint: String, for unit: BackupEngine.PlannedUnit, columns: [String]) -> Manifest.Unit? {
        guard reuse, var found = previous[fingerprint], let refs = found.chunks,
              found.schema == unit.relation.table.schema, found.table == unit.relation.table.name,
              found.columns == columns, found.format == unit.format,
              let chunks = session.reuse(refs) else { return nil }
        found.id = unit.id
        found.member = UnitWriter.memberName(unit.id)
        found.fromPage = unit.fromPage
        found.toPage = unit.toPage
        found.chunks = chunks
        taken.withLock { $0 += 1 }
        return found
    }
}
