import Foundation
import PGClient

extension UserExportRun {
    func reactions() throws {
        report(.reactions, force: true)
        var stream = try writer.beginArray("reactions/reactions.json")
        var row = CopyRow(columns: 8)
        func add(_ data: UnsafeRawBufferPointer) throws {
            try row.load(data)
            try stream.append { out in
                var reaction = JSONContainer.object(indent: 1)
                reaction.key("id", &out); row.string(0, &out)
                reaction.key("message_id", &out); row.string(1, &out)
                reaction.key("message_created_at", &out); row.time(2, &out)
                reaction.key("channel_id", &out); row.string(3, &out)
                reaction.key("emoji", &out)
                var emoji = JSONContainer.object(indent: 2)
                emoji.key("id", &out); row.string(4, &out)
                emoji.key("name", &out); row.string(5, &out)
                emoji.key("animated", &out); row.boolean(6, &out)
                emoji.end(&out)
                reaction.key("created_at", &out); row.time(7, &out)
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
