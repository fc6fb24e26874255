import Foundation
import PGClient

extension UserExportRun {
    func auditLog() throws {
        report(.auditLog, force: true)
        typealias Column = UserExportQueries.AuditLogColumn
        let rows = try ExportCursor(conn: conn, name: "pgvault_export_audit", sql: UserExportQueries.auditLog,
                                    parameters: [uid], batchSize: options.batchSize)
        try writer.addArray("audit_log/audit_log.json") { stream in
            while let page = try rows.nextPage() {
                // Parse the page, find every address-like string, and ask the
                // snapshot which of them belong to someone else.
                let parsed = try page.map { r in (r, try ExportJSON.json(r[Column.changes]), try ExportJSON.json(r[Column.options])) }
                var strings: [String] = []
                for (r, changes, opts) in parsed {
                    AuditRedaction.strings(in: changes, into: &strings)
                    AuditRedaction.strings(in: opts, into: &strings)
                    if let reason = r[Column.reason] { strings.append(reason) }
                }
                var redaction = AuditRedaction(userID: uid, ownEmail: ownEmail)
                redaction.otherUsersEmails = try otherUsersEmails(among: strings)
                for (r, changes, opts) in parsed {
                    try stream.append(.object([
                        "id": .id(r[Column.id]), "server_id": .id(r[Column.serverID]),
                        "action_type": .integer(r[Column.actionType]),
                        "target_id": .id(r[Column.targetID]), "target_type": .text(r[Column.targetType]),
                        "changes": redaction.redact(changes), "options": redaction.redact(opts),
                        "reason": r[Column.reason].map { .string(redaction.redactText($0)) } ?? .null,
                        "created_at": .time(r[Column.createdAt]),
                    ]))
                    counts.auditLogEntries += 1
                }
            }
        }
        try rows.close()
    }

    func otherUsersEmails(among strings: [String]) throws -> Set<String> {
        var candidates = Set<String>()
        for s in strings {
            for e in AuditRedaction.emailCandidates(in: s) {
                candidates.insert(e)
                candidates.insert(e.lowercased())
            }
        }
        guard !candidates.isEmpty else { return [] }
        let array = "{" + candidates.sorted().map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
        return Set(try conn.query(UserExportQueries.otherUsersEmails, [array, uid]).rows.map { try $0.string(0) })
    }
}
