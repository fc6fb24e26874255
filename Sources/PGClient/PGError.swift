/// A failure reported by libpq or by the server.
///
/// It carries the server's own fields (SQLSTATE, message, detail, hint) so that a
/// command-line tool can show them, and never the connection's password: libpq does
/// not put passwords in its messages, and pgvault never builds messages from a
/// conninfo string (see ``ConnInfo/redacted(_:)``).
public struct PGError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Could not connect (bad address, wrong password, server down).
        case connection
        /// The server rejected a statement.
        case query
        /// The connection broke while a statement or COPY was running.
        case connectionLost
        /// A COPY stream failed.
        case copy
        /// The statement was cancelled (by us, or by statement_timeout).
        case cancelled
        /// libpq or the server did something this layer did not expect.
        case protocolViolation
    }

    public var kind: Kind
    /// Five-character SQLSTATE, when the server sent one (e.g. `23503`).
    public var sqlState: String?
    /// Primary message (the server's, or libpq's).
    public var message: String
    public var detail: String?
    public var hint: String?
    /// What pgvault was doing, e.g. `COPY "public"."messages_2025_01" TO STDOUT`.
    public var context: String?

    public init(
        kind: Kind, sqlState: String? = nil, message: String,
        detail: String? = nil, hint: String? = nil, context: String? = nil
    ) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.context = context
    }

    public var description: String {
        var text = message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail, !detail.isEmpty { text += "\nDETAIL: \(detail)" }
        if let hint, !hint.isEmpty { text += "\nHINT: \(hint)" }
        if let context, !context.isEmpty { text += "\nwhile: \(context)" }
        return text
    }

    /// True for errors after which the connection cannot be used any more.
    public var isConnectionFailure: Bool {
        kind == .connection || kind == .connectionLost
            || (sqlState?.hasPrefix(Self.connectionExceptionClass) ?? false) || sqlState == Self.adminShutdown
    }

    // The SQLSTATEs the rest of pgvault reacts to, named as in PostgreSQL's
    // errcodes appendix (https://www.postgresql.org/docs/current/errcodes-appendix.html).
    /// Class 08, Connection Exception: the first two characters of every code in it.
    public static let connectionExceptionClass = "08"
    public static let invalidTextRepresentation = "22P02"
    public static let foreignKeyViolation = "23503"
    public static let uniqueViolation = "23505"
    public static let checkViolation = "23514"
    public static let invalidPassword = "28P01"
    public static let dependentObjectsStillExist = "2BP01"
    public static let deadlockDetected = "40P01"
    public static let insufficientPrivilege = "42501"
    public static let undefinedFunction = "42883"
    public static let undefinedTable = "42P01"
    public static let undefinedObject = "42704"
    public static let invalidObjectDefinition = "42P17"
    public static let lockNotAvailable = "55P03"
    public static let queryCanceled = "57014"
    public static let adminShutdown = "57P01"
}
