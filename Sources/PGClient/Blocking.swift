import Foundation

/// Runs blocking C calls (libpq, zstd, libarchive, file I/O) on a thread of their
/// own, so Swift's cooperative pool keeps making progress. Async code awaits the
/// result; structured concurrency (task groups) coordinates several such threads.
public enum Blocking {
    /// Runs `body` on a new thread and returns its result.
    ///
    /// If the awaiting task is cancelled, `onCancel` runs (for a database worker:
    /// `PQcancel` of its connection), so the blocked call returns promptly with an
    /// error instead of running on; and the thread's `Cancellation` token is set,
    /// so the body's own checks between blocking calls stop it.
    public static func run<T: Sendable>(
        _ name: String,
        onCancel: (@Sendable () -> Void)? = nil,
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        let token = CancellationToken()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
                let thread = Thread {
                    Cancellation.adopt(token)
                    continuation.resume(with: Result { try body() })
                }
                thread.name = name
                thread.stackSize = 1 << 20
                thread.start()
            }
        } onCancel: {
            token.cancel()
            onCancel?()
        }
    }

    /// Runs `body` with `connection` on a new thread; if the task is cancelled the
    /// connection's running statement is cancelled on the server.
    public static func run<T: Sendable>(
        _ name: String, on connection: PGConnection,
        _ body: @escaping @Sendable (PGConnection) throws -> T
    ) async throws -> T {
        let canceller = connection.makeCanceller()
        return try await run(name, onCancel: { canceller?.cancel() }) {
            try body(connection)
        }
    }
}
