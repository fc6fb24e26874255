import Foundation
import PGClient

/// Stops an export from another thread: the export notices between rows, and
/// a statement running on the server is cancelled.
public final class ExportCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var reason: String?
    private var canceller: PGCanceller?
    private var sideCanceller: PGCanceller?

    public init() {}

    public func cancel(_ reason: String) {
        let cancellers = lock.withLock { () -> [PGCanceller?] in
            if self.reason == nil { self.reason = reason }
            return [self.canceller, self.sideCanceller]
        }
        cancellers.forEach { $0?.cancel() }
    }

    public var cancelReason: String? { lock.withLock { reason } }

    func check() throws {
        if let reason = cancelReason { throw UserExportError.cancelled(reason: reason) }
    }

    func attach(_ conn: PGConnection?) {
        let canceller = conn?.makeCanceller()
        lock.withLock { self.canceller = canceller }
    }

    /// The second connection (`UserExportOptions.connect`), while it is used.
    func attachSide(_ conn: PGConnection?) {
        let canceller = conn?.makeCanceller()
        lock.withLock { self.sideCanceller = canceller }
    }
}
