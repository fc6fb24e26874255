import Foundation
import PGClient

/// One export in progress: the connection (inside the snapshot), the package
/// being written, and what has been counted.
final class UserExportRun {
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
            if total >= options.splitMessagesFrom,
               let split = try conn.query(UserExportQueries.channelSplit, [uid, String(total / 2)]).rows.first?.int64(0),
               split > Int64.min {
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
        try writeManifest()
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

    // MARK: Manifest

    /// manifest.json: its last field, the list of files (one per channel
    /// and more), is streamed rather than built.
    func writeManifest() throws {
        var stream = try writer.beginArray("manifest.json", after: [
            .init("format", .string(UserExporter.formatName)),
            .init("format_version", .int(UserExporter.formatVersion)),
            .init("generated_at", .string(generatedAt)),
            .init("generated_by", .string("pgvault \(PGVault.version)")),
            .init("user", .object(["id": .string(uid), "public_id": .string(publicID), "tag": .string(tag)])),
            .init("snapshot", .object([
                "taken_at": .string(snapshotAt), "isolation": .string("repeatable read, read only"),
                "server_version": .string(serverVersion),
            ])),
            .init("counts", .object(counts.fields.map { .init($0.key, .int($0.value)) })),
        ], key: "files")
        for file in writer.files {
            try stream.append(.object(["path": .string(file.path), "bytes": .int(file.bytes), "sha256": .string(file.sha256)]))
        }
        try stream.finish()
    }
}
