import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#endif

/// The database a drill restores into: `pgvault_drill_<backup>_<random>`,
/// created by the drill, commented with its owner (pid and host), and
/// dropped by it. A drill never drops a database it did not create: only
/// one with the prefix *and* a drill's owner comment, whose owner is a dead
/// process of this host, is dropped by the next drill (``reapOrphans``).
public enum DrillDatabase {
    static let prefix = "pgvault_drill_"
    static let commentPrefix = "pgvault drill owner: "

    /// A fresh name: the prefix, the backup's database name and time (as
    /// much as fits), and 8 random hex digits.
    static func name(backup: String) -> String {
        let safe = String(backup.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        let random = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        return prefix + String(safe.prefix(63 - prefix.count - 9)) + "_" + random
    }

    /// `conninfo` with its dbname replaced by `database` (key=value form:
    /// a later keyword overrides an earlier one, and a URI is turned into
    /// its keywords by libpq's own parser first).
    static func conninfo(_ conninfo: String, database: String) throws -> String {
        let options = try ConnInfo.parseOrThrow(conninfo).filter { $0.key != "dbname" }
        return (options + [("dbname", database)]).map { "\($0.key)=\(ConnInfo.quoteValue($0.value))" }.joined(separator: " ")
    }

    /// Creates the drill's database on `admin`'s server, with the backup's
    /// encoding, and marks it as this drill's (`keep`: a database kept with
    /// --keep, never reaped).
    static func create(_ name: String, encoding: String, on admin: PGConnection, keep: Bool) throws {
        do {
            try admin.execute("CREATE DATABASE \(SQL.ident(name)) TEMPLATE template0 ENCODING \(SQL.literal(encoding)) LC_COLLATE 'C' LC_CTYPE 'C'")
        } catch let error as PGError {
            throw PGVaultError.server("cannot create the drill's database \(name): \(error.message); the role of --target needs CREATEDB", error)
        }
        let owner = keep ? "keep" : "\(getpid()) \(DrillOwner.host)"
        try admin.execute("COMMENT ON DATABASE \(SQL.ident(name)) IS \(SQL.literal(commentPrefix + owner))")
    }

    /// Drops the drill's database, ending any session still in it.
    static func drop(_ name: String, on admin: PGConnection) throws {
        try admin.execute("DROP DATABASE IF EXISTS \(SQL.ident(name)) WITH (FORCE)")
    }

    /// Drops the databases of drills of this host that died (SIGKILL). What
    /// is not certainly an orphan is left alone and named in the notes.
    static func reapOrphans(on admin: PGConnection) throws -> (dropped: [String], notes: [String]) {
        let rows = try admin.query("""
            SELECT d.datname, coalesce(pg_catalog.shobj_description(d.oid, 'pg_database'), '')
            FROM pg_catalog.pg_database d WHERE starts_with(d.datname, $1) ORDER BY 1
            """, [prefix])
        var dropped: [String] = [], notes: [String] = []
        for row in rows.rows {
            let name = try row.string(0), comment = try row.string(1)
            guard comment.hasPrefix(commentPrefix) else { continue }
            let owner = String(comment.dropFirst(commentPrefix.count))
            if owner == "keep" {
                notes.append("database \(name) was kept by an earlier drill (--keep): drop it when done")
                continue
            }
            guard let parsed = DrillOwner(owner), !parsed.isAlive else {
                if let parsed = DrillOwner(owner), parsed.host != DrillOwner.host {
                    notes.append("database \(name) belongs to a drill on host \(parsed.host); left alone")
                }
                continue
            }
            try drop(name, on: admin)
            dropped.append(name)
        }
        return (dropped, notes)
    }
}
