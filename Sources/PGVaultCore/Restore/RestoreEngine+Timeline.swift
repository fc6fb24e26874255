import Foundation

extension RestoreEngine {
    /// Appends the graph's steps to the timeline, as they are made; a step
    /// done by an earlier run is there too, taking no time at `doneAt` (the
    /// schema step's end), so every dependency names an entry. Returns the
    /// ids of the steps no other step waits for: what a later step waits
    /// for. Blocking (it writes the file as it goes).
    static func writeTimeline(_ graph: RestoreGraph, _ outcome: StepScheduler.Outcome, doneAt: Double, to timeline: RestoreTimeline) throws -> [String] {
        let ids = try graph.ids()
        var needed = [Bool](repeating: false, count: graph.steps.count)
        for n in graph.steps.indices {
            let timing = outcome.timings[n]
            let deps = graph.deps(of: n)
            for d in deps { needed[Int(d)] = true }
            try timeline.append(RestoreTimeline.Entry(
                id: ids[n], kind: graph.steps[n].kind.rawValue, relation: graph.relation(of: n),
                deps: deps.isEmpty ? ["schema"] : deps.map { ids[Int($0)] }, start: timing?.start ?? doneAt, end: timing?.end ?? doneAt,
                worker: timing?.worker ?? 0, bytes: graph.load(of: n)?.unit.rawBytes ?? 0,
                locks: graph.locks(of: n).map { "\($0.mode.name) \(graph.names[Int($0.relation)])" }))
            try timeline.flushIfLarge()
        }
        let sinks = graph.steps.indices.filter { !needed[$0] }.map { ids[$0] }
        return sinks.isEmpty ? ["schema"] : sinks
    }
}
