import Foundation

/// The totals the workers count and the progress reporter reads; shared as a
/// `Locked<LoadProgress>`.
struct LoadProgress: Sendable {
    var progress: RestoreProgress
    /// When the count began: the elapsed time and rate are from here.
    let started = Date()

    init(total: Int, bytesTotal: Int64, skipped: [String: Int64]) {
        progress = RestoreProgress(phase: "load", unitsDone: 0, unitsTotal: total - skipped.count, rows: 0, bytes: 0,
                                   bytesTotal: bytesTotal, elapsed: 0)
    }

    mutating func finishUnit(rows: Int64) {
        progress.unitsDone += 1
        progress.rows += rows
    }

    mutating func beginPhase(_ phase: String, total: Int = 0) {
        progress.phase = phase
        progress.phaseDone = 0
        progress.phaseTotal = total
    }

    mutating func stepDone() { progress.phaseDone += 1 }

    /// The progress as of now.
    var snapshot: RestoreProgress {
        var s = progress
        s.elapsed = Date().timeIntervalSince(started)
        return s
    }
}
