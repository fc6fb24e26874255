import Foundation

/// A value that several threads share, behind a lock: the one way pgvault
/// keeps mutable state that crosses threads (progress counters, queues,
/// registries). Every access goes through ``withLock(_:)``, so no caller can
/// forget the lock, and no lock is held across a call that blocks.
public final class Locked<State>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State

    public init(_ state: State) { self.state = state }

    /// Runs `body` with the state, holding the lock; keep it short.
    public func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }

    /// A copy of the state.
    public var value: State { withLock { $0 } }
}
