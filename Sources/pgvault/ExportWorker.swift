import ArgumentParser
import Dispatch
import Foundation
import PGClient
import PGVaultCore

extension PGVaultCommand {
    struct ExportWorker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-worker",
            abstract: "Process queued per-user export requests (data_export_requests).",
            discussion: """
                Claims requests with FOR UPDATE SKIP LOCKED, so any number of workers on any \
                number of machines share one queue and never take the same request. Each \
                package is written as <output-dir>/user-<user id>-request-<request id>.zip \
                (owner-only), under a temporary name until complete; then its path, size, \
                SHA-256 and completion time are recorded in the same transaction as the rename. \
                A failed attempt is retried until max_attempts, its error kept in last_error. \
                While exporting, the worker renews its lease; a request whose worker died is \
                taken back once its lease has expired.

                --once works until the queue is empty, then exits; otherwise the worker polls \
                every --poll-interval. SIGINT or SIGTERM stops it cleanly: an export in \
                progress is cancelled and its request given back (the attempt is not counted), \
                and it exits 130 (SIGINT) or 143 (SIGTERM).

                --output s3://BUCKET/PREFIX delivers each package to the bucket instead \
                (PREFIX/user-<user id>-request-<request id>.zip, written first under \
                --staging-dir, then uploaded; nothing is visible until the upload completes) \
                and records its key; --presign DURATION (at most 7d) also records a \
                pre-signed download link in download_url, for the service to mail; it is \
                never printed (docs/export-format.md, docs/runbooks/s3.md).

                Examples:
                  pgvault export-worker -d postgresql://exporter@db1/chat \\
                      --output-dir /srv/exports
                  pgvault export-worker -d postgresql://exporter@db1/chat \\
                      --output s3://chat-exports/packages --presign 7d
                  pgvault export-worker -d "dbname=chat" --output-dir exports --once --json

                Exit status: 0 stopped cleanly (--once: the queue is empty); 2 the worker \
                could not run (a failed request is recorded in its row, not here); 130 or \
                143 stopped by SIGINT or SIGTERM.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("Folder for the packages (created owner-only if missing).", valueName: "DIR"))
        var outputDir: String?

        @Option(help: ArgumentHelp("Where the packages go: a folder, or s3://BUCKET/PREFIX (configured the AWS way, docs/runbooks/s3.md).", valueName: "DIR|s3://BUCKET/PREFIX"))
        var output: String?

        @Option(parsing: .unconditional, help: ArgumentHelp("With --output s3://: also record a pre-signed download link valid this long (e.g. 12h, 7d; at most 7 days).", valueName: "DURATION"))
        var presign: Seconds?

        @Option(help: ArgumentHelp("With --output s3://: the local folder a package is written in before its upload (default: a folder in $TMPDIR).", valueName: "DIR"))
        var stagingDir: String?

        @OptionGroup var s3: S3EndpointOption

        @Flag(help: "Process requests until the queue is empty, then exit.")
        var once = false

        @Option(parsing: .unconditional, help: ArgumentHelp("Time between looks at an empty queue: seconds, or a duration like 500ms or 1m.", valueName: "DURATION"))
        var pollInterval = Seconds(argument: "5")!

        @Option(parsing: .unconditional, help: ArgumentHelp("How long a claim holds without renewal (seconds, or a duration like 5m); a dead worker's request is taken back after this.", valueName: "DURATION"))
        var lease = Seconds(argument: "300")!

        @Option(help: ArgumentHelp("Name recorded in claimed_by (default host:pid).", valueName: "NAME"))
        var workerID: String?

        @OptionGroup var common: ExportCommonOptions

        /// The folder, or the bucket, packages go to.
        var destination: RepositoryLocation {
            RepositoryLocation(output ?? outputDir ?? "")
        }

        func validate() throws {
            switch (outputDir, output) {
            case (nil, nil): throw ValidationError("give --output DIR or --output s3://BUCKET/PREFIX (or --output-dir DIR)")
            case (.some, .some): throw ValidationError("give --output or --output-dir, not both")
            default: break
            }
            if case .s3 = destination {
                if let presign {
                    let limit = Double(ExportWorkerConfiguration.maxPresignSeconds)
                    guard presign.value >= 1, presign.value <= limit else {
                        throw ValidationError("'--presign' must be between 1s and 7d (604800 s, the longest S3 allows a pre-signed link to live), not \(DurationText.format(presign.value))")
                    }
                }
            } else {
                if presign != nil { throw ValidationError("'--presign' needs --output s3://BUCKET/PREFIX: a folder's packages have no link to sign") }
                if stagingDir != nil { throw ValidationError("'--staging-dir' is for --output s3://BUCKET/PREFIX; a folder's packages are written in the folder itself") }
            }
            if pollInterval.value <= 0 { throw ValidationError("'--poll-interval' must be positive") }
            if lease.value < 1 { throw ValidationError("'--lease' must be at least 1 second") }
            if let workerID, workerID.isEmpty { throw ValidationError("'--worker-id' must not be empty") }
        }

        func run() async throws {
            let quiet = common.quiet
            var config: ExportWorkerConfiguration
            let staging: String
            switch destination {
            case let .folder(folder): staging = folder
            case .s3: staging = stagingDir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("pgvault-export-staging-\(getuid())")
            }
            config = ExportWorkerConfiguration(conninfo: connection.dbname, outputDirectory: staging, workerID: workerID)
            config.leaseSeconds = lease.value
            config.pollSeconds = pollInterval.value
            config.once = once
            config.exportOptions.batchSize = common.batchSize
            let showProgress = !quiet && isatty(2) != 0

            let stop = ExportStopSignal()
            let signals = Self.handleSignals(stop, quiet: quiet)
            defer { signals.cancel() }

            if !quiet { note("pgvault export-worker \(config.workerID): \(connection.display), output \(output ?? outputDir ?? "")") }
            var report = CommandReport("export-worker", json: common.json, database: connection.databaseName)
            report.interruptedLeaves = Self.interruptedLeaves
            try await report.run {
                if case let .s3(url) = destination {
                    try config.deliver(to: try S3ObjectStore.open(url), presignSeconds: presign.map { Int($0.value.rounded(.down)) })
                }
                let outcomes = try await ExportQueueWorker(config).run(stop: stop) { event in
                    Self.log(event, quiet: quiet, progress: showProgress)
                }
                if !quiet {
                    let done = outcomes.filter { $0.status == .done }.count
                    note("pgvault export-worker \(config.workerID): stopped\(stop.requested.map { " (\($0))" } ?? ""); \(outcomes.count) request(s) handled, \(done) done")
                }
                if common.json { report.result(ExportWorkerJSON(workerID: config.workerID, outcomes: outcomes, stopped: stop.requested)) { "" } }
            }
            // Stopped by a signal: say so in the exit status (128 + signal), as every command does.
            if let signal = ReceivedSignal.number {
                note("pgvault export-worker: \(Interrupted(signal: signal, leaving: Self.interruptedLeaves))")
                throw ExitCode(128 + signal)
            }
        }

        static let interruptedLeaves = "a request in progress was given back to the queue; nothing was published"

        /// SIGINT/SIGTERM: stop cleanly; a second signal ends the process at once.
        static func handleSignals(_ stop: ExportStopSignal, quiet: Bool) -> SignalListener {
            onTerminationSignals { name in
                if !quiet { note("pgvault export-worker: \(name) received; stopping (again to quit at once)") }
                stop.request(name)
            }
        }

        static func log(_ event: ExportWorkerEvent, quiet: Bool, progress: Bool) {
            if quiet { return }
            switch event {
            case let .progress(request, p):
                if progress { ExportProgressLine.show(p, prefix: "request \(request.id): ") }
                return
            case .idle:
                return
            default:
                break
            }
            if progress { ExportProgressLine.clear() }
            switch event {
            case let .reclaimed(id, status):
                note("request \(id): lease expired, taken back (now \(status))")
            case let .claimed(r):
                note("request \(r.id): exporting user \(r.userID) (attempt \(r.attempt) of \(r.maxAttempts))")
            case let .finished(o):
                let r = o.request
                switch o.status {
                case .done:
                    // The link itself stays in the row: it opens the user's data.
                    let link = o.downloadExpiresAt.map { ", download link recorded, valid until \(ISO8601DateFormatter().string(from: $0))" } ?? ""
                    note("request \(r.id): done, \(o.path ?? "") (\(o.bytes ?? 0) bytes, sha256 \(o.sha256 ?? "")\(link), \(String(format: "%.2f", o.seconds)) s)")
                case .retry, .failed:
                    note("request \(r.id): attempt \(r.attempt) failed\(o.status == .failed ? " for the last time" : ", will retry"): \(o.error ?? "")")
                case .released:
                    note("request \(r.id): given back unfinished (\(o.error ?? "stopping"))")
                case .lost:
                    note("request \(r.id): abandoned: \(o.error ?? "the claim was taken back")")
                }
            case let .removedPartials(names):
                note("removed unfinished package file(s) of earlier attempts: \(names.joined(separator: ", "))")
            case let .trouble(message):
                note("pgvault export-worker: \(message); retrying")
            case .progress, .idle:
                break
            }
        }
    }
}

/// The JSON summary of export-worker.
struct ExportWorkerJSON: Encodable {
    struct Request: Encodable {
        let id: String
        let userID: String
        let attempt: Int
        let status: String
        let path: String?
        let bytes: Int64?
        let sha256: String?
        let error: String?
        let seconds: Double
        /// With --presign: when the link recorded in the row expires (the link itself is only in the row).
        let downloadExpiresAt: String?
    }

    let status = "stopped"
    let workerID: String
    let stoppedBy: String?
    let requests: [Request]
    let done: Int
    let failed: Int

    init(workerID: String, outcomes: [ExportOutcome], stopped: String?) {
        self.workerID = workerID
        stoppedBy = stopped
        requests = outcomes.map {
            Request(
                id: String($0.request.id), userID: String($0.request.userID), attempt: $0.request.attempt,
                status: $0.status.rawValue, path: $0.path, bytes: $0.bytes, sha256: $0.sha256, error: $0.error,
                seconds: ($0.seconds * 1000).rounded() / 1000,
                downloadExpiresAt: $0.downloadExpiresAt.map { ISO8601DateFormatter().string(from: $0) })
        }
        done = outcomes.filter { $0.status == .done }.count
        failed = outcomes.filter { $0.status == .failed || $0.status == .retry }.count
    }
}
