import Foundation
import PGClient
import S3Client
import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Asks a worker to stop (SIGINT/SIGTERM): it claims nothing more, and an
/// export in progress is cancelled and its request given back.
public final class ExportStopSignal: Sendable {
    private struct State {
        var reason: String?
        var handlers: [Int: @Sendable (String) -> Void] = [:]
        var nextHandler = 0
    }

    private let state = Locked(State())

    public init() {}

    public func request(_ reason: String) {
        let toCall = state.withLock { state -> [@Sendable (String) -> Void] in
            guard state.reason == nil else { return [] }
            state.reason = reason
            return Array(state.handlers.values)
        }
        for handler in toCall { handler(reason) }
    }

    public var requested: String? { state.withLock { $0.reason } }

    /// Runs `handler` when a stop is requested (at once if it already was)
    /// until the returned token is passed to `remove`.
    func onRequest(_ handler: @escaping @Sendable (String) -> Void) -> Int {
        let (token, already) = state.withLock { state -> (Int, String?) in
            state.nextHandler += 1
            state.handlers[state.nextHandler] = handler
            return (state.nextHandler, state.reason)
        }
        if let already { handler(already) }
        return token
    }

    func remove(_ token: Int) { _ = state.withLock { $0.handlers.removeValue(forKey: token) } }
}

public struct ExportWorkerConfiguration: Sendable {
    public var conninfo: String
    public var outputDirectory: String
    /// Written into claimed_by; unique per worker (default `host:pid`).
    public var workerID: String
    /// How long a claim holds without renewal; a worker that died is noticed
    /// this long after its last renewal.
    public var leaseSeconds: Double = 300
    /// How often the lease is renewed while exporting (default a third of the lease).
    public var renewSeconds: Double?
    /// How long to wait when the queue is empty (ignored with `once`).
    public var pollSeconds: Double = 5
    /// Stop when the queue is empty instead of polling.
    public var once = false
    public var exportOptions = UserExportOptions()
    /// `--output s3://BUCKET/PREFIX`: packages are delivered to this bucket
    /// (uploaded, multipart when large) and `outputDirectory` only stages
    /// them while they are written.
    public var bucket: S3ObjectStore?
    /// `--presign`: with a bucket, record a pre-signed GET link valid this
    /// many seconds (1 to ``S3Client/maxPresignSeconds``).
    public var presignSeconds: Int?

    /// The longest `--presign` (S3 refuses links that live longer than 7 days).
    public static let maxPresignSeconds = S3Client.maxPresignSeconds

    /// Packages go to `bucket`, with a link valid `presignSeconds` if given.
    /// A link cannot be signed with temporary credentials: it would carry
    /// the session token (`X-Amz-Security-Token`) into the request row and
    /// the user's mail, and stop working when the session ends.
    public mutating func deliver(to bucket: S3ObjectStore, presignSeconds: Int?) throws {
        if let presignSeconds {
            guard (1...Self.maxPresignSeconds).contains(presignSeconds) else { throw PGVaultError.usage("\(S3PresignError(seconds: presignSeconds))") }
            let credentials = bucket.client.configuration.credentials
            if credentials.hasSessionToken {
                throw PGVaultError.usage(
                    "'--presign' cannot sign with temporary credentials: \(credentials) has a session token, which the link would carry and which expires with the session; give the worker long-term credentials of a user that may read the export bucket")
            }
        }
        self.bucket = bucket
        self.presignSeconds = presignSeconds
    }

    public init(conninfo: String, outputDirectory: String, workerID: String? = nil) {
        self.conninfo = conninfo
        self.outputDirectory = outputDirectory
        self.workerID = workerID ?? "\(ExportFiles.hostName):\(getpid())"
    }
}

/// What happened to one claimed request.
public struct ExportOutcome: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Package published and recorded.
        case done
        /// Failed; retried later (attempts remain).
        case retry
        /// Failed for the last time.
        case failed
        /// Given back unfinished because the worker is stopping.
        case released
        /// The claim was taken back (lease ran out) or the request vanished;
        /// this worker's work was discarded.
        case lost
    }

    public let request: ExportRequest
    public let status: Status
    public var path: String?
    public var bytes: Int64?
    public var sha256: String?
    public var error: String?
    public var seconds: Double
    /// When the pre-signed link recorded in the row stops working. The link
    /// itself is only in the row: it opens the user's data, so it is not logged.
    public var downloadExpiresAt: Date?
}

public enum ExportWorkerEvent: Sendable {
    case reclaimed(requestID: Int64, status: String)
    case claimed(ExportRequest)
    case progress(ExportRequest, UserExportProgress)
    case finished(ExportOutcome)
    case removedPartials([String])
    case idle
    /// A database or file error outside any one request; the worker retries.
    case trouble(String)
}

/// `pgvault export-worker`: takes requests from `data_export_requests` and
/// writes each user's package into the output folder as
/// `user-<user id>-request-<request id>.zip`. See docs/export-format.md,
/// "Request queue".
public struct ExportQueueWorker: Sendable {
    public let configuration: ExportWorkerConfiguration

    public init(_ configuration: ExportWorkerConfiguration) { self.configuration = configuration }

    public static func fileName(for request: ExportRequest) -> String {
        "user-\(request.userID)-request-\(request.id).zip"
    }

    /// Runs until the queue is empty (`once`) or a stop is requested.
    /// Returns what happened to every request this worker claimed.
    public func run(
        stop: ExportStopSignal = ExportStopSignal(),
        events: @escaping @Sendable (ExportWorkerEvent) -> Void = { _ in }
    ) async throws -> [ExportOutcome] {
        let config = configuration
        try ExportFiles.ensureFolder(config.outputDirectory)
        let folder = URL(fileURLWithPath: config.outputDirectory).standardizedFileURL.path
        let orphans = ExportFiles.removeOrphanedPartials(in: folder)
        if !orphans.isEmpty { events(.removedPartials(orphans)) }

        var queue: PGConnection?
        var exporter: PGConnection?
        var outcomes: [ExportOutcome] = []
        while stop.requested == nil {
            do {
                let q = try await Self.connection(&queue, config, "pgvault export-worker")
                for (id, status) in try await Blocking.run("pgvault-queue", on: q, { try ExportQueue.reclaimExpired($0) }) {
                    events(.reclaimed(requestID: id, status: status))
                }
                if stop.requested != nil { break }
                // Both connections first: a claim is only taken when it can be worked.
                let e = try await Self.connection(&exporter, config, "pgvault export-worker (export)")
                let claimed = try await Blocking.run("pgvault-queue", on: q) {
                    try ExportQueue.claim($0, workerID: config.workerID, leaseSeconds: config.leaseSeconds)
                }
                guard let request = claimed else {
                    if config.once { break }
                    events(.idle)
                    await Self.sleep(seconds: config.pollSeconds, stop: stop)
                    continue
                }
                events(.claimed(request))
                let outcome = try await process(request, queue: q, export: e, folder: folder, stop: stop, events: events)
                outcomes.append(outcome)
                events(.finished(outcome))
            } catch {
                // The queue's database is unreachable or failed: with --once
                // that ends the run; otherwise try again after a pause.
                if config.once { throw error }
                events(.trouble("\(error)"))
                if queue?.isHealthy != true { queue = nil }
                if exporter?.isHealthy != true { exporter = nil }
                await Self.sleep(seconds: config.pollSeconds, stop: stop)
            }
        }
        return outcomes
    }

    private static func connection(
        _ slot: inout PGConnection?, _ config: ExportWorkerConfiguration, _ application: String
    ) async throws -> PGConnection {
        if let conn = slot, conn.isHealthy { return conn }
        let conninfo = config.conninfo
        let conn = try await Blocking.run("pgvault-connect") { try PGConnection(conninfo: conninfo, applicationName: application) }
        slot = conn
        return conn
    }

    /// Sleeps, waking early when a stop is requested.
    private static func sleep(seconds: Double, stop: ExportStopSignal) async {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while stop.requested == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }

    /// Where the package `name` goes: the folder's file, or the bucket's
    /// object with, for `--presign`, a link signed now. Signing needs no
    /// request to the service, so the link is made before the upload and
    /// recorded with it.
    static func delivery(of name: String, folderPath: String, _ config: ExportWorkerConfiguration) throws -> ExportDelivery {
        guard let bucket = config.bucket else { return ExportDelivery(path: folderPath) }
        let key = bucket.prefix + name
        var delivery = ExportDelivery(path: "s3://\(bucket.client.bucket)/\(key)", key: key)
        if let seconds = config.presignSeconds {
            let now = Date()
            delivery.downloadURL = try bucket.client.presignedGetURL(key, expires: seconds, date: now)
            delivery.downloadExpiresAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down) + Double(seconds))
        }
        return delivery
    }

    /// Exports one claimed request, renewing its lease meanwhile, then
    /// publishes and records it, or records the failure.
    private func process(
        _ request: ExportRequest, queue: PGConnection, export: PGConnection, folder: String,
        stop: ExportStopSignal, events: @escaping @Sendable (ExportWorkerEvent) -> Void
    ) async throws -> ExportOutcome {
        let config = configuration
        let started = ContinuousClock.now
        func seconds() -> Double {
            let d = ContinuousClock.now - started
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let finalName = Self.fileName(for: request)
        let finalPath = folder + "/" + finalName
        // Whatever an earlier claim of this request left (its worker died).
        let stale = ExportFiles.removePartials(of: finalName, in: folder)
        if !stale.isEmpty { events(.removedPartials(stale)) }
        let partial = ExportFiles.partialPath(for: finalPath, attempt: request.attempt)
        PartialOutputs.register(partial)
        defer { PartialOutputs.forget(partial) }

        let cancellation = ExportCancellation()
        let stopToken = stop.onRequest { cancellation.cancel("the worker is stopping (\($0))") }
        defer { stop.remove(stopToken) }
        var options = config.exportOptions
        options.cancellation = cancellation
        let conninfo = config.conninfo
        options.connect = { try PGConnection(conninfo: conninfo, applicationName: "pgvault export-worker (reactions, channels)") }
        let userProgress = options.progress
        options.progress = { p in
            userProgress?(p)
            events(.progress(request, p))
        }

        // Lease renewal on the queue connection while the export runs on its own.
        let renewEvery = config.renewSeconds ?? max(0.2, config.leaseSeconds / 3)
        let lease = config.leaseSeconds
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(renewEvery * 1000)))
                if Task.isCancelled { break }
                do {
                    // Not `Blocking.run(on:)`: cancelling this task must not send
                    // a cancel request that could hit the completion's statements.
                    let held = try await Blocking.run("pgvault-lease") {
                        try ExportQueue.renewLease(queue, request, leaseSeconds: lease)
                    }
                    if !held {
                        cancellation.cancel("the claim on request \(request.id) was taken back (lease expired)")
                        break
                    }
                } catch {
                    if Task.isCancelled { break }
                    events(.trouble("renewing the lease of request \(request.id): \(error)"))
                }
            }
        }
        let written: Result<UserExportResult, Error>
        do {
            let userID = request.userID
            let options = options
            written = .success(try await Blocking.run("pgvault-export", on: export) {
                try UserExporter.writePackage(
                    conn: $0, user: .id(userID), input: String(userID), to: partial, options: options)
            })
        } catch {
            written = .failure(error)
        }
        renewal.cancel()
        _ = await renewal.value

        var outcome = ExportOutcome(request: request, status: .done, seconds: 0)
        do {
            switch written {
            case .success:
                // A stop that came after the last row: give the request back, publish nothing.
                try cancellation.check()
                let (bytes, sha256) = try ExportFiles.sizeAndDigest(of: partial)
                let delivery = try Self.delivery(of: finalName, folderPath: finalPath, config)
                let recorded = try await Blocking.run("pgvault-queue", on: queue) {
                    try ExportQueue.complete($0, request, delivery: delivery, bytes: bytes, sha256: sha256) {
                        try PartialOutputs.publishing(partial) {
                            if let bucket = config.bucket {
                                _ = try bucket.adopt(file: partial, as: finalName, ifAbsent: false)
                            } else {
                                try ExportFiles.publish(partial, as: finalPath, replacing: true)
                            }
                        }
                    }
                }
                if recorded {
                    outcome.path = delivery.path
                    outcome.downloadExpiresAt = delivery.downloadExpiresAt
                    outcome.bytes = bytes
                    outcome.sha256 = sha256
                } else {
                    ExportFiles.remove(partial)
                    outcome = ExportOutcome(request: request, status: .lost, error: "the claim was taken back before completion", seconds: 0)
                }
            case let .failure(error):
                throw error
            }
        } catch {
            ExportFiles.remove(partial)
            let reason = cancellation.cancelReason
            if let reason, stop.requested != nil {
                let released = try await Blocking.run("pgvault-queue", on: queue) { try ExportQueue.release($0, request) }
                outcome = ExportOutcome(request: request, status: released ? .released : .lost, error: reason, seconds: 0)
            } else if let reason {
                outcome = ExportOutcome(request: request, status: .lost, error: reason, seconds: 0)
            } else {
                let message = "\(error)"
                let status = try await Blocking.run("pgvault-queue", on: queue) {
                    try ExportQueue.fail($0, request, error: message)
                }
                outcome = ExportOutcome(
                    request: request, status: status == nil ? .lost : status == "failed" ? .failed : .retry,
                    error: message, seconds: 0)
            }
        }
        outcome.seconds = seconds()
        return outcome
    }
}
