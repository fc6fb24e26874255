import Foundation
import PGClient

extension UserExportRun {
    func reactions() throws {
        report(.reactions, force: true)
        var stream = try writer.beginArray("reactions/reactions.json")
        var row = CopyRow<UserExportQueries.ReactionColumn>()
        func add(_ data: UnsafeRawBufferPointer) throws {
            try row.load(data)
            try stream.append { out in
                var reaction = JSONContainer.object(indent: 1)
                reaction.key("id", &out); row.string(.id, &out)
                reaction.key("message_id", &out); row.string(.messageID, &out)
                reaction.key("message_created_at", &out); row.time(.messageCreatedAt, &out)
                reaction.key("channel_id", &out); row.string(.channelID, &out)
                reaction.key("emoji", &out)
                var emoji = JSONContainer.object(indent: 2)
                emoji.key("id", &out); row.string(.emojiID, &out)
                emoji.key("name", &out); row.string(.emojiName, &out)
                emoji.key("animated", &out); row.boolean(.emojiAnimated, &out)
                emoji.end(&out)
                reaction.key("created_at", &out); row.time(.createdAt, &out)
                reaction.end(&out)
            }
            counts.reactions += 1
            if counts.reactions % 256 == 0 { try options.cancellation?.check() }
        }
        if let side {
            try side.wait().reactions.forEachLine(add)
        } else {
            try conn.copyOut(UserExportQueries.copy(UserExportQueries.reactions, userID), onData: add)
        }
        try stream.finish()
    }
}
