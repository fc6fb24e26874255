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
        // Counted, not copied: 10,000 partitions make some 150,000 steps.
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
        let prefetch = ArchivePrefetch(options.source, members: queue.loadsInOrder().compactMap { n in
            graph.load(of: n).map { ($0.unit.member, $0.unit.compressedBytes) }
        })
        prefetch?.start()
        defer { prefetch?.stop() }
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
                        let loadsOfBatch = batch.compactMap(graph.load(of:))
                        prefetch?.began(bytes: loadsOfBatch.map(\.unit.compressedBytes))
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
                        try PostData.apply(try object.read(), conn: conn, delayMilliseconds: stepDelay, notes: notes, log: log)
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
