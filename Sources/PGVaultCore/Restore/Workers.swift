import Foundation
import PGClient

/// Hands out items to workers, in order; stops after a failure.
final class RestoreQueue<Item: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private let items: [Item]
    private var index = 0
    private var stopped = false

    init(_ items: [Item]) { self.items = items }

    func next() -> Item? {
        lock.withLock {
            guard !stopped, index < items.count else { return nil }
            defer { index += 1 }
            return items[index]
        }
    }

    func stop() { lock.withLock { stopped = true } }
}

enum Workers {
    /// Runs `body` for each item, in order, over up to `jobs` connections, each
    /// on a thread of its own. The first error stops handing out items,
    /// cancels the statements running on the other connections, and is rethrown.
    static func run<Item: Sendable>(
        _ items: [Item], jobs: Int, conninfo: String, name: String,
        setup: @escaping @Sendable (PGConnection) throws -> Void,
        body: @escaping @Sendable (PGConnection, Item) throws -> Void
    ) async throws {
        guard !items.isEmpty else { return }
        let queue = RestoreQueue(items)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<max(1, min(jobs, items.count)) {
                group.addTask {
                    let conn = try await Blocking.run("pgvault-restore-connect") {
                        try PGConnection(conninfo: conninfo, applicationName: "pgvault restore \(name) \(w + 1)")
                    }
                    try await Blocking.run("pgvault-restore-\(name)-\(w + 1)", on: conn) { conn in
                        try setup(conn)
                        while let item = queue.next() {
                            try Cancellation.check()
                            try body(conn, item)
                        }
                    }
                }
            }
            do {
                for try await _ in group {}
            } catch {
                queue.stop()
                group.cancelAll()
                throw error
            }
        }
    }

    /// Runs `body` in a transaction, again (up to 5 times) if the server broke
    /// a deadlock by cancelling it; parallel DDL on related tables can deadlock.
    static func retryingDeadlocks(_ conn: PGConnection, _ body: (PGConnection) throws -> Void) throws {
        var attempt = 0
        while true {
            do {
                try conn.transaction { try body($0) }
                return
            } catch let error as PGError where error.sqlState == PGError.deadlockDetected && attempt < 5 {
                attempt += 1
                usleep(useconds_t(100_000 * attempt))
            }
        }
    }
}
