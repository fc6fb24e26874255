import Foundation
import PGClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an export reads besides the messages, read on a second connection in
/// the export's snapshot (`pg_export_snapshot()`, `SET TRANSACTION SNAPSHOT`)
/// on a thread of its own, while the first connection streams the messages:
/// the messages of the second half of the user's channels (when the export
/// splits them), then the reactions (their COPY rows), and the description
/// of every channel the user wrote in, all kept in unlinked temporary files,
/// so memory does not grow with them. The export turns them into files
/// afterwards, in package order.
final class ExportSideReader: @unchecked Sendable {
    struct Output: @unchecked Sendable {
        /// Rows of `COPY (UserExportQueries.reactions)`.
        let reactions: SpoolFile
        /// channel.json's fields (without the counts), see `ChannelDescriptions.spool`.
        let channels: SpoolFile
    }

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var output: Result<Output, any Error>?
    private var canceller: PGCanceller?
    private var stopping = false
    private var spooledMessages: SpoolFile?

    /// `messages`: the range of channel ids whose messages to read here.
    init(
        connect: @escaping @Sendable () throws -> PGConnection, snapshot: String, userID: Int64,
        messages: ClosedRange<Int64>?, cancellation: ExportCancellation?
    ) {
        let thread = Thread { [self] in
            let result = Result {
                try read(connect: connect, snapshot: snapshot, userID: userID, messages: messages, cancellation: cancellation)
            }
            condition.withLock {
                output = result
                canceller = nil
                condition.broadcast()
            }
        }
        thread.name = "pgvault-export-side"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Waits for the messages (rows of `COPY (UserExportQueries.messages)`),
    /// nil when none were asked for; throws the reading's error.
    func messages() throws -> SpoolFile? {
        try condition.withLock {
            while spooledMessages == nil, output == nil { condition.wait() }
            if let spooledMessages { return spooledMessages }
            _ = try output!.get()
            return nil
        }
    }

    /// Waits for the reading to end; throws its error.
    func wait() throws -> Output {
        try condition.withLock {
            while output == nil { condition.wait() }
            return output!
        }.get()
    }

    /// Cancels the reading if it still runs, and waits for it to end.
    func stop() {
        condition.withLock {
            stopping = true
            canceller?.cancel()
            while output == nil { condition.wait() }
        }
    }

    private func read(
        connect: @Sendable () throws -> PGConnection, snapshot: String, userID: Int64, messages: ClosedRange<Int64>?,
        cancellation: ExportCancellation?
    ) throws -> Output {
        let conn = try connect()
        try condition.withLock {
            if stopping { throw UserExportError.cancelled(reason: "the export stopped") }
            canceller = conn.makeCanceller()
        }
        cancellation?.attachSide(conn)
        defer { cancellation?.attachSide(nil) }
        return try conn.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { conn in
            try conn.execute("SET TRANSACTION SNAPSHOT " + SQL.literal(snapshot))
            try conn.execute(UserExportQueries.session)
            let uid = String(userID)
            if let messages {
                let spool = try SpoolFile()
                let sql = UserExportQueries.copy(UserExportQueries.messages, userID, messages.lowerBound, messages.upperBound)
                try conn.copyOut(sql) { try spool.append($0) }
                try spool.finishWriting()
                condition.withLock {
                    spooledMessages = spool
                    condition.broadcast()
                }
            }
            let spool = try SpoolFile()
            try conn.copyOut(UserExportQueries.copy(UserExportQueries.reactions, userID)) { try spool.append($0) }
            try spool.finishWriting()
            // In channel-id order, as the messages are streamed (in the same
            // snapshot, so the same channels): the export reads both in step.
            let ids = try conn.query(UserExportQueries.channelIDs, [uid]).rows.map { try $0.string(0) }
            return Output(reactions: spool, channels: try ChannelDescriptions.spool(conn, ids: ids, userID: uid))
        }
    }
}

/// The fields of channel.json (without the counts), read in batches of channels.
enum ChannelDescriptions {
    /// Channels per statement.
    static let batch = 500

    /// The descriptions of the channels `ids`, in that order, one line each
    /// (the fields as a compact JSON object, `{"id": …}` alone for a channel
    /// not found), in an unlinked temporary file: memory holds one batch.
    static func spool<IDs: RandomAccessCollection>(
        _ conn: PGConnection, ids: IDs, userID: String
    ) throws -> SpoolFile where IDs.Element == String, IDs.Index == Int {
        let spool = try SpoolFile(purpose: "export-channels")
        var line = JSONBuffer(capacity: 4096)
        defer { line.release() }
        for start in stride(from: ids.startIndex, to: ids.endIndex, by: batch) {
            let batch = Array(ids[start..<min(start + batch, ids.endIndex)])
            let described = try read(conn, ids: batch, userID: userID)
            for id in batch {
                line.removeAll()
                ExportJSON.object(described[id] ?? [.init("id", .string(id))]).writeCompact(into: &line)
                line.append(UInt8(ascii: "\n"))
                try spool.append(line.bytes)
            }
        }
        try spool.finishWriting()
        return spool
    }

    static func read(_ conn: PGConnection, ids: [String], userID: String) throws -> [String: [ExportJSON.Field]] {
        typealias Channel = UserExportQueries.ChannelColumn
        typealias Participant = UserExportQueries.DMParticipantColumn
        let array = "{" + ids.joined(separator: ",") + "}"
        var described: [String: [ExportJSON.Field]] = [:]
        var dms: [String] = []
        for c in try conn.query(UserExportQueries.channels, [array]).rows {
            let id = try c.string(Channel.id)
            // A channel without a type gets no type_name (-1 names none).
            let type = try c.optionalInt(Channel.type) ?? -1
            described[id] = [
                .init("id", .id(c[Channel.id])), .init("type", .integer(c[Channel.type])),
                .init("type_name", ExportNames.channelTypes[type].map { .string($0) } ?? .null),
                .init("name", .text(c[Channel.name])), .init("topic", .text(c[Channel.topic])),
                .init("server", c[Channel.serverID] == nil ? .null : .object(["id": .id(c[Channel.serverID]),
                "name": .text(c[Channel.serverName])])),
                .init("parent_id", .id(c[Channel.parentID])), .init("nsfw", .boolean(c[Channel.nsfw])),
                .init("created_at", .time(c[Channel.createdAt])), .init("deleted_at", .time(c[Channel.deletedAt])),
            ]
            if type == 1 || type == 3 { dms.append(id) }
        }
        guard !dms.isEmpty else { return described }
        var recipients: [String: [String]] = [:]
        for r in try conn.query(UserExportQueries.dmParticipants, ["{" + dms.joined(separator: ",") + "}", userID]).rows {
            recipients[try r.string(Participant.channelID), default: []].append(try r.string(Participant.authorID))
        }
        let names = try publicNames(conn, Array(Set(recipients.values.joined())))
        for id in dms {
            let people = (recipients[id] ?? []).map { ExportJSON.object(["id": .string($0),
            "name": names[$0].map { .string($0) } ?? .null]) }
            described[id]?.append(.init("recipients", .array(people)))
        }
        return described
    }

    /// username#discriminator of other users, by id.
    static func publicNames(_ conn: PGConnection, _ ids: [String]) throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        typealias Name = UserExportQueries.PublicNameColumn
        var names: [String: String] = [:]
        for r in try conn.query(UserExportQueries.publicNames, ["{" + ids.joined(separator: ",") + "}"]).rows {
            names[try r.string(Name.id)] = "\(try r.string(Name.username))#\(try r.string(Name.discriminator))"
        }
        return names
    }
}
