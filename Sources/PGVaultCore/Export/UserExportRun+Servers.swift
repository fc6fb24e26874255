import Foundation
import PGClient

extension UserExportRun {
    func servers() throws {
        report(.servers, force: true)
        var rolesByServer: [String: [ExportJSON]] = [:]
        for r in try conn.query(UserExportQueries.roles, [uid]).rows {
            rolesByServer[r[0] ?? "", default: []].append(.object([
                "id": .id(r[1]), "name": .text(r[2]), "color": .integer(r[3]), "position": .integer(r[4]),
                "permissions": .id(r[5]), "hoist": .boolean(r[6]), "mentionable": .boolean(r[7]),
                "managed": .boolean(r[8]), "assigned_at": .time(r[9]),
            ]))
            counts.roleAssignments += 1
        }
        var memberships: [ExportJSON] = []
        for m in try conn.query(UserExportQueries.memberships, [uid]).rows {
            let serverID = m[0] ?? ""
            let file = "servers/s\(serverID).json"
            let roles = rolesByServer[serverID] ?? []
            try writer.add(file, json: .object([
                "server": .object([
                    "id": .id(m[0]), "public_id": .id(m[1]), "name": .text(m[2]), "description": .text(m[3]),
                    "icon_url": .text(m[4]), "created_at": .time(m[6]), "deleted_at": .time(m[7]),
                ]),
                "is_owner": .boolean(m[5]),
                "membership": .object([
                    "nickname": .text(m[8]), "avatar_url": .text(m[9]), "joined_at": .time(m[10]),
                    "premium_since": .time(m[11]), "deaf": .boolean(m[12]), "mute": .boolean(m[13]),
                    "pending": .boolean(m[14]), "communication_disabled_until": .time(m[15]),
                    "created_at": .time(m[16]), "updated_at": .time(m[17]),
                ]),
                "roles": .array(roles),
            ]))
            memberships.append(.object([
                "server_id": .id(m[0]), "name": .text(m[2]), "joined_at": .time(m[10]),
                "nickname": .text(m[8]), "is_owner": .boolean(m[5]), "roles": .int(roles.count), "file": .string(file),
            ]))
            counts.serverMemberships += 1
        }
        var owned: [ExportJSON] = []
        for s in try conn.query(UserExportQueries.ownedServers, [uid]).rows {
            owned.append(.object([
                "server_id": .id(s[0]), "public_id": .id(s[1]), "name": .text(s[2]),
                "created_at": .time(s[3]), "deleted_at": .time(s[4]), "member_count": .integer(s[5]),
                "is_member": .boolean(s[6]),
            ]))
            counts.ownedServers += 1
        }
        try writer.add("servers/index.json", json: .object([
            "memberships": .array(memberships), "owned_servers": .array(owned),
        ]))
    }
}
