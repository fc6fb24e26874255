import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` in a task that SIGINT or SIGTERM cancels. Cancellation reaches
/// every database call through `Blocking.run`'s cancel handler (`PQcancel`), so
/// the server stops the running statements, and the command's own cleanup (the
/// partial archive, the transaction) runs before the process exits with an error.
/// A second signal ends the process at once.
func cancellingOnSignals<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    let received = SignalFlag()
    let sources = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            if received.set() { _exit(128 + number) }
            note("pgvault: \(number == SIGINT ? "SIGINT" : "SIGTERM") received; cancelling the running statements (again to quit at once)")
            task.cancel()
        }
        source.resume()
        return source
    }
    defer {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
    return try await task.value
}

private final class SignalFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    /// Sets the flag; returns whether it was already set.
    func set() -> Bool { lock.withLock { defer { value = true }; return value } }
}
