import Foundation
import PGClient
import Support

/// The steps ready to run, best first (rank, then largest, then the graph's
/// order), and the locks the running ones hold. Workers wait here (on their
/// own threads) for a step to become ready.
///
/// A ready step whose locks a running step holds is parked on that
/// relation and mode, not scanned again at every pick: at 10,000 partitions
/// some 70,000 index attachments are ready at once, all waiting on seven
/// parent indexes, and a scan of the ready list at each pick made the
/// restore's scheduling quadratic. A parked list shows only its best step to
/// the pickers (its *head*), and only when the relation was released or the
/// head before it left the list; so a pick costs O(log n), and each step is
/// looked at a bounded number of times for each release of a lock it waits
/// on.
final class ReadyQueue: @unchecked Sendable {
    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private let graph: RestoreGraph
    private var steps: [RestoreGraph.Step] { graph.steps }
    private var waitingOn: [Int32]
    /// Step n's dependents (the steps that wait for it) are
    /// `dependentList[dependentStart[n]..<dependentStart[n + 1]]`: two flat
    /// arrays, not one per step.
    private let dependentStart: [Int32]
    private let dependentList: [Int32]
    /// Ready steps, except small loads.
    private var ready = StepHeap()
    /// Ready small loads (``batchable(_:)``): a pick of one takes others with it.
    private var small = StepHeap()
    /// By the graph's relation number, by lock mode: how many running steps
    /// hold it. One array, `relation * 9 + mode`: at 10,000 partitions
    /// there are some 10,000 relations, and an array for each would be a
    /// heap block for each.
    private var held: [Int32]
    /// Ready steps that would wait on a running step's lock, by the relation
    /// and the mode they want (``parkKey(_:_:)``).
    private var parked: [Int: StepHeap] = [:]
    /// The parked list each step in `ready` or `small` came from as its head, or -1.
    private var exposedFrom: [Int32]
    /// The parked lists whose head is in `ready` or `small` now.
    private var exposing = Set<Int>()
    private var left: Int
    private var running = 0
    private var failed = false
    /// Steps taken off `ready` or `small` and looked at (run or parked): the
    /// scheduler's own work, which a test keeps proportional to the steps.
    private(set) var examined = 0

    init(_ graph: RestoreGraph) {
        self.graph = graph
        let count = graph.steps.count
        waitingOn = Array(repeating: 0, count: count)
        exposedFrom = Array(repeating: -1, count: count)
        left = count
        held = Array(repeating: 0, count: graph.names.count * 9)
        // Counted, then placed: each step's dependents in one list.
        var start = [Int32](repeating: 0, count: count + 1)
        for n in 0..<count {
            for d in graph.deps(of: n) where !graph.steps[Int(d)].done {
                waitingOn[n] += 1
                start[Int(d) + 1] += 1
            }
        }
        for n in 0..<count { start[n + 1] += start[n] }
        var list = [Int32](repeating: 0, count: Int(start[count]))
        var next = start
        for n in 0..<count {
            for d in graph.deps(of: n) where !graph.steps[Int(d)].done {
                list[Int(next[Int(d)])] = Int32(n)
                next[Int(d)] += 1
            }
        }
        dependentStart = start
        dependentList = list
        for n in steps.indices {
            if steps[n].done { left -= 1 } else if waitingOn[n] == 0 { insert(n) }
        }
    }

    private func key(_ n: Int) -> StepHeap.Key { StepHeap.Key(rank: steps[n].rank, size: -steps[n].size, step: n) }

    /// The loads not yet done, in the order they are given out once ready
    /// (the heaps' order): the order their members are read in. `steps` is
    /// never changed, so no lock is taken.
    func loadsInOrder() -> [Int] {
        steps.indices.filter { !steps[$0].done && steps[$0].kind == .load }.sorted { key($0) < key($1) }
    }

    private func insert(_ n: Int) {
        if batchable(n) { small.push(key(n)) } else { ready.push(key(n)) }
    }

    /// The best of `ready` and `small`, taken off.
    private func popBest() -> Int? {
        switch (ready.top, small.top) {
        case (nil, nil): return nil
        case (let r?, let s?): return r < s ? ready.pop()!.step : small.pop()!.step
        case (_?, nil): return ready.pop()!.step
        case (nil, _?): return small.pop()!.step
        }
    }

    private static func parkKey(_ relation: Int, _ mode: RestoreGraph.LockMode) -> Int { relation * 16 + mode.rawValue }

    /// The first of the step's locks a running step holds in a conflicting mode.
    private func conflict(_ n: Int) -> Int? {
        for lock in graph.locks(of: n) {
            let relation = Int(lock.relation)
            if RestoreGraph.LockMode.allCases.contains(where: { held[relation * 9 + $0.rawValue] > 0 && lock.mode.conflicts(with: $0) }) {
                return Self.parkKey(relation, lock.mode)
            }
        }
        return nil
    }

    /// Shows the head of a parked list to the pickers, unless it shows one already.
    private func expose(_ list: Int) {
        guard !exposing.contains(list), let head = parked[list]?.pop() else { return }
        if parked[list]?.isEmpty == true { parked[list] = nil }
        exposing.insert(list)
        exposedFrom[head.step] = Int32(list)
        insert(head.step)
    }

    /// Units below this size load together, in one transaction.
    static let smallUnit: Int64 = 1 << 20
    /// At most this many units, and this many bytes, in one transaction.
    static let batchUnits = 32
    static let batchBytes: Int64 = 8 << 20

    private func batchable(_ n: Int) -> Bool {
        guard let load = graph.load(of: n) else { return false }
        // A routed unit counts its rows in a DEFAULT partition by transaction: alone.
        return steps[n].size < Self.smallUnit && load.defaultPartitions.isEmpty
    }

    /// The best ready step whose locks are free, taken off and its locks
    /// held; with it, when it is a small unit, other small units ready to
    /// load in the same transaction. Nil when none is.
    private func take() -> [Int]? {
        while let n = popBest() {
            examined += 1
            let from = Int(exposedFrom[n])
            if from >= 0 {
                exposedFrom[n] = -1
                exposing.remove(from)
            }
            if let list = conflict(n) {
                parked[list, default: StepHeap()].push(key(n))
                // Back on the list it came from: that relation is held, and
                // its release shows the list again. Else the next of that list.
                if from >= 0 && from != list { expose(from) }
                continue
            }
            if from >= 0 { expose(from) }
            for lock in graph.locks(of: n) { held[Int(lock.relation) * 9 + lock.mode.rawValue] += 1 }
            running += 1
            var batch = [n]
            if batchable(n) {
                var bytes = steps[n].size
                // Small loads lock nothing: no conflict to check.
                while batch.count < Self.batchUnits, let m = small.top?.step, bytes + steps[m].size <= Self.batchBytes {
                    _ = small.pop()
                    examined += 1
                    batch.append(m)
                    bytes += steps[m].size
                }
                running += batch.count - 1
            }
            return batch
        }
        return nil
    }

    /// The next step to run (see ``take()``), waiting until one is ready.
    /// Nil when all are done or another worker failed.
    func next() throws -> [Int]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if failed || left == 0 { return nil }
            if let batch = take() { return batch }
            if running == 0 {
                // Nothing runs and nothing can: the graph has a cycle (a bug).
                failed = true
                condition.broadcast()
                throw PGVaultError(.server, "the restore's steps wait on each other (\(left) left, \(ready.count + small.count) ready); this is a bug in pgvault. Rerun with --resume.")
            }
            try Cancellation.check()
            _ = condition.wait(until: Date().addingTimeInterval(0.2))
        }
    }

    /// ``take()`` without waiting: for a test that plays the workers itself.
    func tryNext() -> [Int]? {
        condition.lock()
        defer { condition.unlock() }
        return take()
    }

    func finish(_ n: Int) {
        condition.lock()
        defer { condition.unlock() }
        for lock in graph.locks(of: n) { held[Int(lock.relation) * 9 + lock.mode.rawValue] -= 1 }
        running -= 1
        left -= 1
        // What waited on these relations may run now.
        for lock in graph.locks(of: n) {
            for mode in RestoreGraph.LockMode.allCases { expose(Self.parkKey(Int(lock.relation), mode)) }
        }
        for d in dependentList[Int(dependentStart[n])..<Int(dependentStart[n + 1])] {
            waitingOn[Int(d)] -= 1
            if waitingOn[Int(d)] == 0 { insert(Int(d)) }
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

/// A binary min-heap of steps by ``Key``.
struct StepHeap {
    struct Key: Comparable {
        var rank: Int
        /// The step's size, negated: larger first.
        var size: Int64
        var step: Int

        static func < (a: Key, b: Key) -> Bool { (a.rank, a.size, a.step) < (b.rank, b.size, b.step) }
    }

    private var items: [Key] = []

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    var top: Key? { items.first }

    mutating func push(_ key: Key) {
        items.append(key)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Key? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return first }
        items[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < items.count && items[l] < items[best] { best = l }
            if r < items.count && items[r] < items[best] { best = r }
            if best == i { break }
            items.swapAt(i, best)
            i = best
        }
        return first
    }
}
