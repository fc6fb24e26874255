/// What a package holds; also written into its manifest (`counts`).
public struct UserExportCounts: Sendable, Equatable {
    public var serverMemberships = 0
    public var ownedServers = 0
    public var roleAssignments = 0
    public var channels = 0
    public var messages = 0
    public var deletedMessages = 0
    public var replies = 0
    public var attachments = 0
    public var reactions = 0
    public var invites = 0
    public var auditLogEntries = 0

    /// As in the manifest, in this order.
    public var fields: [(key: String, value: Int)] {
        [
            ("server_memberships", serverMemberships), ("owned_servers", ownedServers),
            ("role_assignments", roleAssignments), ("channels", channels), ("messages", messages),
            ("deleted_messages", deletedMessages), ("replies", replies), ("attachments", attachments),
            ("reactions", reactions), ("invites", invites), ("audit_log_entries", auditLogEntries),
        ]
    }
}
