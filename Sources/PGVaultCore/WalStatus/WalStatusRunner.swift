import Foundation
import PGClient

/// What `pgvault wal-status` was asked to do.
public struct WalStatusOptions: Sendable {
    public var conninfo: String
    /// Do not connect: check only the archive folder.
    public var offline = false
    public var archiveDir: String?
    /// A physical base backup (pg_basebackup's folder, its backup_label or
    /// backup_manifest, or a .backup file) to judge recovery from; nil: the
    /// archive's .backup files.
    public var baseBackup: String?
    public var sinceLSN: WalLSN?
    /// Complete the current segment and wait up to `switchTimeout` for it to be archived.
    public var forceSwitch = false
    public var switchTimeout: Double = 30
    public var thresholds = WalThresholds()
    public var applicationName = "pgvault wal-status"
    /// Seconds libpq may take to connect when the conninfo does not say.
    public var connectTimeout = 10

    public init(conninfo: String) { self.conninfo = conninfo }
}

/// Gathers the facts (server, archive folder, start point) and judges them.
public enum WalStatusRunner {
    public static func run(_ options: WalStatusOptions) async -> WalStatusReport {
        WalStatusEvaluator.evaluate(await gather(options))
    }

    public static func gather(_ o: WalStatusOptions) async -> WalStatusInput {
        var server = WalStatusInput.Server.offline
        if !o.offline {
            do {
                let facts = try await Blocking.run("pgvault wal-status") {
                    let conn = try PGConnection(
                        conninfo: o.conninfo, applicationName: o.applicationName,
                        extra: connectTimeoutExtra(o.conninfo, seconds: o.connectTimeout))
                    return try WalServerProbe.gather(
                        conn, switchRequest: o.forceSwitch
                            ? WalServerProbe.SwitchRequest(timeout: o.switchTimeout, archiveDir: o.archiveDir) : nil)
                }
                server = .connected(facts)
            } catch {
                server = .unreachable(WalText.oneLine(error))
            }
        }
        guard let dir = o.archiveDir else { return WalStatusInput(server: server, thresholds: o.thresholds) }

        let (archive, start, base) = (try? await Blocking.run("pgvault wal-status archive") {
            () -> (WalStatusInput.ArchiveState, Result<WalStartPoint, PGVaultError>?, Result<WalBaseBackup, PGVaultError>?) in
            let archive: WalStatusInput.ArchiveState
            do { archive = .listing(try WalArchiveListing.read(directory: dir)) } catch let error as PGVaultError {
                archive = .unreadable(error)
            }
            let start = o.sinceLSN.map { Result<WalStartPoint, PGVaultError>.success(WalStartPoint(lsn: $0, source: "--since-lsn \($0)")) }
            let base = o.baseBackup.map { path in
                Result { try WalBaseBackupReader.read(path) }.mapError { PGVaultError.classify($0) }
            }
            return (archive, start, base)
        }) ?? (.unreadable(WalArchiveListing.unreadable(dir, reason: "unexpected error")), nil, nil)
        return WalStatusInput(server: server, archive: archive, archiveDir: dir, start: start, baseBackup: base, thresholds: o.thresholds)
    }

    /// `connect_timeout` for libpq unless the conninfo or PGCONNECT_TIMEOUT sets
    /// one (a later keyword would override the user's).
    static func connectTimeoutExtra(_ conninfo: String, seconds: Int) -> [(String, String)] {
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] != nil { return [] }
        if ConnInfo.parse(conninfo)?.contains(where: { $0.key == "connect_timeout" }) == true { return [] }
        return [("connect_timeout", "\(seconds)")]
    }
}

/// Where the contiguity check of an archive folder starts.
public struct WalStartPoint: Sendable, Equatable {
    public var lsn: WalLSN
    /// The timeline the start is on, when known.
    public var timeline: UInt32?
    /// For messages: `--since-lsn 0/3000028`.
    public var source: String

    public init(lsn: WalLSN, timeline: UInt32? = nil, source: String) {
        self.lsn = lsn
        self.timeline = timeline
        self.source = source
    }
}

