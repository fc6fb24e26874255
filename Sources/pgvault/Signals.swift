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
    let task = Task { try await body() }
    let sources = onTerminationSignals { name in
        note("\(PGVaultCommand.prefix): \(name) received; stopping (again to quit at once)")
        task.cancel()
    }
    defer { sources.forEach { $0.cancel() } }
    do {
        return try await task.value
    } catch {
        throw Interrupted.explaining(error, leaving: leaving)
    }
}

/// Handles SIGINT and SIGTERM until the returned sources are cancelled: the
/// first signal is recorded (``ReceivedSignal``) and passed to `handler` by
/// name; a second one deletes the registered partial outputs, stops the child
/// programs and ends the process at once with 128 + signal.
func onTerminationSignals(_ handler: @escaping @Sendable (String) -> Void) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            guard ReceivedSignal.record(number) else {
                Subprocess.terminateRunning()
                PartialOutputs.removeAll()
                _exit(128 + number)
            }
            handler(Interrupted.name(of: number))
        }
        source.resume()
        return source
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
