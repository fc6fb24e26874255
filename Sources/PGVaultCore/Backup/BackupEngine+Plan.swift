import Foundation
import PGClient

extension BackupEngine {
    // MARK: - Selection and units

    static func select(_ relations: [Catalog.Relation], options: BackupOptions) throws -> [Catalog.Relation] {
        // pgvault's own bookkeeping tables are never part of a backup's data.
        let candidates = relations.filter { !$0.table.schema.hasPrefix("pgvault") }
        func matches(_ r: Catalog.Relation, _ patterns: [String]) -> Bool {
            patterns.contains { p in
                Glob.matches(p, r.table.qualifiedName) || Glob.matches(p, r.table.name)
            }
        }
        // By name, not by a scan: a database with 10,000 partitions asks for
        // the ancestors of each.
        let byName = Dictionary(candidates.map { (Key($0.table.schema, $0.table.name), $0) }, uniquingKeysWith: { a, _ in a })
        func ancestors(_ r: Catalog.Relation) -> [Catalog.Relation] {
            var out: [Catalog.Relation] = []
            var current = r
            while let ps = current.table.parentSchema, let pn = current.table.parentName, let parent = byName[Key(ps, pn)] {
                out.append(parent)
                current = parent
            }
            return out
        }
        // A partition is selected when it or an ancestor matches.
        let included = candidates.filter { r in
            options.tables.isEmpty || matches(r, options.tables) || ancestors(r).contains { matches($0, options.tables) }
        }
        let excluded = included.filter { r in
            matches(r, options.excludeTables) || ancestors(r).contains { matches($0, options.excludeTables) }
        }
        let excludedNames = Set(excluded.map(\.table.qualifiedName))
        for pattern in options.tables where !candidates.contains(where: { matches($0, [pattern]) }) {
            throw PGVaultError(.server, "--table '\(pattern)' matches no table in the database; check the name (patterns are schema.table or table, with * and ?)")
        }
        var selected = included.filter { !excludedNames.contains($0.table.qualifiedName) }
        // A selected partition brings its parents, so the archive knows where it belongs.
        var names = Set(selected.map(\.table.qualifiedName))
        for r in selected {
            for a in ancestors(r) where names.insert(a.table.qualifiedName).inserted { selected.append(a) }
        }
        return Catalog.orderParentsFirst(selected)
    }

    /// The tables pg_dump is to name (`--table`), or nil when the selection
    /// is every table (pgvault's own aside): then it dumps the whole schema
    /// (functions, views, types...).
    static func namedTables(_ plan: Plan) -> [Catalog.Relation]? {
        plan.selected.count == plan.relations.filter({ !$0.table.schema.hasPrefix("pgvault") }).count ? nil : plan.selected
    }

    /// A table's schema and name, as a dictionary key.
    struct Key: Hashable {
        var schema: String
        var name: String
        init(_ schema: String, _ name: String) {
            self.schema = schema
            self.name = name
        }
    }

    /// The tables with their rows: the sum over each one's units. One pass
    /// over the units, so the cost stays linear at 10,000 partitions (a
    /// filter of every unit for every table took seconds there).
    static func countingRows(_ tables: [Manifest.Table], _ units: [Manifest.Unit]) -> [Manifest.Table] {
        var rows: [Key: Int64] = [:]
        for unit in units { rows[Key(unit.schema, unit.table), default: 0] += unit.rows }
        return tables.map { table in
            var counted = table
            counted.rows = rows[Key(table.schema, table.name)] ?? 0
            return counted
        }
    }

    struct PlannedUnit: Sendable {
        var id: String
        var relation: Catalog.Relation
        var fromPage: Int64?
        var toPage: Int64?
        var estimatedBytes: Int64
        var format: CopyFormat
    }

    /// One unit per table or partition with data, big ones split into ctid page
    /// ranges; largest first so the longest unit starts first.
    static func planUnits(_ selected: [Catalog.Relation], splitBytes: Int64, binary: Bool) -> [PlannedUnit] {
        var planned: [(Catalog.Relation, Int64?, Int64?, Int64)] = []
        for r in selected where r.table.kind != "partitioned" {
            let blockSize = r.pages > 0 ? r.bytes / r.pages : 8192
            if r.bytes > splitBytes && splitBytes > 0 {
                let pagesPer = max(1, splitBytes / max(blockSize, 1))
                var from: Int64 = 0
                while from < r.pages {
                    let to = from + pagesPer
                    // The last range is open-ended: pages added after the size was read.
                    planned.append((r, from, to >= r.pages ? nil : to, min(pagesPer, r.pages - from) * blockSize))
                    from = to
                }
            } else {
                planned.append((r, nil, nil, r.bytes))
            }
        }
        let ordered = planned.sorted { $0.3 > $1.3 }
        return ordered.enumerated().map { i, p in
            PlannedUnit(id: String(format: "u%05d", i + 1), relation: p.0, fromPage: p.1, toPage: p.2, estimatedBytes: p.3,
                        format: binary && p.0.binaryCopy ? .binary : .text)
        }
    }

    static func copyStatement(_ unit: PlannedUnit, columns: [String]) -> String {
        let t = SQL.qualified(unit.relation.table.schema, unit.relation.table.name)
        let cols = columns.map(SQL.ident).joined(separator: ", ")
        if unit.fromPage == nil && unit.toPage == nil {
            return "COPY \(t) (\(cols)) TO STDOUT\(unit.format.options())"
        }
        return "COPY (SELECT \(cols) FROM ONLY \(t) WHERE \(pageConditions(unit).joined(separator: " AND "))) TO STDOUT\(unit.format.options())"
    }

    /// A split table's unit reads the heap pages [fromPage, toPage); none for a whole table.
    static func pageConditions(_ unit: PlannedUnit) -> [String] {
        if unit.fromPage == nil && unit.toPage == nil { return [] }
        var conditions = ["ctid >= '(\(unit.fromPage ?? 0),0)'::tid"]
        if let to = unit.toPage { conditions.append("ctid < '(\(to),0)'::tid") }
        return conditions
    }
}
