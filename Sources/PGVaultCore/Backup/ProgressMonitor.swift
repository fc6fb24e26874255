import Foundation

/// Totals shared by the workers, read by the progress reporter.
final class ProgressMonitor: @unchecked Sendable {
    private let lock = NSLock()
    private var state: BackupProgress
    private let started: Date

    init(total: Int, estimatedBytes: Int64, started: Date) {
        self.started = started
        state = BackupProgress(unitsDone: 0, unitsTotal: total, rows: 0, rawBytes: 0, compressedBytes: 0, estimatedBytes: estimatedBytes, elapsed: 0)
    }

    func add(rows: Int64, raw: Int64) {
        lock.withLock {
            state.rows += rows
            state.rawBytes += raw
        }
    }

    func finishUnit(compressed: Int64) {
        lock.withLock {
            state.unitsDone += 1
            state.compressedBytes += compressed
        }
    }

    func snapshot() -> BackupProgress {
        lock.withLock {
            var s = state
            s.elapsed = Date().timeIntervalSince(started)
            return s
        }
    }
}
