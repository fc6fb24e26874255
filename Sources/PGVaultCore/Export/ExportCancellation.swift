import Foundation
import PGClient
import Support

/// Stops an export from another thread: the export notices between rows, and
/// a statement running on the server is cancelled.
public final class ExportCancellation: Sendable {
    private struct State {
        var reason: String?
        var canceller: PGCanceller?
        var sideCanceller: PGCanceller?
    }

    private let state = Locked(State())

    public init() {}

    public func cancel(_ reason: String) {
        let cancellers = state.withLock { state -> [PGCanceller?] in
            if state.reason == nil { state.reason = reason }
            return [state.canceller, state.sideCanceller]
        }
        cancellers.forEach { $0?.cancel() }
    }

    public var cancelReason: String? { state.withLock { $0.reason } }

    func check() throws {
        if let reason = cancelReason { throw UserExportError.cancelled(reason: reason) }
    }

    func attach(_ conn: PGConnection?) {
        let canceller = conn?.makeCanceller()
        state.withLock { $0.canceller = canceller }
    }

    /// The second connection (`UserExportOptions.connect`), while it is used.
    func attachSide(_ conn: PGConnection?) {
        let canceller = conn?.makeCanceller()
        state.withLock { $0.sideCanceller = canceller }
    }
}
