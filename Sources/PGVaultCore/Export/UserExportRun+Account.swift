import Foundation
import PGClient

extension UserExportRun {
    func account() throws {
        report(.account, force: true)
        let row = try conn.query(UserExportQueries.user, [uid]).firstRow()
        publicID = row[1] ?? ""
        tag = "\(row[2] ?? "")#\(row[3] ?? "")"
        ownEmail = row[4] ?? ""
        try writer.add("README.txt", bytes: Array(ExportReadme.text(
            tag: tag, userID: uid, generatedAt: generatedAt, snapshotAt: snapshotAt).utf8))
        try writer.add("account/user.json", json: .object([
            "id": .id(row[0]), "public_id": .id(row[1]), "username": .text(row[2]),
            "discriminator": .text(row[3]), "tag": .string(tag), "email": .text(row[4]),
            "avatar_url": .text(row[5]), "banner_url": .text(row[6]), "bio": .text(row[7]),
            "is_verified": .boolean(row[8]), "is_bot": .boolean(row[9]), "is_system": .boolean(row[10]),
            "premium_type": .integer(row[11]), "settings": try .json(row[12]),
            "created_at": .time(row[13]), "updated_at": .time(row[14]), "deleted_at": .time(row[15]),
        ]))
    }
}
