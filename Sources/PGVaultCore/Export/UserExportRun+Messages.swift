import Foundation
import PGClient

extension UserExportRun {
    func messages() throws {
        // The total is for a progress display (and splitting, see write()).
        if options.progress != nil, side == nil { progress.messagesTotal = try messageTotal() }
        report(.messages, force: true)
        // Each channel's messages.json as the rows reach it; then the
        // channel.json files, then the index, both in channel-id order.
        var written: [WrittenChannel] = []
        var file: (channel: [UInt8], stream: ExportPackageWriter.ArrayStream, deleted: Int)?
        func finishChannel() throws {
            guard var done = file else { return }
            file = nil
            try done.stream.finish()
            written.append((String(decoding: done.channel, as: UTF8.self), done.stream.count, done.deleted))
            counts.channels += 1
            counts.messages += done.stream.count
            counts.deletedMessages += done.deleted
            progress.channelsWritten += 1
            report(.messages)
        }
        var row = CopyRow<UserExportQueries.MessageColumn>()
        func add(_ data: UnsafeRawBufferPointer) throws {
            try row.load(data)
            guard let channel = row[.channelID] else { throw exportDataError("a message without a channel") }
            if file.map({ !$0.channel.elementsEqual(channel) }) ?? true {
                try finishChannel()
                let path = "messages/c\(String(decoding: channel, as: UTF8.self))/messages.json"
                file = (Array(channel), try writer.beginArray(path), 0)
            }
            try file!.stream.append { try writeMessage(row, into: &$0) }
            if !row.isNull(.deletedAt) { file!.deleted += 1 }
            progress.messagesWritten += 1
            if progress.messagesWritten % 256 == 0 {
                try options.cancellation?.check()
                report(.messages)
            }
        }
        try conn.copyOut(UserExportQueries.copy(UserExportQueries.messages, userID, ownChannels.lowerBound, ownChannels.upperBound), onData: add)
        // The later channels' messages, read alongside.
        try side?.messages()?.forEachLine(add)
        try finishChannel()
        // The channels' descriptions, one line each in channel-id order (the
        // order of `written`: the messages come ordered by channel, this
        // connection's channels before the side reader's): read alongside
        // while the messages streamed, else here, in batches.
        let descriptions = try side?.wait().channels
            ?? ChannelDescriptions.spool(conn, ids: written.lazy.map(\.id), userID: uid)
        try forEachChannel(written, descriptions) { folder, _, json in
            try writer.add(folder + "channel.json", json: json)
        }
        // The index is streamed, entry by entry. The zip's entries follow one
        // another, and every channel.json comes before it (package order), so
        // it reads the descriptions a second time (from the file, no statement).
        var index = try writer.beginArray("messages/index.json", after: [
            .init("message_count", .int(counts.messages)), .init("deleted_message_count", .int(counts.deletedMessages)),
        ], key: "channels")
        try forEachChannel(written, descriptions) { folder, channel, json in
            try index.append(.object([
                "channel_id": .string(channel.id), "name": json["name"] ?? .null,
                "type": json["type"] ?? .null, "type_name": json["type_name"] ?? .null,
                "server_id": json["server"]?["id"] ?? .null, "server_name": json["server"]?["name"] ?? .null,
                "message_count": .int(channel.messages), "deleted_message_count": .int(channel.deleted),
                "folder": .string(folder),
            ]))
        }
        try index.finish()
    }

    /// A channel whose messages.json is written: its id, how many messages it holds, how many of them deleted.
    typealias WrittenChannel = (id: String, messages: Int, deleted: Int)

    /// Calls `body` with each channel of `written` in order, its folder and
    /// its channel.json: the next line of `descriptions` (from
    /// `ChannelDescriptions.spool`, in the same order), then the counts.
    private func forEachChannel(
        _ written: [WrittenChannel], _ descriptions: SpoolFile,
        _ body: (_ folder: String, _ channel: WrittenChannel, _ json: ExportJSON) throws -> Void
    ) throws {
        var next = 0
        try descriptions.forEachLine { line in
            let described = try ExportJSONParser.parse(bytes: Array(line))
            guard next < written.count, case var .object(fields) = described, described["id"] == .string(written[next].id) else {
                throw Self.descriptionsOutOfStep(found: described["id"]?.stringValue, expected: next < written.count ? written[next].id : nil)
            }
            let channel = written[next]
            next += 1
            fields.append(.init("message_count", .int(channel.messages)))
            fields.append(.init("deleted_message_count", .int(channel.deleted)))
            try body("messages/c\(channel.id)/", channel, .object(fields))
        }
        guard next == written.count else { throw Self.descriptionsOutOfStep(found: nil, expected: written[next].id) }
    }

    /// The descriptions and the messages' channels differ (both are read in
    /// channel-id order, in one snapshot): nothing is written.
    static func descriptionsOutOfStep(found: String?, expected: String?) -> PGVaultError {
        PGVaultError(.server, """
            the channel descriptions are out of step with the channels of the messages \
            (\(found.map { "channel \($0)" } ?? "none") where \(expected.map { "channel \($0)" } ?? "none") was expected); \
            this is a bug in pgvault, and no package was written. Run the export again, and report it if it recurs.
            """)
    }

    /// How many messages the user wrote, soft-deleted ones included.
    func messageTotal() throws -> Int64 {
        try conn.query(UserExportQueries.messageCount, [uid]).firstRow().int64(0)
    }

    /// One element of messages.json (at indent level 1), from a row of
    /// `UserExportQueries.messages`.
    func writeMessage(_ r: CopyRow<UserExportQueries.MessageColumn>, into out: inout JSONBuffer) throws {
        var message = JSONContainer.object(indent: 1)
        message.key("id", &out); r.string(.id, &out)
        message.key("channel_id", &out); r.string(.channelID, &out)
        message.key("type", &out); r.integer(.type, &out)
        message.key("type_name", &out)
        if let type = r[.type].flatMap({ Int(String(decoding: $0, as: UTF8.self)) }), let name = ExportNames.messageTypes[type] {
            out.appendString(name)
        } else {
            out.append("null")
        }
        message.key("created_at", &out); r.time(.createdAt, &out)
        message.key("edited_at", &out); r.time(.editedAt, &out)
        message.key("deleted", &out); out.append(r.isNull(.deletedAt) ? "false" : "true")
        message.key("deleted_at", &out); r.time(.deletedAt, &out)
        message.key("content", &out); r.string(.content, &out)
        message.key("flags", &out); r.integer(.flags, &out)
        message.key("reply_to", &out)
        if r.isNull(.referenceMessageID) {
            out.append("null")
        } else {
            counts.replies += 1
            var reply = JSONContainer.object(indent: 2)
            reply.key("message_id", &out); r.string(.referenceMessageID, &out)
            reply.key("channel_id", &out); r.string(.referenceChannelID, &out)
            reply.key("server_id", &out); r.string(.referenceServerID, &out)
            reply.key("author", &out)
            if r.isNull(.referenceAuthorID) {
                out.append("null")
            } else {
                var author = JSONContainer.object(indent: 3)
                author.key("id", &out); r.string(.referenceAuthorID, &out)
                author.key("name", &out); out.appendString("\(r.text(.referenceAuthorUsername) ?? "")#\(r.text(.referenceAuthorDiscriminator) ?? "")")
                author.end(&out)
            }
            reply.end(&out)
        }
        message.key("mentions", &out)
        var mentions = JSONContainer.object(indent: 2)
        mentions.key("users", &out); r.idArray(.mentions, indent: 3, &out)
        mentions.key("roles", &out); r.idArray(.mentionRoles, indent: 3, &out)
        mentions.key("everyone", &out); r.boolean(.mentionEveryone, &out)
        mentions.end(&out)
        message.key("embeds", &out); try r.reformattedJSON(.embeds, indent: 2, &out)
        message.key("attachments", &out)
        let attachments = try attachmentsJSON(r.json(.attachments))
        counts.attachments += attachments.count
        ExportJSON.array(attachments).write(into: &out, indent: 2)
        message.end(&out)
    }

    /// A message's attachments, built by json_build_object in the statement in
    /// the documented order: only the time and a non-finite float need converting.
    func attachmentsJSON(_ aggregate: ExportJSON) -> [ExportJSON] {
        var attachments: [ExportJSON] = []
        for case let .object(fields) in aggregate.arrayValue ?? [] {
            attachments.append(.object(fields.map { field -> ExportJSON.Field in
                switch (field.key, field.value) {
                case ("created_at", _): .init(field.key, .time(field.value.stringValue))
                case ("duration_secs", .number), ("duration_secs", .null): field
                case ("duration_secs", _): .init(field.key, .null)
                default: field
                }
            }))
        }
        return attachments
    }
}
