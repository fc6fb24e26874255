import ArgumentParser
import Foundation
import PGVaultCore
import Support

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` in a task that SIGINT or SIGTERM cancels. Cancellation reaches
/// every database call through `Blocking.run`'s cancel handler (`PQcancel`),
/// and every local step (units, compression, pg_dump, the publishing rename)
/// through `Cancellation`, so the command stops, removes its partial output and
/// publishes nothing. A run that fails after a signal fails as ``Interrupted``
/// (exit 128 + signal), whatever error the cancel itself caused. `leaving`
/// says what an interrupted run leaves behind. A second signal quits at once.
func cancellingOnSignals<T: Sendable>(
    leaving: String = Interrupted.nothingPublished,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    // The handlers come first: a signal that arrives while the work starts
    // (standard input being copied already) must not be lost. One that
    // arrives before the task is stored is seen by the check after it.
    let running = Locked<Task<T, any Error>?>(nil)
    let listener = onTerminationSignals { name in
        note("\(PGVaultCommand.prefix): \(name) received; stopping (again to quit at once)")
        running.withLock { $0 }?.cancel()
    }
    defer { listener.cancel() }
    let task = Task { try await body() }
    running.withLock { $0 = task }
    if ReceivedSignal.number != nil { task.cancel() }
    do {
        return try await task.value
    } catch {
        throw Interrupted.explaining(error, leaving: leaving)
    }
}

/// Handles SIGINT and SIGTERM until the returned listener is cancelled: the
/// first signal is recorded (``ReceivedSignal``) and passed to `handler` by
/// name; a second one deletes the registered partial outputs, stops the child
/// programs and ends the process at once with 128 + signal.
func onTerminationSignals(_ handler: @escaping @Sendable (String) -> Void) -> SignalListener {
    TerminationSignals.listen(handler)
}

/// A handler registered with ``onTerminationSignals(_:)``.
struct SignalListener {
    let id: Int
    func cancel() { TerminationSignals.handlers.withLock { $0[id] = nil } }
}

/// SIGINT and SIGTERM through `sigaction` and a pipe: the C handler only
/// writes the signal's number to the pipe (async-signal-safe), and a thread of
/// its own reads it and acts. `sigaction` is in force when it returns, so a
/// signal is never lost in a window while a handler is being armed (a
/// dispatch source arms itself later, on its queue; a SIGTERM that came in
/// between was dropped, and the command ran on).
enum TerminationSignals {
    static let handlers = Locked<[Int: @Sendable (String) -> Void]>([:])
    private static let nextID = Locked(0)

    static func listen(_ handler: @escaping @Sendable (String) -> Void) -> SignalListener {
        installOnce
        let id = nextID.withLock { id in
            defer { id += 1 }
            return id
        }
        handlers.withLock { $0[id] = handler }
        return SignalListener(id: id)
    }

    /// The pipe's write end, for the C handler; set once, before any handler is installed.
    nonisolated(unsafe) private static var writeEnd: Int32 = -1

    private static let installOnce: Void = {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        writeEnd = fds[1]
        let readEnd = fds[0]
        let reader = Thread { serve(readEnd) }
        reader.name = "pgvault-signals"
        reader.stackSize = 1 << 18
        reader.start()
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(TerminationSignals.writeEnd, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
    }()

    private static func serve(_ readEnd: Int32) {
        var byte: UInt8 = 0
        while true {
            let n = read(readEnd, &byte, 1)
            if n < 0, errno == EINTR { continue }
            guard n == 1 else { return }
            let number = Int32(byte)
            let listening = handlers.value.values
            guard ReceivedSignal.record(number), !listening.isEmpty else {
                // A second signal, or one that no command listens for: quit now.
                Subprocess.terminateRunning()
                PartialOutputs.removeAll()
                _exit(128 + number)
            }
            for handler in listening { handler(Interrupted.name(of: number)) }
        }
    }
}

/// The first SIGINT or SIGTERM this process received.
enum ReceivedSignal {
    static var number: Int32? { state.withLock { $0 } }

    /// Records `number`; false when a signal had already been received.
    static func record(_ number: Int32) -> Bool {
        state.withLock { first in
            defer { if first == nil { first = number } }
            return first == nil
        }
    }

    private static let state = Locked<Int32?>(nil)
}

/// A command stopped by SIGINT or SIGTERM. Reported as itself, never as the
/// error the cancel caused ("canceling statement due to user request").
struct Interrupted: Error, CustomStringConvertible {
    let signal: Int32
    /// What the interrupted command left, e.g. "nothing was published".
    let leaving: String

    static let nothingPublished = "nothing was published (partial output removed)"

    var description: String { "interrupted by \(Self.name(of: signal)); \(leaving)" }

    static func name(of signal: Int32) -> String { signal == SIGINT ? "SIGINT" : "SIGTERM" }

    /// `error` when no signal arrived; otherwise the interruption that caused it.
    static func explaining(_ error: any Error, leaving: String) -> any Error {
        if error is Interrupted { return error }
        guard let signal = ReceivedSignal.number else { return error }
        return Interrupted(signal: signal, leaving: leaving)
    }
}
