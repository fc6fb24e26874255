import Foundation
import PGClient

/// What `pgvault wal-status` was asked to do.
public struct WalStatusOptions: Sendable {
    public var conninfo: String
    /// Do not connect: check only the archive folder.
    public var offline = false
    public var archiveDir: String?
    /// A pgvault backup (folder or tar file) or its manifest.json: check the archive from its walLSN.
    public var sinceBackup: String?
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

        let (archive, start) = (try? await Blocking.run("pgvault wal-status archive") {
            () -> (WalStatusInput.ArchiveState, Result<WalStartPoint, WalStatusError>?) in
            let archive: WalStatusInput.ArchiveState
            do { archive = .listing(try WalArchiveListing.read(directory: dir)) } catch let error as WalArchiveListing.ReadError {
                archive = .unreadable(error)
            }
            var start: Result<WalStartPoint, WalStatusError>?
            if let path = o.sinceBackup {
                start = Result { try WalStartPoint.fromBackup(path) }.mapError { $0 as? WalStatusError ?? WalStatusError("\($0)") }
            } else if let lsn = o.sinceLSN {
                start = .success(WalStartPoint(lsn: lsn, source: "--since-lsn \(lsn)"))
            }
            return (archive, start)
        }) ?? (.unreadable(.unreadable(dir, reason: "unexpected error")), nil)
        return WalStatusInput(server: server, archive: archive, archiveDir: dir, start: start, thresholds: o.thresholds)
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
    /// The timeline the start is on, when known (a backup's `walSegment` or `server.timeline`).
    public var timeline: UInt32?
    /// For messages: `backup /b/chat-20250101T020000Z (walLSN 0/3000028)`.
    public var source: String

    public init(lsn: WalLSN, timeline: UInt32? = nil, source: String) {
        self.lsn = lsn
        self.timeline = timeline
        self.source = source
    }

    /// Reads the start of a pgvault backup: `path` is the backup (a folder or a tar
    /// file, see docs/archive-format.md) or its manifest.json. The manifest's
    /// `snapshot.walLSN` (or a top-level `walLSN`) is the start; `snapshot.walSegment`
    /// or `server.timeline` gives its timeline. Blocking (reads files).
    public static func fromBackup(_ path: String) throws -> WalStartPoint {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WalStatusError("backup \(path) does not exist")
        }
        var bytes: [UInt8] = []
        if !isDir.boolValue, let data = FileManager.default.contents(atPath: path), data.first == UInt8(ascii: "{") {
            bytes = Array(data)
        } else {
            do {
                try Archive.open(path).readMember(Manifest.memberName) { chunk in
                    guard bytes.count + chunk.count <= 256 << 20 else { throw WalStatusError("manifest.json is larger than 256 MiB") }
                    bytes.append(contentsOf: chunk)
                }
            } catch {
                throw WalStatusError("cannot read manifest.json of backup \(path): \(error)")
            }
        }
        return try fromManifest(bytes, source: path)
    }

    static func fromManifest(_ bytes: [UInt8], source path: String) throws -> WalStartPoint {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw WalStatusError("the manifest of \(path) is not a JSON object")
        }
        let snapshot = object["snapshot"] as? [String: Any]
        guard let text = snapshot?["walLSN"] as? String ?? object["walLSN"] as? String else {
            throw WalStatusError("the manifest of \(path) has no snapshot.walLSN: not a pgvault backup?")
        }
        guard let lsn = WalLSN(text) else {
            throw WalStatusError("the manifest of \(path): walLSN \"\(text)\" is not an LSN like 0/1A2B3C4")
        }
        let timeline = (snapshot?["walSegment"] as? String).flatMap { RawSegmentName($0)?.timeline }
            ?? ((object["server"] as? [String: Any])?["timeline"] as? Int).flatMap { UInt32(exactly: $0) }
            ?? (object["timeline"] as? Int).flatMap { UInt32(exactly: $0) }
        return WalStartPoint(lsn: lsn, timeline: timeline, source: "backup \(path) (walLSN \(lsn))")
    }
}

public struct WalStatusError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
