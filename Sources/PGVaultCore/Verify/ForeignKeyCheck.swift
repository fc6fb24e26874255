import Foundation
import PGClient

/// One orphan check: rows of `child` whose key columns are set but match no
/// row of `parent`. Built from a declared foreign key or from a
/// ``DeclaredRelation``.
struct OrphanCheck: Sendable, Equatable {
    /// `foreign-key` or `relation`.
    var check: String
    /// The constraint's name, or the relation as written.
    var constraint: String
    var child: DeclaredRelation.End
    var parent: DeclaredRelation.End
    /// Plain tables are read with ONLY (a foreign key does not reach
    /// inheritance children); partitioned tables with all their partitions.
    var childPartitioned = false
    var parentPartitioned = false
    /// MATCH FULL: a row whose key columns are partly NULL is an orphan too.
    var matchFull = false
    /// False for a NOT VALID constraint (never checked by the server).
    var validated = true

    static let sampleLimit = 5

    /// The rows of `child` violating the relation: one anti-join (`NOT EXISTS`),
    /// which the planner runs as a hash, merge or index nested-loop anti-join.
    /// MATCH SIMPLE skips rows with any NULL key column. MATCH FULL skips only
    /// all-NULL rows: a partly NULL key matches nothing, so it is counted.
    var orphanQuery: String {
        let childCols = child.columns.map { "c." + SQL.ident($0) }
        let keep = matchFull && childCols.count > 1
            ? "num_nulls(\(childCols.joined(separator: ", "))) < \(childCols.count)"
            : childCols.map { "\($0) IS NOT NULL" }.joined(separator: " AND ")
        let join = zip(parent.columns, childCols).map { "p.\(SQL.ident($0)) OPERATOR(pg_catalog.=) \($1)" }
            .joined(separator: " AND ")
        return """
            FROM \(childPartitioned ? "" : "ONLY ")\(SQL.qualified(child.schema, child.table)) c \
            WHERE \(keep) AND NOT EXISTS (SELECT 1 FROM \(parentPartitioned ? "" : "ONLY ")\
            \(SQL.qualified(parent.schema, parent.table)) p WHERE \(join))
            """
    }

    /// One scan: per offending key its rows, with the totals over all keys as
    /// windows, for the first few keys.
    var sql: String {
        let values = child.columns.map { "c.\(SQL.ident($0))" }.joined(separator: ", ")
        let texts = child.columns.map { "c.\(SQL.ident($0))::text" }.joined(separator: ", ")
        return """
            SELECT sum(count(*)) OVER (), count(*) OVER (), count(*), \(texts) \(orphanQuery) \
            GROUP BY \(values) LIMIT \(Self.sampleLimit)
            """
    }

    var arrow: String {
        "(\(child.columns.joined(separator: ", "))) → \(parent.qualifiedName)(\(parent.columns.joined(separator: ", ")))"
    }

    func run(_ conn: PGConnection) throws -> VerifyFinding {
        let result = try conn.query(sql)
        let notValid = validated ? "" : " (NOT VALID constraint)"
        guard let first = result.rows.first else {
            return .ok(check, child.qualifiedName, constraint: constraint, "no orphan rows: \(arrow)\(notValid)")
        }
        let rows = try first.int64(0), keys = try first.int64(1)
        let samples = try result.rows.map { r in
            let count = try r.int64(2)
            return KeyText.format(child.columns, Array(r.dropFirst(3))) + (count == 1 ? "" : " (\(count) rows)")
        }
        return .failed(
            check, child.qualifiedName, constraint: constraint,
            "\(rows) row(s) with \(keys) distinct key(s) reference no row of \(parent.qualifiedName): \(arrow)\(notValid)",
            samples: samples)
    }
}

enum ForeignKeys {
    /// Every foreign key of the database's user schemas, including NOT VALID
    /// ones. For a partitioned table only the constraint of the partitioned
    /// parent is taken (conparentid = 0), not its clones on each partition.
    static func declared(_ conn: PGConnection) throws -> [OrphanCheck] {
        let rows = try conn.query("""
            SELECT c.conname, cn.nspname, cc.relname, cc.relkind = 'p', pn.nspname, pc.relname, pc.relkind = 'p',
                   c.confmatchtype = 'f', c.convalidated,
                   array_to_json(ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o))::text,
                   array_to_json(ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o))::text
            FROM pg_constraint c
            JOIN pg_class cc ON cc.oid = c.conrelid
            JOIN pg_namespace cn ON cn.oid = cc.relnamespace
            JOIN pg_class pc ON pc.oid = c.confrelid
            JOIN pg_namespace pn ON pn.oid = pc.relnamespace
            WHERE c.contype = 'f' AND c.conparentid = 0
              AND cn.nspname NOT IN ('pg_catalog', 'information_schema')
              AND cn.nspname NOT LIKE 'pg\\_toast%' AND cn.nspname NOT LIKE 'pg\\_temp%'
            ORDER BY cn.nspname, cc.relname, c.conname
            """)
        return try rows.rows.map { r in
            OrphanCheck(
                check: "foreign-key", constraint: try r.string(0),
                child: .init(schema: try r.string(1), table: try r.string(2), columns: try names(try r.string(9))),
                parent: .init(schema: try r.string(4), table: try r.string(5), columns: try names(try r.string(10))),
                childPartitioned: try r.bool(3), parentPartitioned: try r.bool(6),
                matchFull: try r.bool(7), validated: try r.bool(8))
        }
    }

    private static func names(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }

    /// Turns relations from a relations file into checks, looking their tables
    /// and columns up; one that names something missing becomes a failed finding.
    static func resolve(_ relations: [DeclaredRelation], _ conn: PGConnection) throws -> ([OrphanCheck], [VerifyFinding]) {
        var checks: [OrphanCheck] = []
        var problems: [VerifyFinding] = []
        for relation in relations {
            let (child, parent) = try relation.ends()
            do {
                let childPartitioned = try lookUp(child, conn)
                let parentPartitioned = try lookUp(parent, conn)
                checks.append(OrphanCheck(
                    check: "relation", constraint: relation.description, child: child, parent: parent,
                    childPartitioned: childPartitioned, parentPartitioned: parentPartitioned))
            } catch let error as PGVaultError where error.kind == .verification {
                problems.append(.failed("relation", child.qualifiedName, constraint: relation.description, error.description))
            }
        }
        return (checks, problems)
    }

    /// Whether the table is partitioned; throws if it or a column is missing.
    private static func lookUp(_ end: DeclaredRelation.End, _ conn: PGConnection) throws -> Bool {
        let r = try conn.query("""
            SELECT c.relkind = 'p', array_to_json(ARRAY(SELECT a.attname FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))::text
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
            """, [end.schema, end.table])
        guard let row = r.rows.first else { throw PGVaultError(.verification, "table \(end.qualifiedName) does not exist") }
        let columns = Set(try names(try row.string(1)))
        if let missing = end.columns.first(where: { !columns.contains($0) }) {
            throw PGVaultError(.verification, "column \(missing) of \(end.qualifiedName) does not exist")
        }
        return try row.bool(0)
    }
}

/// Keys as pgvault shows them: `id=42`, `(id, created_at)=(42, 2024-01-01 00:00:00+00)`.
enum KeyText {
    static func format(_ columns: [String], _ values: [String?]) -> String {
        let shown = values.map { $0 ?? "NULL" }
        if columns.count == 1, let value = shown.first { return "\(columns[0])=\(value)" }
        return "(\(columns.joined(separator: ", ")))=(\(shown.joined(separator: ", ")))"
    }

    /// The fields of one COPY text row at `indexes` (tab-separated; `\N` is NULL).
    /// Values stay in COPY's escaped form, which is printable.
    static func fields(_ row: UnsafeRawBufferPointer, _ indexes: [Int]) -> [String?] {
        var found: [Int: String?] = [:]
        var field = 0, start = 0
        let wanted = Set(indexes)
        let n = row.last == 0x0A ? row.count - 1 : row.count
        for i in 0...n where i == n || row[i] == 0x09 {
            if wanted.contains(field) {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: row[start..<i]), as: UTF8.self)
                found[field] = text == "\\N" ? nil : text
            }
            field += 1
            start = i + 1
        }
        return indexes.map { found[$0] ?? nil }
    }
}
