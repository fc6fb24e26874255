import Foundation
import PGClient

/// Catalog look-ups shared by archive-partitions and restore-partitions.
enum ColdCatalog {
    /// A range-partitioned table and its partitions (bounds read under UTC).
    struct Parent {
        var oid: UInt32
        var relation: Catalog.Relation
        var partitions: [Catalog.Relation]
        var keyColumn: String
        var keyType: String
        var schema: String { relation.table.schema }
        var name: String { relation.table.name }
        var qualified: String { relation.table.qualifiedName }
        var sql: String { SQL.qualified(schema, name) }
        var defaultPartition: Catalog.Relation? { partitions.first { $0.table.bound?.isDefault == true } }
    }

    /// A foreign key whose referenced table is the partitioned parent.
    struct Reference: Sendable {
        var name: String
        var schema: String
        var table: String
        var oid: UInt32
        /// Referencing columns, and the parent's columns they point at, in order.
        var columns: [String]
        var referenced: [String]
        var qualified: String { "\(schema).\(table)" }
    }

    /// Resolves `messages` / `public.messages` (search_path applies) to a range-partitioned table.
    static func parent(_ conn: PGConnection, _ name: String, relations: [Catalog.Relation]) throws -> Parent {
        guard let oidText = try conn.query("SELECT to_regclass($1)::oid::text", [name]).scalar, let oid = UInt32(oidText) else {
            throw PGVaultError(.server, "table '\(name)' does not exist")
        }
        guard let rel = relations.first(where: { $0.oid == oid }) else {
            throw PGVaultError(.server, "'\(name)' is not a table in a user schema")
        }
        guard rel.table.kind == "partitioned", let part = rel.table.partitioning else {
            throw PGVaultError(.server, "\(rel.table.qualifiedName) is not a partitioned table")
        }
        guard part.strategy == "range" else {
            throw PGVaultError(.server, "\(rel.table.qualifiedName) is \(part.strategy)-partitioned; cold storage moves range partitions only")
        }
        guard part.keyColumns.count == 1, let key = part.keyColumns.first,
              let type = rel.table.columns.first(where: { $0.name == key })?.type else {
            throw PGVaultError(.server, "\(rel.table.qualifiedName) is partitioned by \(part.keyDefinition); cold storage needs a single time column as the partition key")
        }
        let partitions = relations.filter { $0.table.parentSchema == rel.table.schema && $0.table.parentName == rel.table.name }
        return Parent(oid: oid, relation: rel, partitions: partitions, keyColumn: key, keyType: type)
    }

    /// Foreign keys (top-level constraints) that reference `parent`.
    static func references(_ conn: PGConnection, parent: UInt32) throws -> [Reference] {
        let rows = try conn.query("""
            SELECT con.conname, rn.nspname, rc.relname, con.conrelid::text,
                   (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum)::text,
                   (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum)::text
            FROM pg_constraint con
            JOIN pg_class rc ON rc.oid = con.conrelid
            JOIN pg_namespace rn ON rn.oid = rc.relnamespace
            WHERE con.contype = 'f' AND con.confrelid = $1::oid AND con.conparentid = 0
            ORDER BY rn.nspname, rc.relname, con.conname
            """, [String(parent)])
        func names(_ text: String?) throws -> [String] {
            try JSONDecoder().decode([String].self, from: Data((text ?? "[]").utf8))
        }
        return try rows.rows.map { r in
            Reference(name: try r.string(0), schema: try r.string(1), table: try r.string(2), oid: try r.uint32(3),
                      columns: try names(r[4]), referenced: try names(r[5]))
        }
    }

    /// Foreign keys that reference any of `tables` (by oid): rows there would be
    /// orphaned (or cascaded) if referencing rows were removed.
    static func referencedBy(_ conn: PGConnection, tables: [UInt32]) throws -> [String] {
        guard !tables.isEmpty else { return [] }
        let list = "{" + tables.map(String.init).joined(separator: ",") + "}"
        return try conn.query("""
            SELECT format('%I.%I (%s -> %s)', n.nspname, c.relname, con.conname, con.confrelid::regclass)
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE con.contype = 'f' AND con.conparentid = 0 AND con.confrelid = ANY($1::oid[])
            ORDER BY 1
            """, [list]).rows.compactMap { $0[0] }
    }

    /// The condition selecting rows of `alias` (a referencing table) that point
    /// into `partition`: one `(cols) IN (SELECT ... FROM ONLY partition)` per
    /// foreign key of that table, OR-ed (a row is taken once even if two keys match).
    static func referencingCondition(_ refs: [Reference], alias: String, partition: String) -> String {
        refs.map { ref in
            let cols = ref.columns.map { "\(alias).\(SQL.ident($0))" }.joined(separator: ", ")
            let keys = ref.referenced.map { "p.\(SQL.ident($0))" }.joined(separator: ", ")
            return "(\(cols)) IN (SELECT \(keys) FROM ONLY \(partition) p)"
        }.joined(separator: " OR ")
    }

    /// The referencing tables, each with its foreign keys to the parent.
    static func grouped(_ refs: [Reference]) -> [(schema: String, table: String, oid: UInt32, refs: [Reference])] {
        var order: [String] = []
        var byTable: [String: [Reference]] = [:]
        for r in refs {
            if byTable[r.qualified] == nil { order.append(r.qualified) }
            byTable[r.qualified, default: []].append(r)
        }
        return order.map { q in
            let rs = byTable[q]!
            return (rs[0].schema, rs[0].table, rs[0].oid, rs)
        }
    }

    /// COPY of a query (`... TO STDOUT`) in `format` → row count and digest
    /// (the archive's ``RowDigest``). Cold archives in a folder stay in COPY
    /// text: they are kept for years and may come back into a much later
    /// PostgreSQL, where text is the most portable form. In a format-2
    /// repository the partition's unit is in the backups' format (binary
    /// where the types allow), so that its chunks deduplicate against theirs.
    static func digest(_ conn: PGConnection, _ sql: String, format: CopyFormat = .text) throws -> RowDigest {
        try RowDigest.of(conn, sql + format.options(), format: format)
    }

    /// A bound value for comparison on the server as the key's type; MINVALUE and
    /// MAXVALUE become -infinity and infinity (time types only).
    static func boundValue(_ text: String) -> String {
        switch text {
        case "MINVALUE": return "-infinity"
        case "MAXVALUE": return "infinity"
        default: return text
        }
    }

    /// The advisory lock that keeps two cold-storage runs on one database apart
    /// (archive and restore alike). Held until the connection closes.
    static func acquireLock(_ conn: PGConnection, database: String) throws {
        try AdvisoryLock(job: "cold", database: database).acquire(conn) { who in
            PGVaultError(.server, "another pgvault archive-partitions or restore-partitions is running on database '\(database)'\(who); they never run at once. Wait for it to finish.")
        }
    }

    /// `12months`, `12 months`, `90days`, `1year`, `2weeks` → a PostgreSQL interval.
    static func interval(_ text: String) throws -> String {
        guard let interval = DurationText.calendarInterval(text) else {
            throw PGVaultError.usage("--older-than '\(text)': write a count and a unit of days or longer, e.g. 12months, 90days, 1year, 8weeks")
        }
        return interval
    }
}
