import Foundation
import PGClient
import Support
import TestSupport
import Testing

/// The one worker pool: order, results, per-worker state, and what the first
/// error does to the other workers, on real threads and a real server.
@Suite("WorkerPool and Locked")
struct WorkerPoolTests {
    @Test("one worker takes the items largest first; results come back in the items' order")
    func largestFirst() async throws {
        let taken = Locked<[Int]>([])
        let sizes: [Int64] = [3, 10, 1, 7, 7]
        let results = try await WorkerPool.run(
            Array(sizes.indices), jobs: 1, name: "test-order", size: { sizes[$0] },
            makeWorker: { _ in () },
            body: { _, index in
                taken.withLock { $0.append(index) }
                return index * 100
            })
        #expect(taken.value == [1, 3, 4, 0, 2])  // 10, 7, 7 (ties in item order), 3, 1
        #expect(results == [0, 100, 200, 300, 400])
    }

    @Test("each worker makes its state once on its own thread, uses it for every item it takes, and finishes it")
    func perWorkerState() async throws {
        let made = Locked<Int>(0)
        let finished = Locked<[Int]>([])
        let results = try await WorkerPool.run(
            Array(0..<40), jobs: 3, name: "test-state",
            makeWorker: { context -> (number: Int, count: Int) in
                made.withLock { $0 += 1 }
                return (context.number, 0)
            },
            finish: { worker in finished.withLock { $0.append(worker.count) } },
            body: { worker, item in
                worker.count += 1
                return Thread.isMainThread ? -1 : item
            })
        #expect(results == Array(0..<40))
        #expect(made.value == 3)
        #expect(finished.value.reduce(0, +) == 40)
    }

    @Test("never more workers than items, and none for no items")
    func fewItems() async throws {
        let made = Locked<Int>(0)
        let none: [Int] = try await WorkerPool.run([Int](), jobs: 8, name: "test-none", makeWorker: { _ in made.withLock { $0 += 1 } }, body: { _, i in i })
        #expect(none.isEmpty)
        _ = try await WorkerPool.run([1, 2], jobs: 8, name: "test-few", makeWorker: { _ in made.withLock { $0 += 1 } }, body: { _, i in i })
        #expect(made.value == 2)
    }

    struct Planted: Error {}

    @Test("the first error stops the queue, cancels the statement another worker is running, and is rethrown")
    func firstErrorCancelsTheOthers() async throws {
        let db = try TestServers.database()
        let started = ContinuousClock.now
        let ran = Locked<[Int]>([])
        await #expect(throws: Planted.self) {
            _ = try await WorkerPool.overConnections(
                Array(0..<20), jobs: 2, conninfo: db.conninfo, name: "pgvault test pool",
                body: { conn, item in
                    ran.withLock { $0.append(item) }
                    if item == 0 { _ = try conn.query("SELECT pg_sleep(60)") }  // cancelled by the failure
                    if item == 1 { usleep(200_000); throw Planted() }
                    return item
                })
        }
        #expect(ContinuousClock.now - started < .seconds(30), "the sleeping statement was not cancelled")
        #expect(ran.value.sorted() == [0, 1], "items were handed out after the failure: \(ran.value)")
    }

    @Test("cancelling the awaiting task cancels a running statement too")
    func taskCancellation() async throws {
        let db = try TestServers.database()
        let started = ContinuousClock.now
        let task = Task {
            try await WorkerPool.overConnections([1], jobs: 1, conninfo: db.conninfo, name: "pgvault test pool") { conn, _ in
                _ = try conn.query("SELECT pg_sleep(60)")
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        let outcome = await task.result
        #expect(throws: (any Error).self) { try outcome.get() }
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test("Locked: concurrent increments from many threads are all counted")
    func locked() async throws {
        let counter = Locked<Int>(0)
        _ = try await WorkerPool.run(Array(0..<8), jobs: 8, name: "test-locked", makeWorker: { _ in () }) { _, _ in
            for _ in 0..<10_000 { counter.withLock { $0 += 1 } }
        }
        #expect(counter.value == 80_000)
    }
}
