/// Progress of one export, reported from the exporting thread.
public struct UserExportProgress: Sendable, Equatable {
    public enum Phase: String, Sendable {
        case account, servers, messages, reactions, invites, auditLog = "audit_log", finishing
    }

    public var phase: Phase
    public var messagesWritten: Int64 = 0
    /// All the user's messages (soft-deleted ones included).
    public var messagesTotal: Int64 = 0
    public var channelsWritten = 0
    public var filesWritten = 0
}
