import PGClient

/// Session settings under which COPY text is produced and read. Backup, restore
/// and verification all use them, so a value reads back byte-identical on any
/// supported server version and a row digest computed on the source equals the
/// one computed on a restored copy.
public enum CopySession {
    public static let settings: [(String, String)] = [
        ("DateStyle", "ISO, YMD"),
        ("IntervalStyle", "postgres"),
        ("TimeZone", "UTC"),
        ("extra_float_digits", "3"),
        ("bytea_output", "hex"),
        ("standard_conforming_strings", "on"),
        ("xmloption", "content"),
    ]

    public static var asDictionary: [String: String] {
        Dictionary(uniqueKeysWithValues: settings)
    }

    /// Applies the settings, with client_encoding set to the database's encoding
    /// (as pg_dump does) so text is never transcoded.
    public static func apply(_ conn: PGConnection) throws {
        var sql = settings.map { "SET \($0.0) = \(SQL.literal($0.1))" }
        if let encoding = conn.parameterStatus("server_encoding") {
            sql.append("SET client_encoding = \(SQL.literal(encoding))")
        }
        try conn.execute(sql.joined(separator: "; "))
    }
}

/// Reads what pgvault needs to know about tables from the system catalogs:
/// plain tables, partitioned parents and their partitions with bounds, columns,
/// keys and sizes. User schemas only (not pg_catalog, information_schema,
/// pg_toast or temporary schemas).
public enum Catalog {
    public struct Relation: Sendable {
        public var oid: UInt32
        public var table: Manifest.Table
        /// Heap size in bytes, and pages (for splitting into ctid ranges).
        public var bytes: Int64
        public var pages: Int64
        public var relfilenode: String
        /// Every stored column's type reads back the same from binary COPY in
        /// any database (see ``Catalog/columnsByTable(_:)``).
        public var binaryCopy: Bool
    }

    /// Every user table, partitioned table and partition, parents before their
    /// partitions, in a stable order.
    public static func relations(_ conn: PGConnection) throws -> [Relation] {
        // Read row by row (here and below): at 10,000 partitions the columns
        // alone are 160,000 rows, 60 MB when held as one result.
        let (columns, binarySafe) = try columnsByTable(conn)
        let keys = try keyColumns(conn)
        var result: [Relation] = []
        try conn.forEachRow("""
            SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relispartition,
                   pn.nspname, p.relname,
                   CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                   CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                   CASE WHEN c.relkind = 'p' THEN pt.partstrat::text END,
                   CASE WHEN c.relkind = 'p' THEN (
                       SELECT string_agg(a.attname, ',' ORDER BY k.ord)
                       FROM unnest(pt.partattrs::int2[]) WITH ORDINALITY k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) END,
                   pg_relation_size(c.oid), c.relpages::bigint, c.relfilenode::text,
                   current_setting('block_size')::bigint
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
            LEFT JOIN pg_class p ON p.oid = i.inhparent
            LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
            LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
            WHERE c.relkind IN ('r', 'p')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
            ORDER BY n.nspname, c.relname
            """) { r in
            let oid = try r.uint32(0)
            let kind = r[3] == "p" ? "partitioned" : (r[4] == "t" ? "partition" : "table")
            var partitioning: Manifest.Partitioning?
            if r[3] == "p" {
                let code = try r.string(9)
                partitioning = Manifest.Partitioning(
                    strategy: ["r": "range", "l": "list", "h": "hash"][code] ?? code, keyDefinition: try r.string(8),
                    // NULL when the key is all expressions: no key columns then.
                    keyColumns: (try r.optionalString(10) ?? "").split(separator: ",").map(String.init))
            }
            let bound = r[7].map(parseBound)
            let blockSize = try r.int64(14)
            // pg_relation_size is NULL for a table dropped since our snapshot began: it has no bytes left to size.
            let bytes = try r.optionalInt64(11) ?? 0
            let table = Manifest.Table(
                schema: try r.string(1), name: try r.string(2), kind: kind, columns: columns[oid] ?? [],
                partitioning: partitioning, parentSchema: r[5], parentName: r[6], bound: bound,
                keyColumns: keys[oid], rows: 0)
            result.append(Relation(oid: oid, table: table, bytes: bytes, pages: bytes / blockSize, relfilenode: try r.string(13),
                                   binaryCopy: binarySafe[oid] ?? true))
        }
        // Parents first: a partition after its parent (sub-partitions nest).
        return orderParentsFirst(result)
    }

    static func orderParentsFirst(_ relations: [Relation]) -> [Relation] {
        var placed = Set<String>()
        var out: [Relation] = []
        var pending = relations
        while !pending.isEmpty {
            var rest: [Relation] = []
            for r in pending {
                if let ps = r.table.parentSchema, let pn = r.table.parentName, !placed.contains("\(ps).\(pn)"),
                   pending.contains(where: { $0.table.schema == ps && $0.table.name == pn }) {
                    rest.append(r)
                } else {
                    out.append(r)
                    placed.insert(r.table.qualifiedName)
                }
            }
            if rest.count == pending.count { out += rest; break }
            pending = rest
        }
        return out
    }

    /// Columns by table, and whether binary COPY suits each table. A column's
    /// binary form suits when it means the same in any database: a built-in
    /// type (or a domain over one) with send and receive functions, except the
    /// reg* types (their binary form is an OID); or an enum (sent as its
    /// label). Not: user-defined base, composite or range types, or arrays of
    /// non-built-in types, whose binary forms embed this database's type OIDs.
    ///
    /// Type names come from format_type() under search_path `pg_catalog`, so
    /// every type outside pg_catalog is schema-qualified (`public.mood`)
    /// whatever the session's search_path: a backup's session and a restore's
    /// (pg_dump's empty search_path) name a type alike.
    static func columnsByTable(_ conn: PGConnection) throws -> (columns: [UInt32: [Manifest.Column]], binary: [UInt32: Bool]) {
        let saved = try conn.query("SELECT pg_catalog.current_setting('search_path')").firstRow().string(0)
        try conn.execute("SET search_path = pg_catalog")
        defer { _ = try? conn.query("SELECT pg_catalog.set_config('search_path', $1, false)", [saved]) }
        var out: [UInt32: [Manifest.Column]] = [:]
        var binary: [UInt32: Bool] = [:]
        // Rows come table by table. A finished table's list is shared with an
        // equal one before (a partition has its parent's columns), so 10,000
        // partitions hold one list, not 10,000.
        var shared: [[Manifest.Column]: [Manifest.Column]] = [:]
        var current: (oid: UInt32, columns: [Manifest.Column])?
        func finish() {
            guard let (oid, columns) = current else { return }
            if let same = shared[columns] { out[oid] = same } else { shared[columns] = columns; out[oid] = columns }
            current = nil
        }
        try conn.forEachRow("""
            SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> '',
                   b.typtype = 'e'
                   OR (b.oid < 16384 AND b.typtype <> 'd' AND b.typsend <> 0 AND b.typreceive <> 0 AND b.typname !~ '^_?reg')
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_type t ON t.oid = a.atttypid
            JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
            WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            ORDER BY a.attrelid, a.attnum
            """) { r in
            let oid = try r.uint32(0)
            let column = Manifest.Column(name: try r.string(1), type: try r.string(2), notNull: try r.bool(3), generated: try r.bool(4))
            if current?.oid != oid {
                finish()
                current = (oid, [])
            }
            current?.columns.append(column)
            if !column.generated {
                let safe = try r.bool(5)
                binary[oid] = (binary[oid] ?? true) && safe
            }
        }
        finish()
        return (out, binary)
    }

    /// Primary key columns, or else those of a unique index whose columns are all NOT NULL.
    static func keyColumns(_ conn: PGConnection) throws -> [UInt32: [String]] {
        var out: [UInt32: [String]] = [:]
        try conn.forEachRow("""
            SELECT DISTINCT ON (i.indrelid) i.indrelid,
                   (SELECT string_agg(a.attname, ',' ORDER BY k.ord)
                    FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE (i.indisprimary OR i.indisunique) AND i.indexprs IS NULL AND i.indpred IS NULL
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) k(attnum)
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                              WHERE NOT a.attnotnull OR k.attnum = 0)
            ORDER BY i.indrelid, i.indisprimary DESC, i.indnatts
            """) { r in
            out[try r.uint32(0)] = try r.string(1).split(separator: ",").map(String.init)
        }
        return out
    }

    /// Parses `FOR VALUES FROM (...) TO (...)` / `DEFAULT` / list and hash bounds.
    public static func parseBound(_ expression: String) -> Manifest.Bound {
        if expression == "DEFAULT" {
            return Manifest.Bound(expression: expression, isDefault: true)
        }
        var bound = Manifest.Bound(expression: expression, isDefault: false)
        if expression.hasPrefix("FOR VALUES FROM ("),
           let toRange = expression.range(of: ") TO (") {
            let from = expression[expression.index(expression.startIndex, offsetBy: 17)..<toRange.lowerBound]
            var to = expression[toRange.upperBound...]
            if to.hasSuffix(")") { to = to.dropLast() }
            bound.rangeFrom = splitValues(String(from))
            bound.rangeTo = splitValues(String(to))
        }
        return bound
    }

    /// Splits `'a', 'b''c', MINVALUE` into values, unquoting string constants.
    static func splitValues(_ text: String) -> [String] {
        var values: [String] = []
        var current = ""
        var inQuote = false
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if inQuote {
                if c == "'" {
                    if i + 1 < chars.count && chars[i + 1] == "'" { current.append("'"); i += 1 } else { inQuote = false }
                } else { current.append(c) }
            } else if c == "'" {
                inQuote = true
            } else if c == "," {
                values.append(current.trimmingSpaces())
                current = ""
            } else {
                current.append(c)
            }
            i += 1
        }
        values.append(current.trimmingSpaces())
        return values
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
