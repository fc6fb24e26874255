import Foundation

/// The restore's statement timeline: one entry per step, written as JSON
/// Lines by `pgvault restore --timeline FILE` (scripts replay it to predict
/// other --jobs), and the lower bound of the scheduled part computed from it.
///
/// The entries go to the file as the restore makes them, never all held: at
/// 10,000 partitions there are 150,000 of them, and a foreign key's names
/// 10,000 dependencies and as many locks; held whole they raised the
/// restore's peak RSS from 98 to 278 MiB. The file is written under a
/// temporary name and renamed into place, fsynced, by ``finish()``.
///
/// One task uses it at a time (the restore's engine, and the blocking calls
/// it awaits one after another), hence `@unchecked Sendable`.
public final class RestoreTimeline: @unchecked Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var id: String
        /// schema, load, key, index, attach, fk, other, sequence, statistics, verify, analyze.
        public var kind: String
        /// `schema.table`, or nil.
        public var relation: String?
        /// The steps that must finish before this one, under the dependency rules.
        public var deps: [String]
        /// Seconds since the restore started.
        public var start: Double
        public var end: Double
        /// The connection's number, 0 for the leader.
        public var worker: Int
        /// Bytes loaded (load steps), else 0.
        public var bytes: Int64
        /// The table-level locks the step took, as `pg_locks.mode` names them
        /// (`ShareRowExclusiveLock public.messages`); the scheduler never runs
        /// two steps whose locks conflict, and a replay must not either.
        public var locks: [String]

        enum CodingKeys: String, CodingKey { case id, kind, relation, deps, start, end, worker, bytes, locks }

        public init(
            id: String, kind: String, relation: String?, deps: [String], start: Double, end: Double, worker: Int, bytes: Int64,
            locks: [String] = []
        ) {
            (self.id, self.kind, self.relation, self.deps) = (id, kind, relation, deps)
            (self.start, self.end, self.worker, self.bytes, self.locks) = (start, end, worker, bytes, locks)
        }

        /// A timeline written before steps recorded their locks has none.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                id: try c.decode(String.self, forKey: .id), kind: try c.decode(String.self, forKey: .kind),
                relation: try c.decodeIfPresent(String.self, forKey: .relation), deps: try c.decode([String].self, forKey: .deps),
                start: try c.decode(Double.self, forKey: .start), end: try c.decode(Double.self, forKey: .end),
                worker: try c.decode(Int.self, forKey: .worker), bytes: try c.decode(Int64.self, forKey: .bytes),
                locks: try c.decodeIfPresent([String].self, forKey: .locks) ?? [])
        }

        /// `relation` is written as null, not left out.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(kind, forKey: .kind)
            try c.encode(relation, forKey: .relation)
            try c.encode(deps, forKey: .deps)
            try c.encode(start, forKey: .start)
            try c.encode(end, forKey: .end)
            try c.encode(worker, forKey: .worker)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(locks, forKey: .locks)
        }
    }

    /// The scheduled part's bound: no schedule over `jobs` connections beats
    /// the longest chain of dependent steps, nor the summed statement time
    /// shared evenly, nor the steps that cannot overlap because their locks
    /// on one relation conflict (at 10,000 partitions the two foreign keys
    /// that reference `messages`, minutes each, run one after the other).
    public struct Bound: Codable, Sendable, Equatable {
        /// The longest chain of dependent steps; where the steps a step waits
        /// for cannot overlap for their locks on one relation, they count one
        /// after another.
        public var criticalPathSeconds: Double
        public var statementSeconds: Double
        public var jobs: Int
        /// The longest run of steps that must go one after another for their
        /// locks on one relation: from the earliest any of them can start,
        /// all of them, then the shortest chain that must follow the last.
        /// Where other steps conflict with every one of them (a partition's
        /// index build with each foreign key that locks the whole tree), it
        /// adds the least time those need with no step of the run beside:
        /// their sum over `jobs`, or the longest; or, for the whole scheduled
        /// part, the run and then the rest of the statement time over `jobs`,
        /// less what can run beside it (`besideChain`). 0 when no two steps'
        /// locks conflict.
        public var lockSeconds: Double
        /// The relation of ``lockSeconds``.
        public var lockRelation: String?
        /// max(the critical path, the statement time / jobs, the lock chain).
        public var lowerBoundSeconds: Double

        public init(criticalPathSeconds: Double, statementSeconds: Double, jobs: Int, lockSeconds: Double = 0, lockRelation: String? = nil) {
            self.criticalPathSeconds = criticalPathSeconds
            self.statementSeconds = statementSeconds
            self.jobs = jobs
            self.lockSeconds = lockSeconds
            self.lockRelation = lockRelation
            lowerBoundSeconds = max(criticalPathSeconds, statementSeconds / Double(max(1, jobs)), lockSeconds)
        }
    }

    /// A relation a step locks, for the bound: `serial` when the mode
    /// conflicts with itself (SHARE UPDATE EXCLUSIVE, SHARE ROW EXCLUSIVE,
    /// ACCESS EXCLUSIVE, which also conflict with each other), else a SHARE
    /// lock (CREATE INDEX), which conflicts with each of those but not with
    /// another SHARE. Weaker locks are left out.
    struct BoundLock {
        var relation: Int
        var serial: Bool
    }

    /// The bound of steps numbered from 0: each one's statement time
    /// (`durations`), the numbers of the steps it waits for (`deps`) and the
    /// locks it takes (`locks`). Numbers, not the entries' ids: at 10,000
    /// partitions there are some 150,000 steps, and a table of strings for
    /// them is tens of MB.
    static func bound(
        durations: [Double], deps: (Int) -> [Int], locks: (Int) -> [BoundLock] = { _ in [] }, relationName: (Int) -> String? = { _ in nil },
        jobs: Int
    ) -> Bound {
        // An order with every step after the steps it waits for, from a
        // depth-first walk; iterative, as chains can be long.
        var order: [Int] = []
        order.reserveCapacity(durations.count)
        var visited = [Bool](repeating: false, count: durations.count)
        var stack: [(Int, Bool)] = []
        for root in durations.indices where !visited[root] {
            stack.append((root, false))
            while let (n, expanded) = stack.popLast() {
                if expanded {
                    order.append(n)
                } else if !visited[n] {
                    visited[n] = true
                    stack.append((n, true))
                    for d in deps(n) where !visited[d] { stack.append((d, false)) }
                }
            }
        }
        let stepLocks = durations.indices.map(locks)
        // The longest chain ending at each step (its own time included). A
        // step starts after the steps it waits for, and after those of them
        // whose locks on one relation conflict have run one after another
        // (at many partitions a foreign key waits for each partition's key
        // to be attached to one index, one attachment at a time).
        var path = [Double](repeating: 0, count: durations.count)
        for n in order {
            var start = 0.0
            var serial: [Int: (earliest: Double, seconds: Double)] = [:]
            for d in deps(n) {
                start = max(start, path[d])
                for lock in stepLocks[d] where lock.serial {
                    let earliest = path[d] - durations[d]
                    let before = serial[lock.relation] ?? (earliest, 0)
                    serial[lock.relation] = (min(before.earliest, earliest), before.seconds + durations[d])
                }
            }
            for (_, run) in serial { start = max(start, run.earliest + run.seconds) }
            path[n] = start + durations[n]
        }
        // Longest chain of steps that wait on each one (its own time not included).
        var tail = [Double](repeating: 0, count: durations.count)
        for n in order.reversed() {
            for d in deps(n) { tail[d] = max(tail[d], durations[n] + tail[n]) }
        }
        // Steps whose locks on one relation conflict pairwise run one after
        // another: every serial lock, and the longest SHARE one beside them.
        struct Group {
            var serialSeconds = 0.0, serialSteps = 0
            var earliest = Double.infinity, shortestTail = Double.infinity
            var share: (seconds: Double, earliest: Double, tail: Double)?
        }
        var groups: [Int: Group] = [:]
        for n in durations.indices {
            let earliest = path[n] - durations[n]
            for lock in stepLocks[n] {
                var g = groups[lock.relation] ?? Group()
                if lock.serial {
                    g.serialSeconds += durations[n]
                    g.serialSteps += 1
                    g.earliest = min(g.earliest, earliest)
                    g.shortestTail = min(g.shortestTail, tail[n])
                } else if durations[n] > g.share?.seconds ?? -1 {
                    g.share = (durations[n], earliest, tail[n])
                }
                groups[lock.relation] = g
            }
        }
        var chains: [(seconds: Double, relation: Int)] = []
        for (relation, g) in groups where g.serialSteps > 0 && g.serialSteps + (g.share == nil ? 0 : 1) > 1 {
            var chain = g.earliest + g.serialSeconds + g.shortestTail
            if let share = g.share {
                chain = max(chain, min(g.earliest, share.earliest) + g.serialSeconds + share.seconds + min(g.shortestTail, share.tail))
            }
            chains.append((chain, relation))
        }
        chains.sort { $0.seconds != $1.seconds ? $0.seconds > $1.seconds : $0.relation < $1.relation }
        var lockSeconds = chains.first?.seconds ?? 0, lockRelation = chains.first?.relation
        // The longest chains again, with the steps that cannot run beside
        // any of them (below): at 10,000 partitions, the partitions' 70,000
        // keys and index builds, which no foreign key on `messages` lets run.
        for (_, relation) in chains.prefix(4) {
            let chain = besideChain(relation: relation, durations: durations, deps: deps, locks: stepLocks, path: path, tail: tail, jobs: jobs)
            if chain > lockSeconds { (lockSeconds, lockRelation) = (chain, relation) }
        }
        return Bound(
            criticalPathSeconds: path.max() ?? 0, statementSeconds: durations.reduce(0, +), jobs: jobs,
            lockSeconds: lockSeconds, lockRelation: lockRelation.flatMap(relationName))
    }

    /// A lock chain with the steps beside it: take `chain`, some of the
    /// steps that lock `relation` in a self-conflicting mode (which run one
    /// after another), and `beside`, every other step that takes a SHARE or
    /// self-conflicting lock on a relation each of `chain` locks in such a
    /// mode. A step of `beside` conflicts with every step of `chain`, so it
    /// runs only while none of them does, and in that time the steps of
    /// `beside` have at most `jobs` connections (they may conflict with
    /// each other too; the bound does not count that). So the wall time is
    /// at least the larger of:
    /// - from the earliest any of them can start to the shortest chain after
    ///   the last: sum(chain) + max(sum(beside) / jobs, the longest of beside);
    /// - for the whole: sum(chain), then the rest of the statement time over
    ///   `jobs`, less what the other `jobs - 1` connections can do while the
    ///   chain runs. That is at most the time of the steps that can run
    ///   beside it: not `beside`, and not the steps every step of the chain
    ///   waits for, which are done before it starts. At 1,000 partitions the
    ///   foreign keys on `messages` wait for its loads, keys and key
    ///   attachments, and beside them a connection has only the other
    ///   attachments to do.
    ///
    /// `chain` is the steps on `relation` that lock the most relations,
    /// then the next most, and so on (at most eight tries): at 10,000
    /// partitions the four foreign keys on `messages` lock its 10,001
    /// tables, and its own key `ON ONLY` it locks one; with all five the
    /// relations every one locks would be `messages` alone. The steps the
    /// chain waits for are counted for its first 16 steps (a walk each).
    private static func besideChain(
        relation: Int, durations: [Double], deps: (Int) -> [Int], locks: [[BoundLock]], path: [Double], tail: [Double], jobs: Int
    ) -> Double {
        var held: [(step: Int, relations: Set<Int>)] = []
        for n in durations.indices where locks[n].contains(where: { $0.relation == relation && $0.serial }) {
            held.append((n, Set(locks[n].lazy.filter(\.serial).map(\.relation))))
        }
        held.sort { $0.relations.count != $1.relations.count ? $0.relations.count > $1.relations.count : $0.step < $1.step }
        var cuts = held.indices.dropFirst().filter { held[$0].relations.count != held[$0 - 1].relations.count }.prefix(7).map { $0 }
        cuts.append(held.count)
        let total = durations.reduce(0, +), lanes = Double(max(1, jobs))
        // How many of the chain's first steps wait for each step; `seen`
        // marks the steps one walk has reached.
        var waitedOn = [Int32](repeating: 0, count: durations.count)
        var seen = [Int32](repeating: -1, count: durations.count)
        var walked = 0
        var best = 0.0
        for cut in cuts {
            let chain = held.prefix(cut)
            var common = chain[0].relations
            for member in chain.dropFirst() { common.formIntersection(member.relations) }
            let inChain = Set(chain.map(\.step))
            while walked < min(cut, 16) {
                let mark = Int32(walked)
                var stack = deps(held[walked].step)
                while let d = stack.popLast() {
                    guard seen[d] != mark else { continue }
                    seen[d] = mark
                    waitedOn[d] += 1
                    stack += deps(d).filter { seen[$0] != mark }
                }
                walked += 1
            }
            var earliest = Double.infinity, shortestTail = Double.infinity
            var chainSeconds = 0.0, besideSeconds = 0.0, longestBeside = 0.0, free = 0.0
            for n in durations.indices {
                if inChain.contains(n) {
                    chainSeconds += durations[n]
                } else if locks[n].contains(where: { common.contains($0.relation) }) {
                    besideSeconds += durations[n]
                    longestBeside = max(longestBeside, durations[n])
                } else {
                    if cut > 16 || waitedOn[n] < Int32(cut) { free += durations[n] }
                    continue
                }
                earliest = min(earliest, path[n] - durations[n])
                shortestTail = min(shortestTail, tail[n])
            }
            let apart = max(besideSeconds / lanes, longestBeside)
            let alongside = min((lanes - 1) * chainSeconds, free)
            best = max(
                best, earliest + chainSeconds + apart + shortestTail,
                chainSeconds + max(apart, (total - chainSeconds - alongside) / lanes))
        }
        return best
    }

    private let path: String
    private let temporary: String
    private let file: OutputFile
    private let encoder = JSONEncoder()
    /// Encoded entries not yet written.
    private var pending: [UInt8] = []
    private var published = false
    /// The entries appended so far.
    public private(set) var count = 0

    /// Creates the file under a hidden temporary name beside `path`, listed
    /// in ``PartialOutputs`` (a second signal quits at once and removes it).
    public init(path: String) throws {
        self.path = path
        let name = path as NSString
        temporary = name.deletingLastPathComponent.isEmpty
            ? ".\(name.lastPathComponent).partial-\(getpid())"
            : "\(name.deletingLastPathComponent)/.\(name.lastPathComponent).partial-\(getpid())"
        unlink(temporary)
        file = try OutputFile(creating: temporary)
        PartialOutputs.register(temporary)
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    deinit {
        if !published {
            unlink(temporary)
            PartialOutputs.forget(temporary)
        }
    }

    /// Adds an entry (kept in memory until ``flush()`` or ``finish()``).
    public func append(_ entry: Entry) throws {
        pending += try encoder.encode(entry)
        pending.append(0x0A)
        count += 1
    }

    /// Writes what is kept once it is 1 MiB: a blocking write, for a
    /// thread of its own.
    func flushIfLarge() throws {
        if pending.count >= 1 << 20 { try flush() }
    }

    private func flush() throws {
        try file.write(pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes the rest, fsyncs and renames the file into place: blocking.
    public func finish() throws {
        try flush()
        try file.close()
        try PartialOutputs.publishing(temporary) { try Files.publish(temporary, as: path) }
        published = true
    }
}
