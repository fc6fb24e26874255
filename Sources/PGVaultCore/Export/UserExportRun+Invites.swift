import Foundation
import PGClient

extension UserExportRun {
    func invites() throws {
        report(.invites, force: true)
        typealias Column = UserExportQueries.InviteColumn
        let rows = try conn.query(UserExportQueries.invites, [uid]).rows
        try writer.addArray("invites/invites.json") { stream in
            for r in rows {
                let target: ExportJSON = r[Column.targetUserID] == nil ? .null : .object([
                    "id": .id(r[Column.targetUserID]),
                    "name": r[Column.targetUsername] == nil ? .null : .string("\(r[Column.targetUsername] ?? "")#\(r[Column.targetDiscriminator] ?? "")"),
                ])
                try stream.append(.object([
                    "code": .text(r[Column.code]), "server_id": .id(r[Column.serverID]),
                    "channel_id": .id(r[Column.channelID]),
                    "max_uses": .integer(r[Column.maxUses]), "uses": .integer(r[Column.uses]),
                    "max_age_secs": .integer(r[Column.maxAge]),
                    "temporary": .boolean(r[Column.temporary]), "target_type": .integer(r[Column.targetType]),
                    "target_user": target,
                    "created_at": .time(r[Column.createdAt]), "expires_at": .time(r[Column.expiresAt]),
                ]))
                counts.invites += 1
            }
        }
    }
}
