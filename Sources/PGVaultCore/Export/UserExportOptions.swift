import Foundation
import PGClient

public struct UserExportOptions: Sendable {
    /// Rows fetched from a cursor at a time (audit-log entries; messages
    /// and reactions stream through COPY).
    public var batchSize = 1000
    public var progress: (@Sendable (UserExportProgress) -> Void)?
    public var progressInterval: Duration = .milliseconds(500)
    /// Called after each file of the package is written, with its path and
    /// the number of files so far. Throwing aborts the export.
    public var afterFile: (@Sendable (_ path: String, _ filesSoFar: Int) throws -> Void)?
    public var cancellation: ExportCancellation?
    /// Opens another connection to the database. When given, the reactions
    /// and the channels' descriptions are read on it, in the same snapshot,
    /// while the messages stream on the first connection.
    public var connect: (@Sendable () throws -> PGConnection)?
    /// With a second connection: from this many messages on, the later half
    /// of the user's channels (by messages) is read on it.
    var splitMessagesFrom: Int64 = 20_000

    public init() {}
}
