import Foundation

/// A full restore's data and post-data as steps with dependencies, so that
/// each step starts as soon as what it needs is done instead of waiting for
/// a whole phase:
/// - `load`: a data unit (after the pre-data schema);
/// - `key` (primary key, unique, exclusion, NOT VALID check) and `index`:
///   after every load that can put rows into the table: its own units, its
///   ancestors' (rows routed down) and its partitions' (rows under it);
/// - `attach` (`ALTER INDEX parent ATTACH PARTITION child`): after the two
///   indexes it names;
/// - `fk`: after both tables' loads and keys, and the referenced tree's
///   unique indexes and their attachments;
/// - `other` (triggers, rules, policies, comments, grants, materialized view
///   data...): after everything else, one after another in the dump's order,
///   as the phase runner did: a trigger must not fire during the load, and
///   these are not classified further;
/// - `verify` (`--verify full`): a table's read-back against the archive,
///   after the loads that put rows into it and its own keys and indexes.
/// Whatever cannot be resolved (a name that does not parse) waits for every
/// step of the kinds before it, as the phase runner made it.
///
/// Steps also name the relations they lock and in which of PostgreSQL's
/// lock modes, so the scheduler does not start a step that would only wait
/// on another's lock (and starts every step that would not).
struct RestoreGraph: Sendable {
    /// The table-level lock modes the restore's statements take, numbered
    /// as PostgreSQL numbers them (lockdefs.h).
    enum LockMode: Int, Sendable, CaseIterable {
        /// A read (`--verify full`'s COPY); ATTACH PARTITION on both tables.
        case accessShare = 1
        /// `ALTER INDEX parent ATTACH PARTITION` on the parent index.
        case shareUpdateExclusive = 4
        /// CREATE INDEX.
        case share = 5
        /// ADD FOREIGN KEY, on both tables.
        case shareRowExclusive = 6
        /// ADD PRIMARY KEY / UNIQUE / other constraints, and ATTACH
        /// PARTITION on the partition's index.
        case accessExclusive = 8

        /// PostgreSQL's conflict table, for these modes.
        func conflicts(with other: LockMode) -> Bool {
            switch (self, other) {
            case (.accessExclusive, _), (_, .accessExclusive): return true
            case (.accessShare, _), (_, .accessShare): return false
            case (.share, .share): return false
            default: return true  // 4, 5 and 6 conflict with each other and with themselves
            }
        }
    }

    /// The lock key of an index (schema.name): indexes are relations too,
    /// named apart from tables.
    static func indexLock(_ name: String) -> String { "index " + name }

    enum Kind: String, Sendable { case load, key, index, attach, fk, other, verify }

    /// A load's unit and tables are hundreds of bytes, which would make
    /// every step, and every copy of the steps, that large: boxed
    /// (indirect). A post-data object is its place in the script's spool.
    enum Work: Sendable {
        indirect case load(LoadPlan.Load)
        case object(SpooledObject)
        indirect case verify(DigestCheck)
    }

    struct Step: Sendable {
        var kind: Kind
        /// `schema.table`, unquoted.
        var relation: String?
        var work: Work
        var deps: [Int]
        /// Bytes of the relation (its unit for a load): larger goes first.
        var size: Int64
        /// Lower goes first, before size: with --order newest-first, the
        /// position of the table's first unit in the plan; else 0.
        var rank = 0
        /// Relations locked while it runs, and how. Loads lock nothing the
        /// graph does not already order.
        /// (A list, not a dictionary: one dictionary per step is a heap
        /// block of its own, per partition several.)
        var locks: [(relation: String, mode: LockMode)]
        /// Finished by an earlier run (the journal says so: a unit's row, or
        /// `post-data:N` for the script's object N).
        var done: Bool
    }

    var steps: [Step]

    /// `finishedUnits`/`finishedSteps`: the journal's, for --resume.
    /// `planOrder`: keep the plan's order of the tables (--order newest-first)
    /// before the sizes. `checks`: the tables to read back (`--verify full`).
    static func build(
        loads: [LoadPlan.Load], tables: [Manifest.Table], objects: [PostDataScript.Entry],
        finishedUnits: [String: Int64], finishedSteps: Set<String>, planOrder: Bool = false,
        checks: [DigestCheck] = []
    ) -> RestoreGraph {
        var steps: [Step] = []
        steps.reserveCapacity(loads.count + objects.count + checks.count)

        // The partition trees.
        var parent: [String: String] = [:], children: [String: [String]] = [:]
        for t in tables {
            if let ps = t.parentSchema, let pn = t.parentName {
                parent[t.qualifiedName] = "\(ps).\(pn)"
                children["\(ps).\(pn)", default: []].append(t.qualifiedName)
            }
        }
        func descendants(_ r: String) -> [String] {
            var out: [String] = [], stack = [r]
            while let x = stack.popLast() { for c in children[x] ?? [] { out.append(c); stack.append(c) } }
            return out
        }
        func ancestors(_ r: String) -> [String] {
            var out: [String] = [], x = r
            while let p = parent[x], !out.contains(p) { out.append(p); x = p }
            return out
        }
        func tree(_ r: String) -> [String] { [r] + ancestors(r) + descendants(r) }
        /// The tree under the root of `r`: what a foreign key on it reads.
        func wholeTree(_ r: String) -> [String] { let root = ancestors(r).last ?? r; return [root] + descendants(root) }

        var loadsBy: [String: [Int]] = [:]
        var firstLoad: [String: Int] = [:]
        var bytes: [String: Int64] = [:]
        for load in loads {
            let n = steps.count
            steps.append(Step(
                kind: .load, relation: load.archived.qualifiedName, work: .load(load),
                deps: [], size: load.unit.rawBytes, locks: [], done: finishedUnits[load.unit.id] != nil))
            if planOrder { firstLoad[load.archived.qualifiedName] = firstLoad[load.archived.qualifiedName] ?? n }
            for r in Set([load.destination, load.archived.qualifiedName]) { loadsBy[r, default: []].append(n) }
            bytes[load.archived.qualifiedName, default: 0] += load.unit.rawBytes
        }
        func loadsOf(_ relations: [String]) -> [Int] { Array(Set(relations.flatMap { loadsBy[$0] ?? [] })).sorted() }
        func treeBytes(_ r: String) -> Int64 { ([r] + descendants(r)).reduce(0) { $0 + (bytes[$1] ?? 0) } }

        // Index names (schema.name, unquoted) → the key/index step that builds it.
        var indexStep: [String: Int] = [:]
        var keysBy: [String: [Int]] = [:], buildsBy: [String: [Int]] = [:], uniqueBy: [String: [Int]] = [:], uniqueAttachesBy: [String: [Int]] = [:]
        var firstOther: Int?
        var lastOther: Int?
        // Classify first: an attachment or foreign key can name an index built later in the script.
        var kinds: [Kind] = []
        for object in objects {
            switch SchemaScript.Phase.of(type: object.type) {
            case .keys: kinds.append(.key)
            case .indexes: kinds.append(.index)
            case .attach: kinds.append(.attach)
            case .foreignKeys: kinds.append(.fk)
            case .rest: kinds.append(.other)
            }
        }
        let base = steps.count
        // One string per relation, shared by every step that names it.
        var names: [String: String] = [:]
        func shared(_ name: String) -> String {
            if let known = names[name] { return known }
            names[name] = name
            return name
        }
        let relations = objects.map { $0.relation.map(shared) }
        for (k, object) in objects.enumerated() {
            let relation = relations[k]
            let n = base + k
            if let relation, kinds[k] == .key || kinds[k] == .index {
                if let index = object.builds { indexStep[index] = n }
                if kinds[k] == .key { keysBy[relation, default: []].append(n) }
                buildsBy[relation, default: []].append(n)
                if object.unique { uniqueBy[relation, default: []].append(n) }
            }
        }
        for (k, object) in objects.enumerated() {
            let n = base + k
            let kind = kinds[k]
            let relation = relations[k]
            var deps: [Int] = []
            var locks: [String: LockMode] = [:]
            var about = relation
            /// Every step of the kinds before `kind` in the phase runner's order.
            func conservative() -> [Int] {
                let order: [Kind] = [.load, .key, .index, .attach, .fk]
                let before = Set(order.prefix { $0 != kind })
                return (before.contains(.load) ? Array(0..<base) : [])
                    + (base..<base + objects.count).filter { before.contains(kinds[$0 - base]) }
            }
            switch kind {
            case .key, .index:
                if let relation {
                    deps = loadsOf(tree(relation))
                    locks[relation] = kind == .key ? .accessExclusive : .share
                } else {
                    deps = conservative()
                }
            case .attach:
                if let (parentIndex, childIndex) = object.attachment,
                   let p = indexStep[parentIndex], let c = indexStep[childIndex] {
                    deps = [p, c]
                    for s in [p, c] { if let r = relations[s - base] { locks[r] = .accessShare } }
                    // Hundreds of attachments lock one parent index: one string for it.
                    locks[shared(Self.indexLock(parentIndex))] = .shareUpdateExclusive
                    // The partition's index is locked ACCESS EXCLUSIVE too, but
                    // no other step locks it (its build locks the table; an
                    // index attaches to one parent), so it orders nothing: at
                    // 10,000 partitions it would be 80,000 names held for nothing.
                    // What a foreign key that references the table waits for:
                    // the attachments of its unique indexes (the others it
                    // does not need, and at 10,000 partitions they are 70,000
                    // statements that can run beside it).
                    if let r = relations[p - base], objects[p - base].unique { uniqueAttachesBy[r, default: []].append(n) }
                    about = relations[c - base]
                } else {
                    deps = conservative()
                }
            case .fk:
                if let relation, let referenced = object.referenced {
                    let own = wholeTree(relation), other = wholeTree(referenced)
                    var d = Set(loadsOf(own + other))
                    for r in own { d.formUnion(keysBy[r] ?? []) }
                    for r in other { d.formUnion(uniqueBy[r] ?? []) }
                    // The referenced tree's attachments are added below, once all are known.
                    deps = d.sorted()
                    for r in own + other { locks[r] = .shareRowExclusive }
                } else {
                    deps = conservative()
                }
            case .other, .load, .verify:
                if firstOther == nil {
                    firstOther = n
                    deps = (0..<n).filter { $0 < base || kinds[$0 - base] != .other }
                        + (n + 1..<base + objects.count).filter { kinds[$0 - base] != .other }
                } else if let lastOther {
                    deps = [lastOther]
                }
                lastOther = n
            }
            steps.append(Step(
                kind: kind,
                relation: about, work: .object(object.spooled), deps: deps,
                size: about.map(treeBytes) ?? 0, locks: locks.map { ($0.key, $0.value) }, done: finishedSteps.contains("post-data:\(object.index)")))
        }
        // A foreign key waits for the attachments of the referenced tree's
        // unique indexes, wherever they are in the script: a partitioned
        // index is valid, and can back a foreign key, once every partition's
        // index is attached.
        for (k, object) in objects.enumerated() where kinds[k] == .fk {
            let n = base + k
            guard let referenced = object.referenced, steps[n].relation != nil else { continue }
            let extra = wholeTree(referenced).flatMap { uniqueAttachesBy[$0] ?? [] }
            steps[n].deps = Array(Set(steps[n].deps + extra)).sorted()
        }
        // A table's read-back: after its rows are in (the loads of its tree)
        // and its keys and indexes are built, whose locks it would wait on.
        // Its ACCESS SHARE conflicts only with ACCESS EXCLUSIVE: a foreign
        // key's SHARE ROW EXCLUSIVE does not stop it.
        for check in checks {
            let relation = check.target.qualifiedName
            let relations = Array(Set(tree(check.object) + tree(relation)))
            let own = [relation] + descendants(relation)
            let deps = Set(loadsOf(relations)).union(own.flatMap { buildsBy[$0] ?? [] })
            steps.append(Step(
                kind: .verify, relation: check.object, work: .verify(check),
                deps: deps.sorted(), size: check.units.reduce(0) { $0 + $1.rawBytes },
                locks: own.map { ($0, .accessShare) }, done: false))
        }
        if planOrder {
            for n in steps.indices {
                steps[n].rank = steps[n].relation.flatMap { firstLoad[$0] ?? ancestors($0).lazy.compactMap { firstLoad[$0] }.first } ?? Int.max
                if steps[n].kind == .load { steps[n].rank = n }
            }
        }
        return RestoreGraph(steps: steps)
    }

    /// The steps' names, for the timeline only (a graph of 150,000 steps
    /// does not keep a string for each): `load:<unit>`,
    /// `<kind>:<schema.name>` of a post-data object (read back from the
    /// script's spool), `verify:<table>`. A name pg_dump repeats (a COMMENT
    /// and its object) gets the step's number.
    func ids() throws -> [String] {
        var seen = Set<String>()
        return try steps.enumerated().map { n, step in
            let id: String
            switch step.work {
            case .load(let load): id = "load:\(load.unit.id)"
            case .verify(let check): id = "verify:\(check.object)"
            case .object(let spooled):
                let object = try spooled.read()
                id = "\(step.kind.rawValue):\(object.schema.map { "\($0)." } ?? "")\(object.name)"
            }
            let unique = seen.contains(id) ? "\(id)#\(n)" : id
            seen.insert(unique)
            return unique
        }
    }
}

/// A `schema.name` as pg_dump writes it (each part quoted when it must be),
/// read back into its parts.
struct QualifiedName: Sendable, Equatable {
    var schema: String
    var name: String
    var text: String { "\(schema).\(name)" }

    /// `public.users`, `"Ops"."Job Runs"`; nil unless exactly a qualified name.
    static func parse(_ s: String) -> QualifiedName? {
        var rest = Substring(s)
        guard let q = scan(&rest), rest.isEmpty else { return nil }
        return q
    }

    /// Reads a qualified name at the start of `s` and leaves the rest.
    static func scan(_ s: inout Substring) -> QualifiedName? {
        guard let a = ident(&s), s.first == "." else { return nil }
        s = s.dropFirst()
        guard let b = ident(&s) else { return nil }
        return QualifiedName(schema: a, name: b)
    }

    /// One identifier: `"..."` (with `""` for a quote) or plain.
    static func ident(_ s: inout Substring) -> String? {
        if s.first == "\"" {
            var out = "", i = s.index(after: s.startIndex)
            while i < s.endIndex {
                if s[i] == "\"" {
                    let next = s.index(after: i)
                    if next < s.endIndex && s[next] == "\"" { out.append("\""); i = s.index(after: next); continue }
                    s = s[next...]
                    return out
                }
                out.append(s[i])
                i = s.index(after: i)
            }
            return nil
        }
        let plain = s.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }
        guard !plain.isEmpty else { return nil }
        s = s.dropFirst(plain.count)
        return String(plain)
    }

    /// The index a key or index object builds: `ADD CONSTRAINT name ...` or `CREATE [UNIQUE] INDEX name ON ...`.
    static func indexName(_ object: SchemaScript.Object) -> String? {
        for marker in ["ADD CONSTRAINT ", "CREATE UNIQUE INDEX ", "CREATE INDEX "] {
            guard let r = object.sql.range(of: marker) else { continue }
            var rest = object.sql[r.upperBound...]
            return ident(&rest)
        }
        return nil
    }

    /// `ALTER INDEX parent ATTACH PARTITION child;` → (parent, child).
    static func attachment(_ sql: String) -> (QualifiedName, QualifiedName)? {
        guard sql.hasPrefix("ALTER INDEX ") else { return nil }
        var rest = sql.dropFirst("ALTER INDEX ".count)
        guard let parent = scan(&rest), rest.hasPrefix(" ATTACH PARTITION ") else { return nil }
        rest = rest.dropFirst(" ATTACH PARTITION ".count)
        guard let child = scan(&rest) else { return nil }
        return (parent, child)
    }

    /// The table a foreign key references: `... REFERENCES schema.table(...)`.
    static func referenced(_ sql: String) -> QualifiedName? {
        guard let r = sql.range(of: " REFERENCES ") else { return nil }
        var rest = sql[r.upperBound...]
        return scan(&rest)
    }
}
