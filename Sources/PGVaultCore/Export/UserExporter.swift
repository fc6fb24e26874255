import Foundation
import PGClient

/// Progress of one export, reported from the exporting thread.
public struct UserExportProgress: Sendable, Equatable {
    public enum Phase: String, Sendable {
        case account, servers, messages, reactions, invites, auditLog = "audit_log", finishing
    }

    public var phase: Phase
    public var messagesWritten: Int64 = 0
    /// All the user's messages (soft-deleted ones included).
    public var messagesTotal: Int64 = 0
    public var channelsWritten = 0
    public var filesWritten = 0
}

/// What a package holds; also written into its manifest (`counts`).
public struct UserExportCounts: Sendable, Equatable {
    public var serverMemberships = 0
    public var ownedServers = 0
    public var roleAssignments = 0
    public var channels = 0
    public var messages = 0
    public var deletedMessages = 0
    public var replies = 0
    public var attachments = 0
    public var reactions = 0
    public var invites = 0
    public var auditLogEntries = 0

    /// As in the manifest, in this order.
    public var fields: [(key: String, value: Int)] {
        [
            ("server_memberships", serverMemberships), ("owned_servers", ownedServers),
            ("role_assignments", roleAssignments), ("channels", channels), ("messages", messages),
            ("deleted_messages", deletedMessages), ("replies", replies), ("attachments", attachments),
            ("reactions", reactions), ("invites", invites), ("audit_log_entries", auditLogEntries),
        ]
    }
}

/// A package written and closed (not yet under its final name).
public struct UserExportResult: Sendable {
    public let userID: Int64
    public let publicID: String
    /// username#discriminator
    public let tag: String
    public let generatedAt: String
    /// The snapshot's transaction start time (ISO-8601 UTC).
    public let snapshotAt: String
    public let counts: UserExportCounts
    /// Files in the package, manifest.json included.
    public let files: Int
}

/// A package under its final name.
public struct UserExportSummary: Sendable {
    public let result: UserExportResult
    public let path: String
    public let bytes: Int64
    public let sha256: String
    public let elapsedSeconds: Double
}

public struct UserExportOptions: Sendable {
    /// Rows fetched from a cursor at a time (audit-log entries; messages
    /// and reactions stream through COPY).
    public var batchSize = 1000
    public var progress: (@Sendable (UserExportProgress) -> Void)?
    public var progressInterval: Duration = .milliseconds(500)
    /// Called after each file of the package is written, with its path and
    /// the number of files so far. Throwing aborts the export.
    public var afterFile: (@Sendable (_ path: String, _ filesSoFar: Int) throws -> Void)?
    public var cancellation: ExportCancellation?
    /// Opens another connection to the database. When given, the reactions
    /// and the channels' descriptions are read on it, in the same snapshot,
    /// while the messages stream on the first connection.
    public var connect: (@Sendable () throws -> PGConnection)?
    /// With a second connection: from this many messages on, the later half
    /// of the user's channels (by messages) is read on it.
    var splitMessagesFrom: Int64 = 20_000

    public init() {}
}

/// Stops an export from another thread: the export notices between rows, and
/// a statement running on the server is cancelled.
public final class ExportCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var reason: String?
    private var canceller: PGCanceller?
    private var sideCanceller: PGCanceller?

    public init() {}

    public func cancel(_ reason: String) {
        let cancellers = lock.withLock { () -> [PGCanceller?] in
            if self.reason == nil { self.reason = reason }
            return [self.canceller, self.sideCanceller]
        }
        cancellers.forEach { $0?.cancel() }
    }

    public var cancelReason: String? { lock.withLock { reason } }

    func check() throws {
        if let reason = cancelReason { throw UserExportError.cancelled(reason: reason) }
    }

    func attach(_ conn: PGConnection?) {
        let canceller = conn?.makeCanceller()
        lock.withLock { self.canceller = canceller }
    }

    /// The second connection (`UserExportOptions.connect`), while it is used.
    func attachSide(_ conn: PGConnection?) {
        let canceller = conn?.makeCanceller()
        lock.withLock { self.sideCanceller = canceller }
    }
}

/// Writes one user's "download my data" package. docs/export-format.md
/// describes the package; this type is the only writer of it.
public enum UserExporter {
    public static let formatName = "pgvault-user-export"
    public static let formatVersion = 1

    /// Exports the user named by `input` into the zip at `output`, which must
    /// not exist: the package is written under a temporary name in the same
    /// folder and linked into place only when complete.
    public static func export(
        conn: PGConnection, user input: String, output: String, options: UserExportOptions = UserExportOptions()
    ) throws -> UserExportSummary {
        let started = ContinuousClock.now
        let selector = try UserSelector(parsing: input)
        if ExportFiles.exists(output) {
            throw ExportFiles.Failure(message: "'\(output)' already exists; pgvault does not overwrite an export (remove it or choose another --output)")
        }
        let partial = ExportFiles.partialPath(for: output)
        ExportFiles.remove(partial)
        PartialOutputs.register(partial)
        defer { PartialOutputs.forget(partial) }
        do {
            let result = try writePackage(conn: conn, user: selector, input: input, to: partial, options: options)
            let (bytes, sha256) = try ExportFiles.sizeAndDigest(of: partial)
            try options.cancellation?.check()
            try PartialOutputs.publishing(partial) { try ExportFiles.publishNew(partial, as: output) }
            let elapsed = ContinuousClock.now - started
            return UserExportSummary(
                result: result, path: output, bytes: bytes, sha256: sha256,
                elapsedSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        } catch {
            ExportFiles.remove(partial)
            throw error
        }
    }

    /// Writes the package to `path` (which must not exist; created 0600) from
    /// one REPEATABLE READ READ ONLY snapshot, and closes (fsyncs) it. On any
    /// error nothing is left at `path`. An unknown user is reported before
    /// the file is created.
    public static func writePackage(
        conn: PGConnection, user: UserSelector, input: String, to path: String,
        options: UserExportOptions = UserExportOptions()
    ) throws -> UserExportResult {
        options.cancellation?.attach(conn)
        defer { options.cancellation?.attach(nil) }
        var created = false
        do {
            return try conn.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { conn in
                try conn.execute(UserExportQueries.session)
                let userID = try user.resolveID(conn, input: input)
                try options.cancellation?.check()
                let run = try Run(conn: conn, userID: userID, path: path, options: options)
                created = true
                return try run.write()
            }
        } catch {
            if created { ExportFiles.remove(path) }
            if let reason = options.cancellation?.cancelReason { throw UserExportError.cancelled(reason: reason) }
            throw error
        }
    }
}

/// One export in progress: the connection (inside the snapshot), the package
/// being written, and what has been counted.
private final class Run {
    let conn: PGConnection
    let userID: Int64
    let uid: String
    let options: UserExportOptions
    let writer: ExportPackageWriter
    let generatedAt = ExportTime.now()
    let snapshotAt: String
    let serverVersion: String
    var counts = UserExportCounts()
    var progress = UserExportProgress(phase: .account)
    var lastProgress = ContinuousClock.now
    // Filled by the account section.
    var publicID = ""
    var tag = ""
    var ownEmail = ""
    /// Reads reactions, channel descriptions and some messages alongside (options.connect).
    var side: ExportSideReader?
    /// The channels whose messages this connection reads, and the others'.
    var ownChannels = Int64.min...Int64.max
    var alongside: ClosedRange<Int64>?

    init(conn: PGConnection, userID: Int64, path: String, options: UserExportOptions) throws {
        self.conn = conn
        self.userID = userID
        uid = String(userID)
        self.options = options
        let facts = try conn.query("SELECT now(), current_setting('server_version')").firstRow()
        snapshotAt = ExportTime.iso8601(try facts.string(0))
        serverVersion = try facts.string(1)
        writer = try ExportPackageWriter(path: path, mtime: Int64(Date().timeIntervalSince1970))
        writer.afterFile = { [unowned self] file in
            progress.filesWritten = writer.files.count
            try options.cancellation?.check()
            try options.afterFile?(file.path, writer.files.count)
            TestPause.afterExportFile(writer.files.count, path: file.path)
        }
    }

    func write() throws -> UserExportResult {
        try account()
        try servers()
        if let connect = options.connect {
            // A second connection: it reads the messages of the second half
            // of the user's channels (by message count), the reactions and
            // the channels' descriptions while this one streams the first half.
            let total = try messageTotal()
            progress.messagesTotal = total
            if total >= options.splitMessagesFrom, let split = try conn.query(UserExportQueries.channelSplit, [uid, String(total / 2)]).scalar
                .flatMap({ Int64($0) }), split > Int64.min {
                ownChannels = Int64.min...(split - 1)
                alongside = split...Int64.max
            }
            let snapshot = try conn.query("SELECT pg_export_snapshot()").firstRow().string(0)
            side = ExportSideReader(
                connect: connect, snapshot: snapshot, userID: userID, messages: alongside, cancellation: options.cancellation)
        }
        defer { side?.stop() }
        try messages()
        try reactions()
        try invites()
        try auditLog()
        report(.finishing, force: true)
        try writer.add("manifest.json", json: manifest())
        try writer.close()
        return UserExportResult(
            userID: userID, publicID: publicID, tag: tag, generatedAt: generatedAt, snapshotAt: snapshotAt,
            counts: counts, files: writer.files.count)
    }

    // MARK: Progress

    func report(_ phase: UserExportProgress.Phase, force: Bool = false) {
        progress.phase = phase
        guard let callback = options.progress else { return }
        let now = ContinuousClock.now
        if force || now - lastProgress >= options.progressInterval {
            lastProgress = now
            callback(progress)
        }
    }

    // MARK: Sections

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

    func messages() throws {
        // The total is for a progress display (and splitting, see write()).
        if options.progress != nil, side == nil { progress.messagesTotal = try messageTotal() }
        report(.messages, force: true)
        // Each channel's messages.json as the rows reach it; the channel.json
        // files follow in batches (one statement per batch, not per channel),
        // then the index.
        var written: [(id: String, messages: Int, deleted: Int)] = []
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
        var row = CopyRow(columns: 19)
        func add(_ data: UnsafeRawBufferPointer) throws {
            try row.load(data)
            guard let channel = row[1] else { throw ExportJSONError(description: "a message without a channel") }
            if file.map({ !$0.channel.elementsEqual(channel) }) ?? true {
                try finishChannel()
                let path = "messages/c\(String(decoding: channel, as: UTF8.self))/messages.json"
                file = (Array(channel), try writer.beginArray(path), 0)
            }
            try file!.stream.append { try writeMessage(row, into: &$0) }
            if !row.isNull(7) { file!.deleted += 1 }
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
        let describedAlongside = try side?.wait().channels
        var index: [ExportJSON] = []
        for start in stride(from: 0, to: written.count, by: ChannelDescriptions.batch) {
            let batch = written[start..<min(start + ChannelDescriptions.batch, written.count)]
            let described = try describedAlongside ?? ChannelDescriptions.read(conn, ids: batch.map(\.id), userID: uid)
            for channel in batch {
                let folder = "messages/c\(channel.id)/"
                var fields = described[channel.id] ?? [.init("id", .string(channel.id))]
                fields.append(.init("message_count", .int(channel.messages)))
                fields.append(.init("deleted_message_count", .int(channel.deleted)))
                let json = ExportJSON.object(fields)
                try writer.add(folder + "channel.json", json: json)
                index.append(.object([
                    "channel_id": .string(channel.id), "name": json["name"] ?? .null,
                    "type": json["type"] ?? .null, "type_name": json["type_name"] ?? .null,
                    "server_id": json["server"]?["id"] ?? .null, "server_name": json["server"]?["name"] ?? .null,
                    "message_count": .int(channel.messages), "deleted_message_count": .int(channel.deleted),
                    "folder": .string(folder),
                ]))
            }
        }
        try writer.add("messages/index.json", json: .object([
            "message_count": .int(counts.messages), "deleted_message_count": .int(counts.deletedMessages),
            "channels": .array(index),
        ]))
    }

    /// How many messages the user wrote, soft-deleted ones included.
    func messageTotal() throws -> Int64 {
        try conn.query(UserExportQueries.messageCount, [uid]).firstRow().int64(0)
    }

    /// One element of messages.json (at indent level 1), from a row of
    /// `UserExportQueries.messages`.
    func writeMessage(_ r: CopyRow, into out: inout JSONBuffer) throws {
        var message = JSONContainer.object(indent: 1)
        message.key("id", &out); r.string(0, &out)
        message.key("channel_id", &out); r.string(1, &out)
        message.key("type", &out); r.integer(3, &out)
        message.key("type_name", &out)
        if let type = r[3].flatMap({ Int(String(decoding: $0, as: UTF8.self)) }), let name = ExportNames.messageTypes[type] {
            out.appendString(name)
        } else {
            out.append("null")
        }
        message.key("created_at", &out); r.time(2, &out)
        message.key("edited_at", &out); r.time(6, &out)
        message.key("deleted", &out); out.append(r.isNull(7) ? "false" : "true")
        message.key("deleted_at", &out); r.time(7, &out)
        message.key("content", &out); r.string(5, &out)
        message.key("flags", &out); r.integer(4, &out)
        message.key("reply_to", &out)
        if r.isNull(8) {
            out.append("null")
        } else {
            counts.replies += 1
            var reply = JSONContainer.object(indent: 2)
            reply.key("message_id", &out); r.string(8, &out)
            reply.key("channel_id", &out); r.string(9, &out)
            reply.key("server_id", &out); r.string(10, &out)
            reply.key("author", &out)
            if r.isNull(11) {
                out.append("null")
            } else {
                var author = JSONContainer.object(indent: 3)
                author.key("id", &out); r.string(11, &out)
                author.key("name", &out); out.appendString("\(r.text(12) ?? "")#\(r.text(13) ?? "")")
                author.end(&out)
            }
            reply.end(&out)
        }
        message.key("mentions", &out)
        var mentions = JSONContainer.object(indent: 2)
        mentions.key("users", &out); r.idArray(14, indent: 3, &out)
        mentions.key("roles", &out); r.idArray(15, indent: 3, &out)
        mentions.key("everyone", &out); r.boolean(16, &out)
        mentions.end(&out)
        message.key("embeds", &out); try r.reformattedJSON(17, indent: 2, &out)
        message.key("attachments", &out)
        let attachments = try attachmentsJSON(r.json(18))
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

    func auditLog() throws {
        report(.auditLog, force: true)
        let rows = try ExportCursor(conn: conn, name: "pgvault_export_audit", sql: UserExportQueries.auditLog,
                                    parameters: [uid], batchSize: options.batchSize)
        try writer.addArray("audit_log/audit_log.json") { stream in
            while let page = try rows.nextPage() {
                // Parse the page, find every address-like string, and ask the
                // snapshot which of them belong to someone else.
                let parsed = try page.map { r in (r, try ExportJSON.json(r[5]), try ExportJSON.json(r[6])) }
                var strings: [String] = []
                for (r, changes, opts) in parsed {
                    AuditRedaction.strings(in: changes, into: &strings)
                    AuditRedaction.strings(in: opts, into: &strings)
                    if let reason = r[7] { strings.append(reason) }
                }
                var redaction = AuditRedaction(userID: uid, ownEmail: ownEmail)
                redaction.otherUsersEmails = try otherUsersEmails(among: strings)
                for (r, changes, opts) in parsed {
                    try stream.append(.object([
                        "id": .id(r[0]), "server_id": .id(r[1]), "action_type": .integer(r[2]),
                        "target_id": .id(r[3]), "target_type": .text(r[4]),
                        "changes": redaction.redact(changes), "options": redaction.redact(opts),
                        "reason": r[7].map { .string(redaction.redactText($0)) } ?? .null,
                        "created_at": .time(r[8]),
                    ]))
                    counts.auditLogEntries += 1
                }
            }
        }
        try rows.close()
    }

    func otherUsersEmails(among strings: [String]) throws -> Set<String> {
        var candidates = Set<String>()
        for s in strings {
            for e in AuditRedaction.emailCandidates(in: s) {
                candidates.insert(e)
                candidates.insert(e.lowercased())
            }
        }
        guard !candidates.isEmpty else { return [] }
        let array = "{" + candidates.sorted().map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
        return Set(try conn.query(UserExportQueries.otherUsersEmails, [array, uid]).rows.compactMap { $0[0] })
    }

    // MARK: Manifest

    func manifest() -> ExportJSON {
        .object([
            "format": .string(UserExporter.formatName),
            "format_version": .int(UserExporter.formatVersion),
            "generated_at": .string(generatedAt),
            "generated_by": .string("pgvault \(PGVault.version)"),
            "user": .object(["id": .string(uid), "public_id": .string(publicID), "tag": .string(tag)]),
            "snapshot": .object([
                "taken_at": .string(snapshotAt), "isolation": .string("repeatable read, read only"),
                "server_version": .string(serverVersion),
            ]),
            "counts": .object(counts.fields.map { .init($0.key, .int($0.value)) }),
            "files": .array(writer.files.map {
                .object(["path": .string($0.path), "bytes": .int($0.bytes), "sha256": .string($0.sha256)])
            }),
        ])
    }
}

/// Reads a query's rows through a server-side cursor, a page at a time, so a
/// user with millions of rows costs one page of memory.
final class ExportCursor {
    private let conn: PGConnection
    private let name: String
    private let batchSize: Int
    private var exhausted = false

    init(conn: PGConnection, name: String, sql: String, parameters: [String?], batchSize: Int) throws {
        self.conn = conn
        self.name = name
        self.batchSize = max(1, batchSize)
        try conn.query("DECLARE \(SQL.ident(name)) NO SCROLL CURSOR FOR \(sql)", parameters)
    }

    /// The next page of rows; nil at the end.
    func nextPage() throws -> [QueryResult.Row]? {
        guard !exhausted else { return nil }
        let page = try conn.query("FETCH FORWARD \(batchSize) FROM \(SQL.ident(name))").rows
        if page.count < batchSize { exhausted = true }
        return page.isEmpty ? nil : page
    }

    func close() throws { try conn.execute("CLOSE \(SQL.ident(name))") }
}

/// Names for the numeric codes of the schema (docs/export-format.md).
enum ExportNames {
    static let channelTypes: [Int: String] = [
        0: "GUILD_TEXT", 1: "DM", 2: "GUILD_VOICE", 3: "GROUP_DM", 4: "GUILD_CATEGORY",
        5: "GUILD_ANNOUNCEMENT", 10: "ANNOUNCEMENT_THREAD", 11: "PUBLIC_THREAD", 12: "PRIVATE_THREAD",
        13: "GUILD_STAGE_VOICE", 14: "GUILD_DIRECTORY", 15: "GUILD_FORUM",
    ]
    static let messageTypes: [Int: String] = [
        0: "DEFAULT", 1: "RECIPIENT_ADD", 2: "RECIPIENT_REMOVE", 3: "CALL", 4: "CHANNEL_NAME_CHANGE",
        5: "CHANNEL_ICON_CHANGE", 6: "CHANNEL_PINNED_MESSAGE", 7: "USER_JOIN", 8: "GUILD_BOOST",
        19: "REPLY", 20: "CHAT_INPUT_COMMAND",
    ]
}
