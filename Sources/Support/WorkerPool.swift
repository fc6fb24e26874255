import Foundation
import PGClient

/// N workers, each on a thread of its own with state of its own (usually a
/// database connection), work through one queue of items: the one pool that
/// backup, restore, verify, generate and export use.
///
/// - Items are handed out largest first when `size` is given (the longest
///   job starts first, so the last one to finish is short), else in order.
/// - Each worker's state is made on its thread by `makeWorker` and handed to
///   every item it takes; `finish` runs once the queue is empty.
/// - The first error stops handing out items, cancels the other workers (the
///   thread's ``Cancellation`` token, and the `onCancel` each worker
///   registered, e.g. `PQcancel` of its connection's running statement) and
///   is rethrown. Cancelling the awaiting task does the same.
/// - Results come back in the items' order, whatever order they finished in.
public enum WorkerPool {
    /// What a worker can do besides its items.
    public final class Context: Sendable {
        /// The worker's number, from 1.
        public let number: Int
        private let onCancel = Locked<[@Sendable () -> Void]>([])

        init(number: Int) { self.number = number }

        /// Registers what stops this worker's blocking call when the pool is
        /// cancelled (for a connection: `PQcancel`).
        public func onCancel(_ action: @escaping @Sendable () -> Void) {
            onCancel.withLock { $0.append(action) }
        }

        /// Registers `connection`'s cancel request as this worker's.
        public func cancels(_ connection: PGConnection) {
            if let canceller = connection.makeCanceller() { onCancel { canceller.cancel() } }
        }

        func cancel() { for action in onCancel.value { action() } }
    }

    /// Runs `body` for every item over at most `jobs` workers (never more than
    /// there are items) and returns the results in the items' order.
    public static func run<Item: Sendable, Worker, Result: Sendable>(
        _ items: [Item], jobs: Int, name: String,
        size: (@Sendable (Item) -> Int64)? = nil,
        makeWorker: @escaping @Sendable (Context) throws -> Worker,
        finish: @escaping @Sendable (inout Worker) throws -> Void = { _ in },
        body: @escaping @Sendable (inout Worker, Item) throws -> Result
    ) async throws -> [Result] {
        guard !items.isEmpty else { return [] }
        var order = Array(items.indices)
        if let size {
            let sizes = items.map(size)
            order.sort { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }
        }
        let queue = Queue(order: order)
        let results = Locked<[Result?]>(Array(repeating: nil, count: items.count))
        let workers = max(1, min(jobs, items.count))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 1...workers {
                let context = Context(number: number)
                group.addTask {
                    try await Blocking.run("\(name)-\(number)", onCancel: { context.cancel() }) {
                        do {
                            var worker = try makeWorker(context)
                            while let index = queue.next() {
                                try Cancellation.check()
                                let result = try body(&worker, items[index])
                                results.withLock { $0[index] = result }
                            }
                            try Cancellation.check()
                            try finish(&worker)
                        } catch {
                            queue.stop()  // at once: no worker takes another item
                            throw error
                        }
                    }
                }
            }
            do {
                // Not `waitForAll()`: it waits for every task before throwing.
                while try await group.next() != nil {}
            } catch {
                queue.stop()
                group.cancelAll()
                throw error
            }
        }
        return try results.value.map { result in
            guard let result else { throw CancellationError() }  // only when cancelled
            return result
        }
    }

    /// Runs `body` for every item over at most `jobs` connections to
    /// `conninfo`, each set up by `setup` on its own thread. A worker's
    /// connection closes when the pool is done with it.
    public static func overConnections<Item: Sendable, Result: Sendable>(
        _ items: [Item], jobs: Int, conninfo: String, name: String,
        size: (@Sendable (Item) -> Int64)? = nil,
        setup: @escaping @Sendable (PGConnection) throws -> Void = { _ in },
        finish: @escaping @Sendable (PGConnection) throws -> Void = { _ in },
        body: @escaping @Sendable (PGConnection, Item) throws -> Result
    ) async throws -> [Result] {
        try await run(
            items, jobs: jobs, name: name, size: size,
            makeWorker: { context in
                let conn = try PGConnection(conninfo: conninfo, applicationName: "\(name) \(context.number)")
                context.cancels(conn)
                try setup(conn)
                return conn
            },
            finish: { conn in try finish(conn) },
            body: { conn, item in try body(conn, item) })
    }

    /// The queue: indices into the items, in the order they are handed out.
    private final class Queue: Sendable {
        private let state: Locked<(order: [Int], next: Int, stopped: Bool)>

        init(order: [Int]) { state = Locked((order, 0, false)) }

        func next() -> Int? {
            state.withLock { s in
                guard !s.stopped, s.next < s.order.count else { return nil }
                defer { s.next += 1 }
                return s.order[s.next]
            }
        }

        func stop() { state.withLock { $0.stopped = true } }
    }
}
