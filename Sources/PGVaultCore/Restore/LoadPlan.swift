import PGClient

/// Which units a restore loads, into which target tables, and how; which
/// partitions it must create first; and what differs between the archive's
/// tables and the target's. Pure: computed from the manifest and the target's
/// catalog, so the same inputs (a --resume) give the same plan.
///
/// Partitions are matched by their bounds, not their names:
/// - an archived partition goes into the target partition of the matched
///   parent whose bound expression is identical (both are read with
///   TimeZone UTC, so the text compares exactly);
/// - missing, with the parent partitioned by the same key: it is created from
///   the archive's bound (unless --no-create-partitions), under its archived
///   name or a fresh one if that is taken;
/// - otherwise (another key, a bound that overlaps the target's partitions
///   without being identical, creation off, or a target that is a plain
///   table) its rows are copied into the target parent and the server routes them;
/// - an archived DEFAULT partition goes straight into the target's DEFAULT
///   partition only when every target partition has an identical archived
///   one (then no default row can belong elsewhere); else it is routed.
public struct LoadPlan: Sendable {
    public struct Load: Sendable, Equatable {
        public var unit: Manifest.Unit
        /// The archived table or partition the unit belongs to.
        public var archived: Manifest.Table
        /// Where COPY writes.
        public var schema: String
        public var name: String
        /// COPY into a partitioned table: the server routes each row.
        public var routed: Bool
        /// TRUNCATE + COPY FREEZE in the unit's transaction: the only unit
        /// writing into a table no other unit reaches.
        public var freeze: Bool
        /// For a routed unit of a regular (non-DEFAULT) archived partition: the
        /// target's DEFAULT partitions under the destination, where rows that
        /// fit no partition land (counted and reported).
        public var defaultPartitions: [RelationName] = []

        public var destination: String { "\(schema).\(name)" }
    }

    public struct RelationName: Sendable, Equatable, Hashable {
        public var schema: String
        public var name: String
        public var qualified: String { "\(schema).\(name)" }
        public var sql: String { SQL.qualified(schema, name) }
    }

    public struct Creation: Sendable, Equatable {
        /// The archived partition it stands for.
        public var archived: String
        public var schema: String
        public var name: String
        public var parentSchema: String
        public var parentName: String
        public var bound: String
        /// For an archived sub-partitioned partition: its PARTITION BY.
        public var partitionBy: String?

        public var sql: String {
            "CREATE TABLE \(SQL.qualified(schema, name)) PARTITION OF \(SQL.qualified(parentSchema, parentName)) \(bound)"
                + (partitionBy.map { " PARTITION BY \($0)" } ?? "")
        }
    }

    public var loads: [Load]
    /// Partitions to create before loading; then plan again.
    public var creations: [Creation]
    /// What differs between archive and target; a restore with any refuses to load.
    public var differences: [String]
    public var notes: [String]
    /// Target partitioned tables some units are routed through.
    public var routedParents: [String]

    // MARK: - Selection

    /// The archived leaf tables (plain tables and partitions holding rows)
    /// chosen by --table/--exclude-table and the time window.
    public static func select(
        _ manifest: Manifest, tables: [String], exclude: [String], window: TimeWindow, includeDefault: Bool
    ) throws -> [Manifest.Table] {
        let byName = Dictionary(manifest.tables.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        func chain(_ t: Manifest.Table) -> [Manifest.Table] {
            var out = [t]
            var current = t
            while let ps = current.parentSchema, let pn = current.parentName, let parent = byName["\(ps).\(pn)"], out.count < 64 {
                out.append(parent)
                current = parent
            }
            return out
        }
        func matches(_ t: Manifest.Table, _ patterns: [String]) -> Bool {
            patterns.contains { Glob.matches($0, t.qualifiedName) || Glob.matches($0, t.name) }
        }
        for pattern in tables + exclude where !manifest.tables.contains(where: { matches($0, [pattern]) }) {
            let flag = tables.contains(pattern) ? "--table" : "--exclude-table"
            throw PGVaultError.archive("\(flag) '\(pattern)' matches no table in the archive; patterns are schema.table or table, with * and ?")
        }
        func inWindow(_ chain: [Manifest.Table]) -> Bool {
            guard !window.isUnbounded else { return true }
            for t in chain {
                guard let bound = t.bound else { continue }
                if bound.isDefault {
                    if !includeDefault { return false }
                } else if let from = bound.rangeFrom, let to = bound.rangeTo, window.overlaps(from: from, to: to) == false {
                    return false
                }
            }
            return true
        }
        return manifest.tables.filter { t in
            guard t.kind != "partitioned" else { return false }
            let c = chain(t)
            return (tables.isEmpty || c.contains { matches($0, tables) }) && !c.contains { matches($0, exclude) } && inWindow(c)
        }
    }

    // MARK: - Planning

    public struct Target: Sendable {
        public var tables: [Manifest.Table]
        /// `schema.table` → columns with a default or identity (a NOT NULL
        /// column the archive lacks is fine if it has one).
        public var columnsWithDefault: [String: Set<String>]
        /// Every relation name in use, `schema.name` (for fresh partition names).
        public var relationNames: Set<String>
        public var sequences: Set<String>
        /// Versions in the target's `_sqlx_migrations`, if it has one.
        public var migrations: [Int64]?

        public init(tables: [Manifest.Table], columnsWithDefault: [String: Set<String>] = [:], relationNames: Set<String> = [],
                    sequences: Set<String> = [], migrations: [Int64]? = nil) {
            self.tables = tables
            self.columnsWithDefault = columnsWithDefault
            self.relationNames = relationNames.union(tables.map(\.qualifiedName))
            self.sequences = sequences
            self.migrations = migrations
        }
    }

    /// sqlx's bookkeeping: a target built by the migrations has its own rows.
    static let migrationsTable = "public._sqlx_migrations"

    public static func make(
        manifest: Manifest, selected: [Manifest.Table], target: Target, dataOnly: Bool,
        createPartitions: Bool, failedCreations: Set<String> = [], order: RestoreOptions.Order = .size
    ) -> LoadPlan {
        // Tables by name and by parent, as places in the manifest's and the
        // target's lists: at 10,000 partitions a copy of each table per
        // lookup structure was tens of MB at the restore's peak.
        let archivedIndex = Dictionary(manifest.tables.indices.map { (manifest.tables[$0].qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        let targetIndex = Dictionary(target.tables.indices.map { (target.tables[$0].qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        func archivedByName(_ name: String) -> Manifest.Table? { archivedIndex[name].map { manifest.tables[$0] } }
        func targetByName(_ name: String) -> Manifest.Table? { targetIndex[name].map { target.tables[$0] } }
        func parentKey(_ t: Manifest.Table) -> String? {
            guard let s = t.parentSchema, let n = t.parentName else { return nil }
            return "\(s).\(n)"
        }
        func children(_ tables: [Manifest.Table]) -> [String: [Int]] {
            var out: [String: [Int]] = [:]
            for i in tables.indices { if let pk = parentKey(tables[i]) { out[pk, default: []].append(i) } }
            return out
        }
        let targetChildIndexes = children(target.tables), archivedChildIndexes = children(manifest.tables)
        func targetChildren(_ name: String) -> [Manifest.Table] { (targetChildIndexes[name] ?? []).map { target.tables[$0] } }
        func archivedChildren(_ name: String) -> [Manifest.Table] { (archivedChildIndexes[name] ?? []).map { manifest.tables[$0] } }

        var differences: [String] = []
        var notes: [String] = []
        var creations: [Creation] = []
        var taken = target.relationNames

        /// A target table is its place in `target.tables`.
        enum Resolution {
            case table(Int)
            case route(Int)
            case pending
            case missing
        }
        var memo: [String: Resolution] = [:]

        func resolve(_ a: Manifest.Table) -> Resolution {
            if let known = memo[a.qualifiedName] { return known }
            let result: Resolution
            if let pk = parentKey(a), let parent = archivedByName(pk) {
                switch resolve(parent) {
                case .missing: result = .missing
                case .pending: result = .pending
                case .route(let t): result = .route(t)
                case .table(let t): result = resolveChild(a, parent: parent, in: t)
                }
            } else if let t = targetIndex[a.qualifiedName] {
                result = .table(t)
            } else {
                differences.append("\(a.qualifiedName): the table is not in the target")
                result = .missing
            }
            memo[a.qualifiedName] = result
            return result
        }

        func resolveChild(_ a: Manifest.Table, parent: Manifest.Table, in ti: Int) -> Resolution {
            let t = target.tables[ti]
            guard t.kind == "partitioned" else { return .route(ti) }
            guard let key = t.partitioning?.keyDefinition, key == parent.partitioning?.keyDefinition,
                  let bound = a.bound else { return .route(ti) }
            let children = targetChildIndexes[t.qualifiedName] ?? []
            if bound.isDefault {
                if let d = children.first(where: { target.tables[$0].bound?.isDefault == true }) {
                    let archivedBounds = Set(archivedChildren(parent.qualifiedName).compactMap { $0.bound?.expression })
                    let covered = children.allSatisfy {
                        target.tables[$0].bound?.isDefault == true || archivedBounds.contains(target.tables[$0].bound?.expression ?? "")
                    }
                    return covered ? .table(d) : .route(ti)
                }
            } else if let same = children.first(where: { target.tables[$0].bound?.expression == bound.expression }) {
                return .table(same)
            }
            guard createPartitions, !failedCreations.contains(a.qualifiedName) else { return .route(ti) }
            var name = a.name
            var n = 1
            while taken.contains("\(a.schema).\(name)") {
                let suffix = n == 1 ? "_restored" : "_restored\(n)"
                var base = a.name
                while base.utf8.count + suffix.utf8.count > 63 { base.removeLast() }
                name = base + suffix
                n += 1
            }
            taken.insert("\(a.schema).\(name)")
            creations.append(Creation(
                archived: a.qualifiedName, schema: a.schema, name: name, parentSchema: t.schema, parentName: t.name,
                bound: bound.expression, partitionBy: a.kind == "partitioned" ? a.partitioning?.keyDefinition : nil))
            return .pending
        }

        // Column compatibility, table by table, for each archived root reached.
        // Tables with binary units, and their ancestors: binary COPY takes fewer widenings.
        var binary = Set<String>()
        let lookup = manifest.lookup
        for u in manifest.units where u.format == .binary {
            var table = lookup.table(schema: u.schema, name: u.table)
            while let t = table, binary.insert(t.qualifiedName).inserted {
                table = t.parentName.flatMap { lookup.table(schema: t.parentSchema ?? t.schema, name: $0) }
            }
        }
        var compared = Set<String>()
        func compare(_ a: Manifest.Table, _ t: Manifest.Table) {
            guard compared.insert(a.qualifiedName + "→" + t.qualifiedName).inserted else { return }
            differences += columnDifferences(
                a, t, withDefault: target.columnsWithDefault[t.qualifiedName] ?? [], binary: binary.contains(a.qualifiedName))
        }

        var loads: [Load] = []
        loads.reserveCapacity(manifest.units.count)
        var pendingUnits = 0
        var unitsByTable: [String: [Int]] = [:]
        for i in manifest.units.indices { unitsByTable[manifest.units[i].qualifiedTable, default: []].append(i) }
        for leaf in selected {
            if dataOnly && leaf.qualifiedName == migrationsTable {
                notes.append("\(migrationsTable) is not loaded: with --data-only the target's migrations are its own")
                continue
            }
            let units = (unitsByTable[leaf.qualifiedName] ?? []).lazy.map { manifest.units[$0] }
            // The root in the archive, and its counterpart, for the column check.
            var root = leaf
            while let pk = parentKey(root), let p = archivedByName(pk) { root = p }
            switch resolve(root) {
            case .table(let t), .route(let t): compare(root, target.tables[t])
            default: break
            }
            switch resolve(leaf) {
            case .table(let ti), .route(let ti):
                let t = target.tables[ti]
                for unit in units {
                    loads.append(Load(unit: unit, archived: leaf, schema: t.schema, name: t.name, routed: t.kind == "partitioned", freeze: false))
                }
            case .pending:
                pendingUnits += units.count
            case .missing:
                break
            }
        }

        // Sequences and migrations: a prepared target must have what the archive sets.
        if dataOnly {
            for s in manifest.sequences where !target.sequences.contains("\(s.schema).\(s.name)") {
                differences.append("sequence \(s.schema).\(s.name): not in the target")
            }
            if let archived = manifest.migrations, let have = target.migrations {
                let missing = Set(archived).subtracting(have).sorted()
                if !missing.isEmpty {
                    differences.append("migrations: the archive's database had \(missing.count) the target lacks (\(missing.prefix(5).map(String.init).joined(separator: ", "))); run the migrations first")
                }
                let newer = Set(have).subtracting(archived)
                if !newer.isEmpty { notes.append("the target has \(newer.count) migration(s) newer than the archive's") }
            }
        }

        // Routed parents, and FREEZE where exactly one unit reaches a table.
        let routedParents = Set(loads.filter(\.routed).map(\.destination))
        var writers: [String: Int] = [:]
        for l in loads { writers[l.destination, default: 0] += 1 }
        func targetAncestors(_ name: String) -> [String] {
            var out: [String] = []
            var current = targetByName(name)
            while let c = current, let pk = parentKey(c), out.count < 64 {
                out.append(pk)
                current = targetByName(pk)
            }
            return out
        }
        func defaults(under parent: String) -> [RelationName] {
            targetChildren(parent).flatMap { child in
                (child.bound?.isDefault == true && child.kind != "partitioned" ? [RelationName(schema: child.schema, name: child.name)] : [])
                    + defaults(under: child.qualifiedName)
            }
        }
        for i in loads.indices where loads[i].routed && loads[i].archived.bound?.isDefault != true {
            loads[i].defaultPartitions = defaults(under: loads[i].destination)
        }
        for i in loads.indices where !loads[i].routed {
            let d = loads[i].destination
            loads[i].freeze = writers[d] == 1 && loads[i].unit.fromPage == nil && loads[i].unit.toPage == nil
                && !targetAncestors(d).contains(where: routedParents.contains)
                && targetByName(d)?.kind != "partitioned"
        }
        if pendingUnits > 0 && creations.isEmpty {
            notes.append("\(pendingUnits) unit(s) wait for partitions to be created")
        }
        sort(&loads, order)
        return LoadPlan(
            loads: loads, creations: creations, differences: differences, notes: notes,
            routedParents: routedParents.sorted())
    }

    /// In place: at 10,000 partitions the loads are MBs, and a sorted copy as much again.
    static func sort(_ loads: inout [Load], _ order: RestoreOptions.Order) {
        switch order {
        case .size:
            loads.sort { ($0.unit.rawBytes, $1.unit.id) > ($1.unit.rawBytes, $0.unit.id) }
        case .newestFirst:
            func key(_ l: Load) -> (Int, Double) {
                guard let bound = l.archived.bound else { return (0, -Double(l.unit.rawBytes)) }
                if bound.isDefault { return (3, 0) }
                if let to = bound.rangeTo?.first, let t = TimePoint.parse(to) { return (1, -t) }
                return (2, -Double(l.unit.rawBytes))
            }
            loads.sort { (key($0).0, key($0).1, $0.unit.id) < (key($1).0, key($1).1, $1.unit.id) }
        }
    }

    // MARK: - Column compatibility

    /// What keeps the archive's rows of `a` from loading into `t`, one line each.
    static func columnDifferences(_ a: Manifest.Table, _ t: Manifest.Table, withDefault: Set<String>, binary: Bool = false) -> [String] {
        var out: [String] = []
        let name = a.qualifiedName == t.qualifiedName ? a.qualifiedName : "\(a.qualifiedName) (target \(t.qualifiedName))"
        let targetColumns = Dictionary(t.columns.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for c in a.columns {
            guard let tc = targetColumns[c.name] else {
                if !c.generated { out.append("\(name): column \(c.name) (\(c.type)) is not in the target") }
                continue
            }
            if c.generated != tc.generated {
                out.append(c.generated
                    ? "\(name): column \(c.name) is generated in the archive (its values are not stored there) but a plain column in the target"
                    : "\(name): column \(c.name) holds data in the archive but is generated in the target")
            } else if !c.generated && !TypeCompatibility.accepts(archived: c.type, target: tc.type, binary: binary) {
                out.append("\(name): column \(c.name) is \(c.type) in the archive but \(tc.type) in the target"
                    + (binary && TypeCompatibility.accepts(archived: c.type, target: tc.type) ? " (a widening COPY text allows, but this archive holds the table in binary COPY: restore from a --copy-format text backup)" : ""))
            }
        }
        let archivedNames = Set(a.columns.map(\.name))
        for tc in t.columns where !archivedNames.contains(tc.name) && tc.notNull && !tc.generated && !withDefault.contains(tc.name) {
            out.append("\(name): column \(tc.name) (\(tc.type)) is NOT NULL without a default in the target and not in the archive")
        }
        return out
    }
}

/// Whether COPY text written from a column of one type loads unchanged into a
/// column of another: the same type, or a wider one whose text form of the
/// same value is the same (so row digests still match). Binary COPY takes
/// only the widenings whose binary form is the same type's (a longer varchar,
/// varchar to text, a dropped numeric or timestamp modifier), and for arrays
/// the same element type (the array's binary form names it).
public enum TypeCompatibility {
    public static func accepts(archived: String, target: String, binary: Bool = false) -> Bool {
        if archived == target { return true }
        let aArray = archived.hasSuffix("[]"), tArray = target.hasSuffix("[]")
        guard aArray == tArray else { return false }
        let a = aArray ? String(archived.dropLast(2)) : archived
        let t = tArray ? String(target.dropLast(2)) : target
        if a == t { return true }
        if binary && aArray && strip(a) != strip(t) { return false }
        let integers = ["smallint": 0, "integer": 1, "bigint": 2]
        if binary && integers[a] != nil { return false }
        if let ra = integers[a] {
            if let rt = integers[t] { return rt >= ra }
            return t == "numeric"
        }
        if let (base, n) = modifier(a), let (tbase, m) = modifier(t) {
            // varchar(n) → varchar(m ≥ n), numeric(p,s) is not widened (scale changes the text).
            return base == tbase && base == "character varying" && m >= n
        }
        if a.hasPrefix("character varying") { return t == "text" || t == "character varying" }
        if a == "text" { return t == "character varying" }
        if a.hasPrefix("numeric(") { return t == "numeric" }
        if let (base, _) = modifier(a), base.hasPrefix("timestamp") || base.hasPrefix("time") {
            // timestamp(3) with time zone → timestamp with time zone: more precision, same text.
            return strip(a) == t
        }
        return false
    }

    /// `character varying(32)` → ("character varying", 32).
    static func modifier(_ type: String) -> (String, Int)? {
        guard let open = type.firstIndex(of: "("), let close = type.firstIndex(of: ")"), open < close,
              let n = Int(type[type.index(after: open)..<close]) else { return nil }
        return (String(type[..<open]), n)
    }

    /// `timestamp(3) with time zone` → `timestamp with time zone`.
    static func strip(_ type: String) -> String {
        guard let open = type.firstIndex(of: "("), let close = type.firstIndex(of: ")"), open < close else { return type }
        return String(type[..<open]) + String(type[type.index(after: close)...])
    }
}
