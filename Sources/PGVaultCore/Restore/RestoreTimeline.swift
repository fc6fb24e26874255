import Foundation

/// The restore's statement timeline: one entry per step, written as JSON
/// Lines by `pgvault restore --timeline FILE` (scripts replay it to predict
/// other --jobs), and the lower bound of the scheduled part computed from it.
public struct RestoreTimeline: Sendable {
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

        enum CodingKeys: String, CodingKey { case id, kind, relation, deps, start, end, worker, bytes }

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
        }
    }

    /// The scheduled part's bound: no schedule over `jobs` connections beats
    /// the longest chain of dependent steps, nor the summed statement time
    /// shared evenly.
    public struct Bound: Codable, Sendable, Equatable {
        public var criticalPathSeconds: Double
        public var statementSeconds: Double
        public var jobs: Int
        /// max(the critical path, the statement time / jobs).
        public var lowerBoundSeconds: Double

        public init(criticalPathSeconds: Double, statementSeconds: Double, jobs: Int) {
            self.criticalPathSeconds = criticalPathSeconds
            self.statementSeconds = statementSeconds
            self.jobs = jobs
            lowerBoundSeconds = max(criticalPathSeconds, statementSeconds / Double(max(1, jobs)))
        }
    }

    public var entries: [Entry]

    /// The bound of steps numbered from 0: each one's statement time
    /// (`durations`) and the numbers of the steps it waits for (`deps`).
    /// Numbers, not the entries' ids: at 10,000 partitions there are some
    /// 150,000 steps, and a table of strings for them is tens of MB.
    public static func bound(durations: [Double], deps: (Int) -> [Int], jobs: Int) -> Bound {
        // Longest chain ending at each step; iterative, as chains can be long.
        var path = [Double](repeating: -1, count: durations.count)
        var stack: [(Int, Bool)] = []
        for root in durations.indices where path[root] < 0 {
            stack.append((root, false))
            while let (n, expanded) = stack.popLast() {
                if path[n] >= 0 { continue }
                if expanded {
                    path[n] = durations[n] + (deps(n).lazy.map { path[$0] }.max() ?? 0)
                } else {
                    stack.append((n, true))
                    for d in deps(n) where path[d] < 0 { stack.append((d, false)) }
                }
            }
        }
        return Bound(criticalPathSeconds: path.max() ?? 0, statementSeconds: durations.reduce(0, +), jobs: jobs)
    }

    /// Writes the entries as JSON Lines: temporary name, fsync, rename.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for e in entries {
            data.append(try encoder.encode(e))
            data.append(0x0A)
        }
        let temporary = path + ".partial-\(getpid())"
        unlink(temporary)
        let file = try OutputFile(creating: temporary)
        try file.write([UInt8](data))
        try file.close()
        try Files.publish(temporary, as: path)
    }
}
