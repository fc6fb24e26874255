import ArchiveIO
import CryptoDigest
import Foundation
import PGClient
import ZstdStream

/// The one error type of pgvault's own logic. Its ``kind`` says what went
/// wrong in terms an operator acts on, and decides the exit status and the
/// JSON `status` (docs/cli.md); its ``message`` names the thing and the fix;
/// the error underneath (a ``PGError`` with its SQLSTATE and hint, an
/// ``ArchiveError``, a ``FileError`` with its errno) is kept, not flattened
/// into a string, so callers and tests can still ask it.
public struct PGVaultError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// The command was called wrongly (a bad option value, conflicting options).
        case usage
        /// No connection to the database, or it was lost.
        case connection
        /// The server refused a statement.
        case server
        /// An archive or repository is missing, unreadable, corrupt or of the wrong kind.
        case archive
        /// A file or folder could not be read or written (a full disk, permissions).
        case io
        /// A signal or a cancel stopped the work.
        case interrupted
        /// The work ran, and what it checked is wrong (counts, digests, foreign keys).
        case verification
    }

    public var kind: Kind
    /// What failed and what to do, as one or more lines for a person.
    public var message: String
    /// The error this one explains, if any.
    public var underlying: (any Error & Sendable)?
    /// For an `.archive` error: the path itself is the trouble (no archive,
    /// a truncated tar, no manifest), not one member of it.
    public var wholeArchive = false

    public init(_ kind: Kind, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.kind = kind
        self.message = message
        self.underlying = underlying
    }

    /// `message`; the underlying error's text follows a colon unless the
    /// message already holds it.
    public var description: String {
        guard let underlying else { return message }
        let detail = "\(underlying)"
        return message.isEmpty ? detail : message.contains(detail) ? message : "\(message): \(detail)"
    }

    /// The server's error underneath, if any (SQLSTATE, hint).
    public var serverError: PGError? {
        underlying as? PGError ?? (underlying as? PGVaultError)?.serverError
    }

    /// The exit status a command ends with (docs/cli.md): 64 for usage, 1 for
    /// a failed check, 130 for an interruption, 2 for everything else.
    public var exitCode: Int32 {
        switch kind {
        case .usage: 64
        case .verification: 1
        case .interrupted: 130
        case .connection, .server, .archive, .io: 2
        }
    }

    /// The JSON `status` of the failure object.
    public var status: String {
        switch kind {
        case .interrupted: "interrupted"
        case .usage, .connection, .server, .archive, .io, .verification: "failed"
        }
    }

    /// `error` as a ``PGVaultError``: itself, or the lower layers' errors
    /// given the kind they mean.
    public static func classify(_ error: any Error) -> PGVaultError {
        switch error {
        case let error as PGVaultError:
            return error
        case let error as PGError:
            if error.kind == .cancelled, error.sqlState == PGError.queryCanceled, Cancellation.isCancelled {
                return PGVaultError(.interrupted, "cancelled", underlying: error)
            }
            return PGVaultError(error.isConnectionFailure ? .connection : .server, "", underlying: error)
        case let error as FileError:
            return PGVaultError(.io, "", underlying: error)
        case let error as ArchiveError:
            if case .system = error { return PGVaultError(.io, "", underlying: error) }
            return PGVaultError(.archive, "", underlying: error)
        case let error as ZstdError:
            return PGVaultError(.archive, "", underlying: error)
        case let error as DigestError:
            return PGVaultError(.io, "", underlying: error)
        case is CancellationError:
            return PGVaultError(.interrupted, "cancelled")
        default:
            return PGVaultError(.io, "\(error)")
        }
    }
}

extension PGVaultError {
    public static func usage(_ message: String) -> PGVaultError { PGVaultError(.usage, message) }
    public static func archive(
        _ message: String, wholeArchive: Bool = false, underlying: (any Error & Sendable)? = nil
    ) -> PGVaultError {
        var error = PGVaultError(.archive, message, underlying: underlying)
        error.wholeArchive = wholeArchive
        return error
    }
    public static func io(_ message: String, underlying: (any Error & Sendable)? = nil) -> PGVaultError {
        PGVaultError(.io, message, underlying: underlying)
    }
    public static func verification(_ message: String) -> PGVaultError { PGVaultError(.verification, message) }
    /// A server error with what pgvault was doing: the SQLSTATE and hint stay reachable.
    public static func server(_ message: String, _ error: PGError) -> PGVaultError {
        PGVaultError(error.isConnectionFailure ? .connection : .server, message, underlying: error)
    }
}
