import Foundation
import PGClient
import Support

/// Runs a ``RestoreGraph`` over --jobs connections: each connection takes
/// the largest step whose dependencies are done and whose locks no running
/// step holds, as soon as there is one. A step an earlier run finished (the
/// journal says so) counts as done from the start.
enum StepScheduler {
    /// When a step ran: seconds since `origin`, and the connection's number.
    struct Timing: Sendable {
        var start: Double
        var end: Double
        var worker: Int
    }

    struct Outcome: Sendable {
        /// By step; nil for a step done before this run.
        var timings: [Timing?]
        var start: Double
        var end: Double
        var workers: Int
        /// The findings of the `verify` steps, in the order they ran.
        var findings: [VerifyFinding] = []
    }

    static func run(
        _ graph: RestoreGraph, options: RestoreOptions, encoding: String, preamble: [String], origin: Date,
        monitor: Locked<LoadProgress>, notes: Locked<[String]>, log: @escaping @Sendable (String) -> Void
    ) async throws -> Outcome {
        let start = Date().timeIntervalSince(origin)
        // Counted, not copied: a step is a few hundred bytes, and 10,000
        // partitions make some 150,000 of them.
        let pendingCount = graph.steps.reduce(0) { $0 + ($1.done ? 0 : 1) }
        let workers = max(1, min(options.jobs, pendingCount))
        let timings = Locked<[Timing?]>(Array(repeating: nil, count: graph.steps.count))
        let findings = Locked<[VerifyFinding]>([])
        guard pendingCount > 0 else { return Outcome(timings: timings.value, start: start, end: start, workers: 0) }
        let loads = graph.steps.reduce(0) { $0 + (!$1.done && $1.kind == .load ? 1 : 0) }
        let objects = pendingCount - loads
        log("loading \(loads) units and building \(objects) post-data objects over \(workers) workers, each as soon as what it needs is done")
        let environment = ProcessInfo.processInfo.environment
        let loadDelay = Int(environment[UnitLoader.testDelayVariable] ?? "") ?? 0
        let stepDelay = Int(environment[PostData.testDelayVariable] ?? "") ?? 0
        let queue = ReadyQueue(graph)
        let loadsLeft = Locked(loads)
        if loads == 0 { monitor.withLock { $0.beginPhase("post-data", total: objects) } }
        let name = "pgvault restore"
        _ = try await WorkerPool.run(
            Array(1...workers), jobs: workers, name: name,
            makeWorker: { context in Worker(context: context) }
        ) { worker, _ in
            do {
                while let batch = try queue.next() {
                    let n = batch[0]
                    switch graph.steps[n].work {
                    case .load:
                        let loadsOfBatch = batch.compactMap { k -> LoadPlan.Load? in
                            if case .load(let load) = graph.steps[k].work { return load } else { return nil }
                        }
                        let (conn, source) = try worker.loader(options, encoding: encoding)
                        let loaded = try UnitLoader.loadUnits(
                            loadsOfBatch, conn: conn, source: source, delayMilliseconds: loadDelay, monitor: monitor)
                        let committed = Date().timeIntervalSince(origin)
                        for (i, k) in batch.enumerated() {
                            monitor.withLock { $0.finishUnit(rows: loaded[i].rows) }
                            // The last unit's end is the COMMIT: none is visible before.
                            let end = i == batch.count - 1 ? committed : loaded[i].end.timeIntervalSince(origin)
                            timings.withLock { $0[k] = Timing(start: loaded[i].start.timeIntervalSince(origin), end: end, worker: worker.context.number) }
                        }
                        let left = loadsLeft.withLock { $0 -= batch.count; return $0 }
                        if left == 0 { monitor.withLock { $0.beginPhase("post-data", total: objects) } }
                    case .object(let object):
                        let conn = try worker.builder(options, preamble: preamble)
                        let began = Date().timeIntervalSince(origin)
                        try PostData.apply(object, conn: conn, delayMilliseconds: stepDelay, notes: notes, log: log)
                        monitor.withLock { $0.stepDone() }
                        timings.withLock { $0[n] = Timing(start: began, end: Date().timeIntervalSince(origin), worker: worker.context.number) }
                    case .verify(let check):
                        let conn = try worker.checker(options)
                        let began = Date().timeIntervalSince(origin)
                        let found = try Verifier.checkOrReport(.digest(check), conn, archive: options.source)
                        findings.withLock { $0 += found }
                        monitor.withLock { $0.stepDone() }
                        timings.withLock { $0[n] = Timing(start: began, end: Date().timeIntervalSince(origin), worker: worker.context.number) }
                    }
                    for k in batch { queue.finish(k) }
                }
            } catch {
                queue.fail()
                throw error
            }
        }
        let end = Date().timeIntervalSince(origin)
        log("restored the data and post-data in \(String(format: "%.1f", end - start)) s over \(workers) workers")
        return Outcome(timings: timings.value, start: start, end: end, workers: workers, findings: findings.value)
    }
}

/// A worker's connections, each opened when first needed: one for loads (the
/// COPY session settings, the archive's encoding, a reader of the archive of
/// its own), one for post-data (pg_dump's preamble too: its empty
/// search_path would change how COPY reads a regclass) and one for reading
/// tables back (verify's settings). One runs at a time.
private struct Worker {
    let context: WorkerPool.Context
    var load: (conn: PGConnection, source: ArchiveSource)?
    var build: PGConnection?
    var check: PGConnection?

    init(context: WorkerPool.Context) { self.context = context }

    mutating func loader(_ options: RestoreOptions, encoding: String) throws -> (PGConnection, ArchiveSource) {
        if let load { return load }
        let conn = try open(options, "load")
        // The archive's COPY text is in the source database's encoding; the server converts.
        try conn.execute("SET client_encoding = \(SQL.literal(encoding))")
        let made = (conn: conn, source: try options.source.open())
        load = made
        return made
    }

    mutating func builder(_ options: RestoreOptions, preamble: [String]) throws -> PGConnection {
        if let build { return build }
        let conn = try open(options, "post-data")
        try Session.runPreamble(conn, preamble)
        build = conn
        return conn
    }

    mutating func checker(_ options: RestoreOptions) throws -> PGConnection {
        if let check { return check }
        let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore verify \(context.number)")
        context.cancels(conn)
        try Verifier.configure(conn)
        // A read-back may queue behind a step's lock as long as that step
        // runs (say, a foreign key validated over a large table).
        try conn.execute("SET lock_timeout = 0")
        check = conn
        return conn
    }

    private func open(_ options: RestoreOptions, _ what: String) throws -> PGConnection {
        let conn = try PGConnection(conninfo: options.conninfo, applicationName: "pgvault restore \(what) \(context.number)")
        context.cancels(conn)
        try Session.prepare(conn, options)
        return conn
    }
}

/// The steps ready to run, largest first, and the locks the running ones hold.
/// Workers wait here (on their own threads) for a step to become ready.
private final class ReadyQueue: @unchecked Sendable {
    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private let steps: [RestoreGraph.Step]
    private var waitingOn: [Int]
    private var dependents: [[Int]]
    private var ready: [Int] = []
    /// Each step's locks, the relations numbered: a check of a ready step
    /// is a few array reads, not string hashing (thousands of partitions
    /// make thousands of ready steps, each checked at every `next()`).
    private let locks: [[(relation: Int, mode: RestoreGraph.LockMode)]]
    /// By relation number, by lock mode: how many running steps hold it.
    private var held: [[Int]]
    private var left: Int
    private var running = 0
    private var failed = false

    init(_ graph: RestoreGraph) {
        steps = graph.steps
        waitingOn = Array(repeating: 0, count: steps.count)
        dependents = Array(repeating: [], count: steps.count)
        left = steps.count
        var numbers: [String: Int] = [:]
        locks = steps.map { step in
            step.locks.map { relation, mode in
                let number = numbers[relation] ?? numbers.count
                numbers[relation] = number
                return (number, mode)
            }
        }
        held = Array(repeating: Array(repeating: 0, count: 9), count: numbers.count)
        for (n, s) in steps.enumerated() {
            for d in Set(s.deps) where !steps[d].done {
                waitingOn[n] += 1
                dependents[d].append(n)
            }
        }
        for n in steps.indices {
            if steps[n].done { left -= 1 } else if waitingOn[n] == 0 { insert(n) }
        }
    }

    /// Keeps `ready` ordered by rank, then largest first, then in the graph's order.
    private func insert(_ n: Int) {
        func key(_ n: Int) -> (Int, Int64, Int) { (steps[n].rank, -steps[n].size, n) }
        var lo = 0, hi = ready.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if key(ready[mid]) < key(n) { lo = mid + 1 } else { hi = mid }
        }
        ready.insert(n, at: lo)
    }

    private func conflicts(_ n: Int) -> Bool {
        locks[n].contains { relation, mode in
            RestoreGraph.LockMode.allCases.contains { held[relation][$0.rawValue] > 0 && mode.conflicts(with: $0) }
        }
    }

    /// Units below this size load together, in one transaction.
    static let smallUnit: Int64 = 1 << 20
    /// At most this many units, and this many bytes, in one transaction.
    static let batchUnits = 32
    static let batchBytes: Int64 = 8 << 20

    private func batchable(_ n: Int) -> Bool {
        guard case .load(let load) = steps[n].work else { return false }
        // A routed unit counts its rows in a DEFAULT partition by transaction: alone.
        return steps[n].size < Self.smallUnit && load.defaultPartitions.isEmpty
    }

    /// The next step to run, waiting until one is ready; with it, when it is
    /// a small unit, other small units ready to load in the same transaction.
    /// Nil when all are done or another worker failed.
    func next() throws -> [Int]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if failed || left == 0 { return nil }
            if let k = ready.firstIndex(where: { !conflicts($0) }) {
                let n = ready.remove(at: k)
                for (relation, mode) in locks[n] { held[relation][mode.rawValue] += 1 }
                running += 1
                var batch = [n]
                if batchable(n) {
                    var bytes = steps[n].size
                    var taken: [Int] = []
                    for (k, m) in ready.enumerated() where batch.count < Self.batchUnits && batchable(m) && bytes + steps[m].size <= Self.batchBytes {
                        batch.append(m)
                        taken.append(k)
                        bytes += steps[m].size
                    }
                    for k in taken.reversed() { ready.remove(at: k) }
                    running += taken.count
                }
                return batch
            }
            if running == 0 {
                // Nothing runs and nothing can: the graph has a cycle (a bug).
                failed = true
                condition.broadcast()
                throw PGVaultError(.server, "the restore's steps wait on each other (\(left) left, \(ready.count) ready); this is a bug in pgvault. Rerun with --resume.")
            }
            try Cancellation.check()
            _ = condition.wait(until: Date().addingTimeInterval(0.2))
        }
    }

    func finish(_ n: Int) {
        condition.lock()
        defer { condition.unlock() }
        for (relation, mode) in locks[n] { held[relation][mode.rawValue] -= 1 }
        running -= 1
        left -= 1
        for d in dependents[n] {
            waitingOn[d] -= 1
            if waitingOn[d] == 0 { insert(d) }
        }
        condition.broadcast()
    }

    func fail() {
        condition.lock()
        failed = true
        condition.broadcast()
        condition.unlock()
    }
}
