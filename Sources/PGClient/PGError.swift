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
            || (sqlState?.hasPrefix("08") ?? false) || sqlState == "57P01"
    }

    // A few SQLSTATEs the rest of pgvault reacts to.
    public static let undefinedTable = "42P01"
    public static let lockNotAvailable = "55P03"
    public static let queryCanceled = "57014"
    public static let foreignKeyViolation = "23503"
    public static let uniqueViolation = "23505"
    public static let invalidPassword = "28P01"
    public static let adminShutdown = "57P01"
}
