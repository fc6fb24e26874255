import Foundation
import PGClient

extension UserExportRun {
    func servers() throws {
        report(.servers, force: true)
        typealias Role = UserExportQueries.RoleColumn
        typealias Membership = UserExportQueries.MembershipColumn
        typealias Owned = UserExportQueries.OwnedServerColumn
        var rolesByServer: [String: [ExportJSON]] = [:]
        for r in try conn.query(UserExportQueries.roles, [uid]).rows {
            rolesByServer[try r.string(Role.serverID), default: []].append(.object([
                "id": .id(r[Role.id]), "name": .text(r[Role.name]), "color": .integer(r[Role.color]),
                "position": .integer(r[Role.position]),
                "permissions": .id(r[Role.permissions]), "hoist": .boolean(r[Role.hoist]),
                "mentionable": .boolean(r[Role.mentionable]),
                "managed": .boolean(r[Role.managed]), "assigned_at": .time(r[Role.assignedAt]),
            ]))
            counts.roleAssignments += 1
        }
        var memberships: [ExportJSON] = []
        for m in try conn.query(UserExportQueries.memberships, [uid]).rows {
            let serverID = try m.string(Membership.serverID)
            let file = "servers/s\(serverID).json"
            let roles = rolesByServer[serverID] ?? []
            try writer.add(file, json: .object([
                "server": .object([
                    "id": .id(m[Membership.serverID]), "public_id": .id(m[Membership.publicID]),
                    "name": .text(m[Membership.name]), "description": .text(m[Membership.description]),
                    "icon_url": .text(m[Membership.iconURL]), "created_at": .time(m[Membership.serverCreatedAt]),
                    "deleted_at": .time(m[Membership.serverDeletedAt]),
                ]),
                "is_owner": .boolean(m[Membership.isOwner]),
                "membership": .object([
                    "nickname": .text(m[Membership.nickname]), "avatar_url": .text(m[Membership.avatarURL]),
                    "joined_at": .time(m[Membership.joinedAt]),
                    "premium_since": .time(m[Membership.premiumSince]), "deaf": .boolean(m[Membership.deaf]),
                    "mute": .boolean(m[Membership.mute]),
                    "pending": .boolean(m[Membership.pending]),
                    "communication_disabled_until": .time(m[Membership.communicationDisabledUntil]),
                    "created_at": .time(m[Membership.createdAt]), "updated_at": .time(m[Membership.updatedAt]),
                ]),
                "roles": .array(roles),
            ]))
            memberships.append(.object([
                "server_id": .id(m[Membership.serverID]), "name": .text(m[Membership.name]),
                "joined_at": .time(m[Membership.joinedAt]),
                "nickname": .text(m[Membership.nickname]), "is_owner": .boolean(m[Membership.isOwner]),
                "roles": .int(roles.count), "file": .string(file),
            ]))
            counts.serverMemberships += 1
        }
        var owned: [ExportJSON] = []
        for s in try conn.query(UserExportQueries.ownedServers, [uid]).rows {
            owned.append(.object([
                "server_id": .id(s[Owned.id]), "public_id": .id(s[Owned.publicID]), "name": .text(s[Owned.name]),
                "created_at": .time(s[Owned.createdAt]), "deleted_at": .time(s[Owned.deletedAt]),
                "member_count": .integer(s[Owned.memberCount]),
                "is_member": .boolean(s[Owned.isMember]),
            ]))
            counts.ownedServers += 1
        }
        try writer.add("servers/index.json", json: .object([
            "memberships": .array(memberships), "owned_servers": .array(owned),
        ]))
    }
}
