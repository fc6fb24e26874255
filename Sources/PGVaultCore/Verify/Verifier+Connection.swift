import Foundation
import PGClient

/// Hands out work items to worker threads (in `schedule` order, e.g. largest
/// first) and collects their findings in the items' order, whatever order they
/// finish in.
final class WorkQueue<Item: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private let items: [Item]
    private let schedule: [Int]
    private var next = 0
    private var done = 0
    private var results: [[VerifyFinding]?]
    private var extra: [VerifyFinding] = []
    private let progress: (@Sendable (String) -> Void)?
    private let label: @Sendable (Item) -> String

    init(
        _ items: [Item], schedule: [Int]? = nil, progress: (@Sendable (String) -> Void)?,
        label: @escaping @Sendable (Item) -> String
    ) {
        self.items = items
        self.schedule = schedule ?? Array(items.indices)
        results = Array(repeating: nil, count: items.count)
        self.progress = progress
        self.label = label
    }

    var count: Int { items.count }

    func take() -> (Int, Item)? {
        lock.withLock {
            guard next < items.count else { return nil }
            defer { next += 1 }
            return (schedule[next], items[schedule[next]])
        }
    }

    func finish(_ index: Int, _ findings: [VerifyFinding]) {
        let n = lock.withLock {
            if results[index] == nil { done += 1 }
            results[index] = findings
            return done
        }
        progress?("checked \(n)/\(items.count): \(label(items[index]))")
    }

    /// A finding about no item in particular (listed after the items').
    func note(_ finding: VerifyFinding) {
        lock.withLock { extra.append(finding) }
    }

    /// Items nobody finished (a worker stopped early).
    var unfinished: [Item] {
        lock.withLock { items.indices.filter { results[$0] == nil }.map { items[$0] } }
    }

    var findings: [VerifyFinding] { lock.withLock { results.flatMap { $0 ?? [] } + extra } }
}

enum Parallel {
    /// Runs `worker` on `jobs` tasks (at most one per item) sharing `queue`;
    /// the first error cancels the others and is rethrown.
    static func run<Item: Sendable>(
        _ queue: WorkQueue<Item>, jobs: Int,
        worker: @escaping @Sendable (_ index: Int) async throws -> Void
    ) async throws -> [VerifyFinding] {
        let workers = max(1, min(jobs, queue.count))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<workers {
                group.addTask { try await worker(w) }
            }
            try await group.waitForAll()
        }
        return queue.findings
    }

    /// Runs `body` for every item over `jobs` database connections, each on a
    /// thread of its own with ``CopySession`` settings applied and read-only
    /// transactions. A query error of one item (say, a permission denied)
    /// becomes a failed finding for that item; a lost connection stops everything.
    static func overConnections<Item: Sendable>(
        _ queue: WorkQueue<Item>, jobs: Int, conninfo: String,
        onError: @escaping @Sendable (Item, PGError) -> VerifyFinding,
        body: @escaping @Sendable (PGConnection, Item) throws -> [VerifyFinding]
    ) async throws -> [VerifyFinding] {
        try await run(queue, jobs: jobs) { w in
            let conn = try await Blocking.run("pgvault-verify-connect") {
                try Verifier.connect(conninfo)
            }
            try await Blocking.run("pgvault-verify-\(w)", on: conn) { conn in
                while let (index, item) = queue.take() {
                    try Cancellation.check()
                    let findings: [VerifyFinding]
                    do {
                        findings = try body(conn, item)
                    } catch let error as PGError where error.kind == .query && conn.isHealthy {
                        findings = [onError(item, error)]
                    }
                    queue.finish(index, findings)
                }
            }
        }
    }
}

extension Verifier {
    /// A verification connection: read-only, COPY session settings, enough
    /// work_mem for hash anti-joins, no statement timeout.
    static func connect(_ conninfo: String) throws -> PGConnection {
        let conn = try PGConnection(conninfo: conninfo, applicationName: "pgvault verify")
        try CopySession.apply(conn)
        try conn.execute("""
            SET default_transaction_read_only = on; SET statement_timeout = 0; \
            SET work_mem = '64MB'; SET lock_timeout = '60s'
            """)
        return conn
    }
}
