import Foundation
import PGClient

extension UserExportRun {
    func account() throws {
        report(.account, force: true)
        typealias Column = UserExportQueries.UserColumn
        let row = try conn.query(UserExportQueries.user, [uid]).firstRow()
        publicID = try row.string(Column.publicID)
        tag = "\(try row.string(Column.username))#\(try row.string(Column.discriminator))"
        ownEmail = row[Column.email] ?? ""  // NULL for some bots
        try writer.add("README.txt", bytes: Array(ExportReadme.text(
            tag: tag, userID: uid, generatedAt: generatedAt, snapshotAt: snapshotAt).utf8))
        try writer.add("account/user.json", json: .object([
            "id": .id(row[Column.id]), "public_id": .id(row[Column.publicID]), "username": .text(row[Column.username]),
            "discriminator": .text(row[Column.discriminator]), "tag": .string(tag), "email": .text(row[Column.email]),
            "avatar_url": .text(row[Column.avatarURL]), "banner_url": .text(row[Column.bannerURL]),
            "bio": .text(row[Column.bio]),
            "is_verified": .boolean(row[Column.isVerified]), "is_bot": .boolean(row[Column.isBot]),
            "is_system": .boolean(row[Column.isSystem]),
            "premium_type": .integer(row[Column.premiumType]), "settings": try .json(row[Column.settings]),
            "created_at": .time(row[Column.createdAt]), "updated_at": .time(row[Column.updatedAt]),
            "deleted_at": .time(row[Column.deletedAt]),
        ]))
    }
}
