import Foundation

/// Whether the work running on this thread has been cancelled, for code that
/// runs on a thread of its own (`Blocking.run`, `JobThread`) where
/// `Task.isCancelled` is always false: there is no task on such a thread.
/// `Blocking.run` gives its thread a token that its task's cancellation sets,
/// so a loop between C calls (units, buffers, a child process being waited
/// for) stops at its next check instead of only when the server notices.
public enum Cancellation {
    /// The token of the work running on this thread, if any.
    public static var current: CancellationToken? {
        Thread.current.threadDictionary[key] as? CancellationToken
    }

    /// True when the surrounding task, or the task that started this thread, is cancelled.
    public static var isCancelled: Bool {
        Task.isCancelled || current?.isCancelled == true
    }

    /// Throws `CancellationError` when ``isCancelled``.
    public static func check() throws {
        if isCancelled { throw CancellationError() }
    }

    /// Makes `token` the current one for the rest of this thread's life (a
    /// thread started on behalf of a cancellable piece of work).
    public static func adopt(_ token: CancellationToken?) {
        Thread.current.threadDictionary[key] = token
    }

    private static let key = "pgvault.cancellation"
}

/// Set once, from any thread, when the work it belongs to is cancelled.
public final class CancellationToken: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    public func cancel() { lock.withLock { cancelled = true } }

    public var isCancelled: Bool { lock.withLock { cancelled } }
}
