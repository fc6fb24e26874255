import Foundation

/// Totals shared by the workers, read by the progress reporter.
final class LoadMonitor: @unchecked Sendable {
    private let lock = NSLock()
    private var state: RestoreProgress
    private let started = Date()

    init(total: Int, bytesTotal: Int64, skipped: [String: Int64]) {
        state = RestoreProgress(phase: "load", unitsDone: 0, unitsTotal: total - skipped.count, rows: 0, bytes: 0,
                                bytesTotal: bytesTotal, elapsed: 0)
    }

    func setTotalBytes(_ bytes: Int64) { lock.withLock { state.bytesTotal = bytes } }
    func add(bytes: Int) { lock.withLock { state.bytes += Int64(bytes) } }
    func finishUnit(rows: Int64) {
        lock.withLock {
            state.unitsDone += 1
            state.rows += rows
        }
    }
    func beginPhase(_ phase: String, total: Int = 0) {
        lock.withLock {
            state.phase = phase
            state.phaseDone = 0
            state.phaseTotal = total
        }
    }
    func stepDone() { lock.withLock { state.phaseDone += 1 } }

    func snapshot() -> RestoreProgress {
        lock.withLock {
            var s = state
            s.elapsed = Date().timeIntervalSince(started)
            return s
        }
    }
}
