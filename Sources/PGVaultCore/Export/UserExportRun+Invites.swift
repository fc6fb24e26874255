import Foundation
import PGClient

extension UserExportRun {
    func invites() throws {
        report(.invites, force: true)
        let rows = try conn.query(UserExportQueries.invites, [uid]).rows
        try writer.addArray("invites/invites.json") { stream in
            for r in rows {
                let target: ExportJSON = r[8] == nil ? .null : .object([
                    "id": .id(r[8]), "name": r[9] == nil ? .null : .string("\(r[9] ?? "")#\(r[10] ?? "")"),
                ])
                try stream.append(.object([
                    "code": .text(r[0]), "server_id": .id(r[1]), "channel_id": .id(r[2]),
                    "max_uses": .integer(r[3]), "uses": .integer(r[4]), "max_age_secs": .integer(r[5]),
                    "temporary": .boolean(r[6]), "target_type": .integer(r[7]), "target_user": target,
                    "created_at": .time(r[11]), "expires_at": .time(r[12]),
                ]))
                counts.invites += 1
            }
        }
    }
}
