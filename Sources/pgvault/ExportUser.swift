import ArgumentParser
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct ExportUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-user",
            abstract: "Export everything held about one user as a zip package (\"download my data\").",
            discussion: """
                The package (docs/export-format.md) holds the user's account and settings, \
                server memberships and roles, every message they wrote (soft-deleted ones \
                marked deleted) grouped by channel, their reactions, invites and audit-log \
                actions, a README.txt and a manifest.json with counts and a SHA-256 per file. \
                It is read from one REPEATABLE READ snapshot and holds nothing private about \
                anyone else. The file is created owner-only (0600) and appears under its name \
                only when complete; an existing file is never overwritten.

                --user takes an id, a public_id (UUID), an email or username#discriminator.
                With --enqueue the request goes to data_export_requests for export-worker instead.

                Examples:
                  pgvault export-user -d postgresql://app@db1/chat --user alice#0001 \\
                      --output alice.zip
                  pgvault export-user -d "dbname=chat" --user 1001 \\
                      --output /exports/1001.zip --json
                  pgvault export-user -d "dbname=chat" --user alice@example.com --enqueue

                Exit status: 0 when the package is complete (or the request queued); 2 \
                otherwise, and no package is left; 130 or 143 when interrupted.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("The user: an id, a public_id, an email or username#discriminator.", valueName: "ID"))
        var user: String

        @Option(name: [.short, .long], help: ArgumentHelp("Zip file to create (must not exist).", valueName: "FILE.zip"))
        var output: String?

        @Flag(help: "Queue the request in data_export_requests for export-worker instead of exporting now.")
        var enqueue = false

        @Option(parsing: .unconditional, help: ArgumentHelp("With --enqueue: attempts before the request is marked failed.", valueName: "N"))
        var maxAttempts: Int = 3

        @OptionGroup var common: ExportCommonOptions

        func validate() throws {
            if enqueue == (output != nil) { throw ValidationError("give exactly one of '--output FILE.zip' and '--enqueue'") }
            if maxAttempts < 1 { throw ValidationError("'--max-attempts' must be at least 1") }
            do { _ = try UserSelector(parsing: user) } catch { throw ValidationError("\(error)") }
        }

        func run() async throws {
            let quiet = common.quiet
            let report = CommandReport("export-user", json: common.json, database: connection.databaseName)
            try await report.run {
                let conn = try await Blocking.run("pgvault-export-connect") { [connection] in
                    try connection.connect(application: "pgvault export-user")
                }
                if enqueue {
                    let input = user, attempts = maxAttempts
                    let (userID, requestID) = try await Blocking.run("pgvault-enqueue", on: conn) {
                        try ExportQueue.enqueue($0, user: input, maxAttempts: attempts)
                    }
                    report.result(["status": "queued", "userID": String(userID), "requestID": String(requestID)]) {
                        "queued export request \(requestID) for user \(userID); pgvault export-worker will write it"
                    }
                    return
                }
                var options = UserExportOptions()
                options.batchSize = common.batchSize
                let conninfo = connection.dbname
                options.connect = { try PGConnection(conninfo: conninfo, applicationName: "pgvault export-user (reactions, channels)") }
                // Ctrl-C or SIGTERM: cancel, remove the unfinished file, exit 130 or 143.
                let cancellation = ExportCancellation()
                options.cancellation = cancellation
                let signals = onTerminationSignals { cancellation.cancel("interrupted by \($0)") }
                defer { signals.cancel() }
                let showProgress = !quiet && isatty(2) != 0
                if showProgress { options.progress = { ExportProgressLine.show($0) } }
                let input = user, target = URL(fileURLWithPath: output ?? "").standardizedFileURL.path, chosen = options
                let summary = try await Blocking.run("pgvault-export", on: conn) {
                    try UserExporter.export(conn: $0, user: input, output: target, options: chosen)
                }
                if showProgress { ExportProgressLine.clear() }
                let r = summary.result
                report.result(ExportUserJSON(summary)) {
                    let c = r.counts
                    return """
                        export complete: \(summary.path)
                          user \(r.tag) (id \(r.userID)), data as of \(r.snapshotAt)
                          \(c.messages) messages (\(c.deletedMessages) deleted) in \(c.channels) channels, \(c.attachments) attachments, \(c.reactions) reactions, \(c.invites) invites, \(c.auditLogEntries) audit-log entries
                          \(c.serverMemberships) server memberships (\(c.roleAssignments) roles), \(c.ownedServers) owned servers
                          \(r.files) files, \(summary.bytes) bytes, sha256 \(summary.sha256) (\(String(format: "%.2f", summary.elapsedSeconds)) s)
                        """
                }
            }
        }
    }
}

/// Options export-user and export-worker share.
struct ExportCommonOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Audit-log entries fetched per round trip (messages and reactions stream through COPY).", valueName: "N"))
    var batchSize: Int = 1000

    @Flag(help: "Print the summary as one JSON object on one line (docs/cli.md).")
    var json = false

    @Flag(help: "No progress display (export-worker: no per-request lines either).")
    var quiet = false

    func validate() throws {
        if batchSize < 1 || batchSize > 100_000 { throw ValidationError("'--batch-size' must be between 1 and 100000") }
    }
}

/// The JSON summary of export-user.
struct ExportUserJSON: Encodable {
    let status = "done"
    let userID: String
    let publicID: String
    let tag: String
    let output: String
    let bytes: Int64
    let sha256: String
    let files: Int
    let counts: [String: Int]
    let generatedAt: String
    let snapshotAt: String
    let seconds: Double

    init(_ s: UserExportSummary) {
        userID = String(s.result.userID)
        publicID = s.result.publicID
        tag = s.result.tag
        output = s.path
        bytes = s.bytes
        sha256 = s.sha256
        files = s.result.files
        counts = Dictionary(uniqueKeysWithValues: s.result.counts.fields.map { ($0.key, $0.value) })
        generatedAt = s.result.generatedAt
        snapshotAt = s.result.snapshotAt
        seconds = (s.elapsedSeconds * 1000).rounded() / 1000
    }

}

/// The export's progress on a terminal's standard error, redrawn in place.
enum ExportProgressLine {
    static func show(_ p: UserExportProgress, prefix: String = "") {
        var line = prefix + p.phase.rawValue.replacingOccurrences(of: "_", with: " ")
        if p.messagesTotal > 0 {
            let percent = p.messagesWritten * 100 / p.messagesTotal
            line += "  messages \(p.messagesWritten)/\(p.messagesTotal) (\(percent)%) in \(p.channelsWritten) channels"
        } else if p.phase == .messages {
            line += "  messages \(p.messagesWritten) in \(p.channelsWritten) channels"  // the total is still being counted
        }
        line += "  files \(p.filesWritten)"
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    static func clear() { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
}
