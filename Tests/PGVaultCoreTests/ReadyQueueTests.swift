@testable import PGVaultCore
import TestSupport
import Testing

/// The restore scheduler's queue on its own, without a server: the tests
/// play the workers, starting steps and finishing them in an order they
/// choose, and check the queue's choices against a brute-force reading of
/// the same steps.
@Suite("restore: the ready queue")
struct ReadyQueueTests {
    typealias Mode = RestoreGraph.LockMode

    /// What every step runs (the queue never reads it).
    static let object = try! SpooledObject.spool([SchemaScript.Object(
        index: 0, name: "step", type: "INDEX ATTACH", schema: "public", sql: "-- step", tablespace: "''", accessMethod: nil)])[0]

    /// A step as the test gives it: dependencies and locks by name.
    struct Draft {
        var deps: [Int] = []
        var size: Int64 = 1
        var locks: [(String, Mode)]
    }

    /// The graph of `drafts`, its relations numbered.
    static func graph(_ drafts: [Draft]) -> RestoreGraph {
        var graph = RestoreGraph()
        var numbers: [String: Int32] = [:]
        func number(_ name: String) -> Int32 {
            if let n = numbers[name] { return n }
            numbers[name] = Int32(graph.names.count)
            graph.names.append(name)
            return numbers[name]!
        }
        for draft in drafts {
            graph.append(
                RestoreGraph.Step(kind: .attach, done: false, relation: -1, work: .object(object), size: draft.size),
                deps: draft.deps.enumerated().filter { !draft.deps.prefix($0.offset).contains($0.element) }.map(\.element),
                locks: draft.locks.map { RestoreGraph.Lock(relation: number($0.0), mode: $0.1) })
        }
        return graph
    }

    /// Plays `jobs` workers in rounds: each round starts steps until the
    /// workers are full or the queue gives none, then finishes them all.
    /// Returns the rounds it took.
    static func rounds(_ queue: ReadyQueue, jobs: Int, steps: Int) -> Int {
        var rounds = 0, finished = 0
        while finished < steps {
            var running: [Int] = []
            while running.count < jobs, let batch = queue.tryNext() { running += batch }
            if running.isEmpty { return -1 }
            for n in running { queue.finish(n) }
            finished += running.count
            rounds += 1
        }
        return rounds
    }

    @Test("index attachments waiting on a few parent indexes: every pick is cheap, and every worker that can work does")
    func attachments() {
        // What 3,000 daily partitions with seven indexes each make: 21,000
        // attachments ready at once, only one per parent index able to run
        // (SHARE UPDATE EXCLUSIVE conflicts with itself).
        let parents = 7, children = 3_000
        var steps: [Draft] = []
        for c in 0..<children {
            for p in 0..<parents {
                steps.append(Draft(size: Int64(children - c), locks: [
                    ("public.messages", .accessShare), ("public.messages_\(c)", .accessShare),
                    ("public.parent_\(p)", .shareUpdateExclusive), ("public.child_\(c)_\(p)", .accessExclusive),
                ]))
            }
        }
        let graph = Self.graph(steps)
        for jobs in [2, 4, 8, 16] {
            let queue = ReadyQueue(graph)
            let rounds = Self.rounds(queue, jobs: jobs, steps: steps.count)
            // Full workers in every round: jobs at a time, at most one per parent index.
            #expect(rounds == steps.count / min(jobs, parents) + (steps.count % min(jobs, parents) == 0 ? 0 : 1), "\(jobs) jobs: \(rounds) rounds")
            // A scan of the ready list at each pick looked at some 10^8 steps here.
            #expect(queue.examined <= 3 * steps.count, "\(jobs) jobs: \(queue.examined) steps looked at for \(steps.count)")
        }
        // Largest first.
        let queue = ReadyQueue(graph)
        #expect(queue.tryNext() == [0])
    }

    @Test("random steps, locks and finishing orders: a step is started exactly when its dependencies are done and no running step holds a conflicting lock", arguments: 1...40)
    func random(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed) &* 7_919)
        let count = 150 + rng.int(150)
        let relations = (0..<(2 + rng.int(6))).map { "public.r\($0)" }
        var steps: [Draft] = []
        for n in 0..<count {
            var locks: [(String, Mode)] = []
            for relation in relations where rng.int(3) == 0 { locks.append((relation, rng.pick(Mode.allCases))) }
            let deps = n == 0 ? [] : (0..<rng.int(3)).map { _ in rng.int(n) }
            steps.append(Draft(deps: deps, size: Int64(rng.int(5)), locks: locks))
        }
        let queue = ReadyQueue(Self.graph(steps))
        let jobs = 1 + rng.int(4)
        var running: [Int] = [], finished = Set<Int>(), started = Set<Int>()

        func conflicts(_ a: Int, _ b: Int) -> Bool {
            steps[a].locks.contains { la in steps[b].locks.contains { lb in la.0 == lb.0 && la.1.conflicts(with: lb.1) } }
        }
        while finished.count < count {
            while running.count < jobs, let batch = queue.tryNext() {
                for n in batch {
                    #expect(!started.contains(n), "step \(n) started twice")
                    #expect(steps[n].deps.allSatisfy(finished.contains), "step \(n) started before its dependencies finished")
                    for r in running { #expect(!conflicts(n, r), "step \(n) started beside \(r), whose lock conflicts") }
                    started.insert(n)
                    running.append(n)
                }
            }
            // Nothing more was given: every step that could start would wait on a running one's lock.
            if running.count < jobs {
                for n in 0..<count where !started.contains(n) && steps[n].deps.allSatisfy(finished.contains) {
                    #expect(running.contains { conflicts(n, $0) }, "step \(n) was ready and free but not given (seed \(seed))")
                }
            }
            guard !running.isEmpty else {
                Issue.record("the queue gave nothing with \(count - finished.count) steps left (seed \(seed))")
                return
            }
            let n = running.remove(at: rng.int(running.count))
            queue.finish(n)
            finished.insert(n)
        }
        #expect(queue.examined <= 20 * count, "\(queue.examined) looked at for \(count) steps")
    }
}
