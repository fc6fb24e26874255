import Foundation

extension RestoreEngine {
    /// The graph's steps as timeline entries; a step done by an earlier run
    /// is there too, taking no time at `doneAt` (the schema step's end), so
    /// every dependency names an entry.
    static func timelineEntries(_ graph: RestoreGraph, _ outcome: StepScheduler.Outcome, doneAt: Double) throws -> [RestoreTimeline.Entry] {
        let ids = try graph.ids()
        return graph.steps.enumerated().map { n, step in
            let timing = outcome.timings[n]
            let bytes = graph.load(of: n)?.unit.rawBytes ?? 0
            let deps = graph.deps(of: n).map { ids[Int($0)] }
            return RestoreTimeline.Entry(
                id: ids[n], kind: step.kind.rawValue, relation: graph.relation(of: n),
                deps: deps.isEmpty ? ["schema"] : deps, start: timing?.start ?? doneAt, end: timing?.end ?? doneAt,
                worker: timing?.worker ?? 0, bytes: bytes,
                locks: graph.locks(of: n).map { "\($0.mode.name) \(graph.names[Int($0.relation)])" })
        }
    }

    /// The entries nothing else among them depends on: what a later step waits for.
    static func sinks(_ entries: [RestoreTimeline.Entry]) -> [String] {
        let needed = Set(entries.flatMap(\.deps))
        let ids = entries.map(\.id).filter { !needed.contains($0) }
        return ids.isEmpty ? ["schema"] : ids
    }
}
