import Foundation

/// A full restore's data and post-data as steps with dependencies, so that
/// each step starts as soon as what it needs is done instead of waiting for
/// a whole phase:
/// - `load`: a data unit (after the pre-data schema);
/// - `key` (primary key, unique, exclusion, NOT VALID check) and `index`:
///   after every load that can put rows into the table: its own units, its
///   ancestors' (rows routed down) and its partitions' (rows under it); on a
///   partitioned table alone (`ON ONLY`), only the loads routed through it;
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

        /// The mode as `pg_locks.mode` names it.
        var name: String {
            switch self {
            case .accessShare: "AccessShareLock"
            case .shareUpdateExclusive: "ShareUpdateExclusiveLock"
            case .share: "ShareLock"
            case .shareRowExclusive: "ShareRowExclusiveLock"
            case .accessExclusive: "AccessExclusiveLock"
            }
        }

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

    enum Kind: String, Sendable { case load, key, index, attach, fk, other, verify }

    /// A load's unit and tables are hundreds of bytes, which would make
    /// every step, and every copy of the steps, that large: a load is its
    /// place in ``loads`` (the plan's list, shared, not copied: boxed in
    /// each step, the 10,050 loads of 10,000 partitions were held twice,
    /// 4.4 MB more). A post-data object is its place in the script's spool.
    enum Work: Sendable {
        case load(Int32)
        case object(SpooledObject)
        indirect case verify(DigestCheck)
    }

    /// A relation a step locks while it runs (a number into ``names``), and how.
    struct Lock: Sendable, Equatable {
        var relation: Int32
        var mode: LockMode
    }

    /// A step without its dependencies and locks, which the graph keeps in
    /// two flat lists for all steps (at 10,000 partitions 150,000 steps,
    /// and two arrays each would be 300,000 heap blocks).
    struct Step: Sendable {
        var kind: Kind
        /// Finished by an earlier run (the journal says so: a unit's row, or
        /// `post-data:N` for the script's object N).
        var done: Bool
        /// The table it works on: a number into ``names``, or -1.
        var relation: Int32
        var work: Work
        /// Bytes of the relation (its unit for a load; for an attachment a
        /// foreign key waits for, the key's, if larger): larger goes first.
        var size: Int64
        /// Lower goes first, before size: with --order newest-first, the
        /// position of the table's first unit in the plan; else 0.
        var rank = 0
    }

    var steps: [Step] = []
    /// The loads the `load` steps name, by number.
    private(set) var loads: [LoadPlan.Load] = []
    /// The relations steps work on or lock, by number: tables and indexes
    /// as `schema.name`, unquoted (PostgreSQL gives both one namespace per
    /// schema).
    var names: [String] = []
    /// Step n's dependencies are `depList[depStart[n]..<depStart[n + 1]]`,
    /// each once; its locks likewise.
    private var depStart: [Int32] = [0]
    private var depList: [Int32] = []
    private var lockStart: [Int32] = [0]
    private var lockList: [Lock] = []

    /// The steps step `n` waits for.
    func deps(of n: Int) -> ArraySlice<Int32> { depList[Int(depStart[n])..<Int(depStart[n + 1])] }
    /// The relations step `n` locks while it runs. Loads lock nothing the
    /// graph does not already order.
    func locks(of n: Int) -> ArraySlice<Lock> { lockList[Int(lockStart[n])..<Int(lockStart[n + 1])] }
    /// Step `n`'s locks that can keep steps apart, for the lower bound:
    /// its modes that conflict with themselves (and, among the restore's
    /// modes, with each other), and SHARE (which conflicts with those).
    func boundLocks(of n: Int) -> [RestoreTimeline.BoundLock] {
        locks(of: n).compactMap { lock in
            let serial = lock.mode.conflicts(with: lock.mode)
            return serial || lock.mode == .share ? RestoreTimeline.BoundLock(relation: Int(lock.relation), serial: serial) : nil
        }
    }
    /// The load step `n` runs, if it is one.
    func load(of n: Int) -> LoadPlan.Load? {
        if case .load(let k) = steps[n].work { loads[Int(k)] } else { nil }
    }
    /// The table step `n` works on.
    func relation(of n: Int) -> String? { steps[n].relation >= 0 ? names[Int(steps[n].relation)] : nil }

    /// Adds a step, with its dependencies and its locks each given once.
    mutating func append(_ step: Step, deps: [Int], locks: [Lock]) {
        depList += deps.lazy.map(Int32.init)
        lockList += locks
        steps.append(step)
        depStart.append(Int32(depList.count))
        lockStart.append(Int32(lockList.count))
    }

    /// Keeps the names of the relations steps work on or lock, numbered
    /// again: a partition's index is named in the script by its build and
    /// its attachment, but no step locks it (at 10,000 partitions, 80,000
    /// names).
    private mutating func keepUsedNames() {
        var renumbered = [Int32](repeating: -1, count: names.count)
        var kept: [String] = []
        func use(_ n: Int32) -> Int32 {
            guard n >= 0 else { return -1 }
            if renumbered[Int(n)] < 0 {
                renumbered[Int(n)] = Int32(kept.count)
                kept.append(names[Int(n)])
            }
            return renumbered[Int(n)]
        }
        for n in steps.indices { steps[n].relation = use(steps[n].relation) }
        for k in lockList.indices { lockList[k].relation = use(lockList[k].relation) }
        names = kept
    }

    /// `finishedUnits`/`finishedSteps`: the journal's, for --resume.
    /// `planOrder`: keep the plan's order of the tables (--order newest-first)
    /// before the sizes. `checks`: the tables to read back (`--verify full`).
    /// The script's names are numbered further (the manifest's tables).
    static func build(
        loads: [LoadPlan.Load], tables: [Manifest.Table], script: inout PostDataScript,
        finishedUnits: [String: Int64], finishedSteps: Set<String>, planOrder: Bool = false,
        checks: [DigestCheck] = []
    ) -> RestoreGraph {
        var graph = RestoreGraph()
        let objects = script.entries
        let count = loads.count + objects.count + checks.count
        graph.steps.reserveCapacity(count)
        graph.depStart.reserveCapacity(count + 1)
        graph.lockStart.reserveCapacity(count + 1)

        // Every relation by number, the script's and the manifest's.
        var parent: [Int32: Int32] = [:], children: [Int32: [Int32]] = [:]
        for t in tables {
            let n = script.number(t.qualifiedName)
            if let ps = t.parentSchema, let pn = t.parentName {
                let p = script.number("\(ps).\(pn)")
                parent[n] = p
                children[p, default: []].append(n)
            }
        }
        let loadRelations = loads.map { (archived: script.number($0.archived.qualifiedName), destination: script.number($0.destination)) }
        let checkRelations = checks.map { (object: script.number($0.object), target: script.number($0.target.qualifiedName)) }
        let relationCount = script.names.count

        func descendants(_ r: Int32) -> [Int32] {
            var out: [Int32] = [], stack = [r]
            while let x = stack.popLast() { for c in children[x] ?? [] { out.append(c); stack.append(c) } }
            return out
        }
        func ancestors(_ r: Int32) -> [Int32] {
            var out: [Int32] = [], x = r
            while let p = parent[x], !out.contains(p) { out.append(p); x = p }
            return out
        }
        func tree(_ r: Int32) -> [Int32] { [r] + ancestors(r) + descendants(r) }
        /// The tree under the root of `r`: what a foreign key on it reads.
        func wholeTree(_ r: Int32) -> [Int32] { let root = ancestors(r).last ?? r; return [root] + descendants(root) }

        /// By relation number: the loads that put rows into it, ...
        var loadsBy = [[Int32]](repeating: [], count: relationCount)
        var firstLoad: [Int32: Int] = [:]
        var bytes: [Int32: Int64] = [:]
        graph.loads = loads
        for (k, (load, r)) in zip(loads, loadRelations).enumerated() {
            let n = graph.steps.count
            graph.append(
                Step(kind: .load, done: finishedUnits[load.unit.id] != nil, relation: r.archived, work: .load(Int32(k)), size: load.unit.rawBytes),
                deps: [], locks: [])
            if planOrder && firstLoad[r.archived] == nil { firstLoad[r.archived] = n }
            loadsBy[Int(r.archived)].append(Int32(n))
            if r.destination != r.archived { loadsBy[Int(r.destination)].append(Int32(n)) }
            bytes[r.archived, default: 0] += load.unit.rawBytes
        }
        func loadsOf(_ relations: [Int32]) -> [Int] { Set(relations.flatMap { loadsBy[Int($0)] }).map(Int.init).sorted() }
        func treeBytes(_ r: Int32) -> Int64 { ([r] + descendants(r)).reduce(0) { $0 + (bytes[$1] ?? 0) } }

        let base = graph.steps.count
        // ... the key and index steps on it, and which of them are unique; by
        // index number, the step that builds it (an attachment or foreign key
        // can name an index built later in the script: these come first).
        var indexStep = [Int32](repeating: -1, count: relationCount)
        var keysBy = [[Int32]](repeating: [], count: relationCount)
        var buildsBy = keysBy, uniqueBy = keysBy
        for (k, object) in objects.enumerated() where object.relation >= 0 && (object.phase == .keys || object.phase == .indexes) {
            let n = Int32(base + k), r = Int(object.relation)
            if object.builds >= 0 { indexStep[Int(object.builds)] = n }
            if object.phase == .keys { keysBy[r].append(n) }
            buildsBy[r].append(n)
            if object.unique { uniqueBy[r].append(n) }
        }
        /// The attachments of a table's unique indexes: what a foreign key
        /// that references it waits for (a partitioned index is valid, and
        /// can back a foreign key, once every partition's index is attached).
        /// The other attachments it does not need, and at 10,000 partitions
        /// they are 70,000 statements that can run beside it.
        var uniqueAttachesBy = keysBy.map { _ in [Int32]() }
        /// An attachment's two index steps.
        func attached(_ object: PostDataScript.Entry) -> (parent: Int, child: Int)? {
            guard object.attachParent >= 0, object.attachChild >= 0 else { return nil }
            let p = indexStep[Int(object.attachParent)], c = indexStep[Int(object.attachChild)]
            return p >= 0 && c >= 0 ? (Int(p), Int(c)) : nil
        }
        for (k, object) in objects.enumerated() where object.phase == .attach {
            if let (p, _) = attached(object), objects[p - base].unique, objects[p - base].relation >= 0 {
                uniqueAttachesBy[Int(objects[p - base].relation)].append(Int32(base + k))
            }
        }

        let kinds: [Kind] = objects.map {
            switch $0.phase {
            case .keys: .key
            case .indexes: .index
            case .attach: .attach
            case .foreignKeys: .fk
            case .rest: .other
            }
        }
        var firstOther: Int?
        var lastOther: Int?
        /// Attachments a foreign key waits for, and that key's step.
        var waitedFor: [(attachment: Int, key: Int)] = []
        for (k, object) in objects.enumerated() {
            let n = base + k
            let kind = kinds[k]
            let relation = object.relation
            var deps: [Int] = []
            var locks: [Lock] = []
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
                if relation >= 0 {
                    // On a partitioned table alone (pg_dump builds a parent's
                    // keys and indexes ON ONLY it, then attaches each
                    // partition's) it reads no rows: it waits only for the
                    // loads that go through the table. At 1,000 partitions
                    // the parent's key waited for every partition's load,
                    // so did the attachments of the partitions' keys, and
                    // so the foreign keys that reference them.
                    deps = object.only && children[relation] != nil ? loadsOf([relation] + ancestors(relation)) : loadsOf(tree(relation))
                    locks = [Lock(relation: relation, mode: kind == .key ? .accessExclusive : .share)]
                } else {
                    deps = conservative()
                }
            case .attach:
                if let (p, c) = attached(object) {
                    deps = [p, c]
                    for r in Set([p, c].map { objects[$0 - base].relation }) where r >= 0 {
                        locks.append(Lock(relation: r, mode: .accessShare))
                    }
                    locks.append(Lock(relation: object.attachParent, mode: .shareUpdateExclusive))
                    // The partition's index is locked ACCESS EXCLUSIVE too, but
                    // no other step locks it (its build locks the table; an
                    // index attaches to one parent), so it orders nothing: at
                    // 10,000 partitions it would be 80,000 locks held for nothing.
                    about = objects[c - base].relation
                } else {
                    deps = conservative()
                }
            case .fk:
                if relation >= 0, object.referenced >= 0 {
                    let own = wholeTree(relation), other = wholeTree(object.referenced)
                    var d = Set(loadsOf(own + other))
                    for r in own { d.formUnion(keysBy[Int(r)].map(Int.init)) }
                    for r in other {
                        d.formUnion(uniqueBy[Int(r)].map(Int.init))
                        for a in uniqueAttachesBy[Int(r)] {
                            d.insert(Int(a))
                            waitedFor.append((Int(a), n))
                        }
                    }
                    deps = d.sorted()
                    // Two trees are one (a key that references its own tree) or apart.
                    locks = (own[0] == other[0] ? own : own + other).map { Lock(relation: $0, mode: .shareRowExclusive) }
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
            graph.append(
                Step(kind: kind, done: finishedSteps.contains("post-data:\(object.index)"), relation: about,
                     work: .object(object.spooled), size: kind == .attach || about < 0 ? 0 : treeBytes(about)),
                deps: deps, locks: locks)
        }
        // An attachment goes last (size 0): it is quick, and it takes no
        // lock a foreign key conflicts with, so it is what a connection can
        // do beside the foreign keys on a partitioned table, which cannot
        // overlap each other or any build on its partitions. Built early,
        // at 1,000 partitions, the 6,000 attachments of the partitions'
        // other indexes left one connection idle for the foreign keys' 4.5 s.
        // An attachment a foreign key waits for goes as early as that key
        // would: by a partition's size it would go after the attachments of
        // every other index, and at 10,000 partitions the two foreign keys
        // on `messages` (minutes each, and they cannot overlap) waited for
        // the last of 70,000 attachments with the other connection idle.
        for (a, key) in waitedFor { graph.steps[a].size = max(graph.steps[a].size, graph.steps[key].size) }
        // A table's read-back: after its rows are in (the loads of its tree)
        // and its keys and indexes are built, whose locks it would wait on.
        // Its ACCESS SHARE conflicts only with ACCESS EXCLUSIVE: a foreign
        // key's SHARE ROW EXCLUSIVE does not stop it.
        for (check, r) in zip(checks, checkRelations) {
            let own = [r.target] + descendants(r.target)
            let deps = Set(loadsOf(tree(r.object) + tree(r.target))).union(own.flatMap { buildsBy[Int($0)].map(Int.init) })
            graph.append(
                Step(kind: .verify, done: false, relation: r.object, work: .verify(check), size: check.units.reduce(0) { $0 + $1.rawBytes }),
                deps: deps.sorted(), locks: own.map { Lock(relation: $0, mode: .accessShare) })
        }
        if planOrder {
            for n in graph.steps.indices {
                let r = graph.steps[n].relation
                graph.steps[n].rank = graph.steps[n].kind == .load ? n
                    : r < 0 ? Int.max : firstLoad[r] ?? ancestors(r).lazy.compactMap { firstLoad[$0] }.first ?? Int.max
            }
        }
        graph.names = script.names
        graph.keepUsedNames()
        graph.depList = graph.depList.trimmed()
        graph.lockList = graph.lockList.trimmed()
        return graph
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
            case .load(let k): id = "load:\(loads[Int(k)].unit.id)"
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
